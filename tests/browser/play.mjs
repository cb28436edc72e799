// Plays an HLS stream URL with hls.js in Debian's Chromium (driven by playwright-core; no
// browser download) and reports what the player fetched. The page is served at the app's own
// origin (a route fulfilled by Playwright), as the web app is, so the edge's answers reach
// hls.js unfiltered by CORS.
//
//   node play.mjs PAGE_ORIGIN STREAM_URL [play|refuse]
//
// play: plays, then switches through every level so each variant playlist and its segments
// load, and waits for currentTime to advance. refuse: waits for hls.js's fatal error.
// Prints one JSON object: {responses: [{url, status}], levels, switched, currentTime, error}.
import { chromium } from 'playwright-core';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [origin, streamUrl, mode = 'play'] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'],
});
const responses = [];
try {
    const page = await browser.newPage();
    page.on('response', (r) => {
        if (r.url().includes('/hls/')) {
            responses.push({ url: r.url(), status: r.status() });
        }
    });
    const pageUrl = origin + '/__lufy_player_test__';
    await page.route(pageUrl, (route) => route.fulfill({
        contentType: 'text/html',
        body: '<!doctype html><html><body><audio id="player" muted></audio></body></html>',
    }));
    await page.goto(pageUrl);
    await page.addScriptTag({ path: join(here, 'node_modules', 'hls.js', 'dist', 'hls.min.js') });
    const outcome = await page.evaluate(async ({ url, mode }) => {
        const audio = document.getElementById('player');
        const hls = new Hls({ enableWorker: true });
        const until = (predicate, ms) => new Promise((resolve, reject) => {
            const started = Date.now();
            const tick = () => {
                const value = predicate();
                if (value) { resolve(value); return; }
                if (Date.now() - started > ms) { reject(new Error('timed out')); return; }
                setTimeout(tick, 50);
            };
            tick();
        });
        let fatal = null;
        const buffered = new Set();
        hls.on(Hls.Events.ERROR, (_, data) => {
            if (data.fatal) {
                fatal = { type: data.type, details: data.details, code: data.response?.code ?? null };
            }
        });
        hls.on(Hls.Events.FRAG_BUFFERED, (_, data) => buffered.add(data.frag.level));
        hls.attachMedia(audio);
        hls.loadSource(url);
        if (mode === 'refuse') {
            await until(() => fatal, 30000);
            return { error: fatal, levels: 0, switched: [], currentTime: audio.currentTime };
        }
        await until(() => fatal || hls.levels.length > 0, 30000);
        if (fatal) {
            return { error: fatal, levels: 0, switched: [], currentTime: 0 };
        }
        await audio.play();
        const switched = [];
        for (let level = 0; level < hls.levels.length; level++) {
            hls.currentLevel = level;
            await until(() => fatal || buffered.has(level), 30000);
            if (fatal) break;
            switched.push(level);
        }
        const start = audio.currentTime;
        await until(() => fatal || audio.currentTime > start + 1.0, 30000);
        return {
            error: fatal,
            levels: hls.levels.length,
            switched,
            currentTime: audio.currentTime,
            start,
        };
    }, { url: streamUrl, mode });
    process.stdout.write(JSON.stringify({ ...outcome, responses }));
} finally {
    await browser.close();
}
