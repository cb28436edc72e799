// After `vite build`: writes the Workbox service worker into dist/ and precompresses the text
// assets (.br and .gz next to each file; `lufy serve` sends them to clients that accept them).
//
// Caching (Workbox strategies):
//   app shell (index.html, manifest, icons, JS/CSS chunks)  precached, updated with each deploy
//   /assets/* (content-hashed names)                        cache-first, a year
//   GET /api/dashboard/* (not realtime)                     stale-while-revalidate, with a
//                                                           broadcast so the page shows the fresh copy
//   /api/auth/*, every non-GET, everything else             network-only (never cached)
//   navigations                                             index.html (the offline shell)
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { generateSW } from "workbox-build";

const dist = new URL("../dist/", import.meta.url).pathname;

const { count, size, warnings } = await generateSW({
  globDirectory: dist,
  // Everything but the player's hls.js (fetched, then cached, on the first play).
  globPatterns: ["index.html", "manifest.webmanifest", "icons/*", "assets/*.{js,css}"],
  globIgnores: ["assets/hls*"],
  swDest: join(dist, "sw.js"),
  mode: "production",
  sourcemap: false,
  inlineWorkboxRuntime: true,
  cleanupOutdatedCaches: true,
  clientsClaim: true,
  skipWaiting: false, // the page asks (update prompt), then sends SKIP_WAITING
  // Hashed names already change with their content: no revision query needed.
  dontCacheBustURLsMatching: /^assets\//,
  navigateFallback: "/index.html",
  navigateFallbackDenylist: [/^\/api\//, /^\/media\//, /^\/schema/, /^\/swagger/, /^\/healthz/, /^\/readyz/, /^\/metrics/],
  runtimeCaching: [
    {
      urlPattern: ({ url, request }) => request.method === "GET" && url.pathname.startsWith("/assets/"),
      handler: "CacheFirst",
      options: { cacheName: "lufy-assets", expiration: { maxEntries: 60, maxAgeSeconds: 365 * 86400 } },
    },
    {
      urlPattern: ({ url, request }) =>
        request.method === "GET" &&
        url.pathname.startsWith("/api/dashboard/") &&
        url.pathname !== "/api/dashboard/realtime" &&
        !url.pathname.endsWith(".csv"),
      handler: "StaleWhileRevalidate",
      options: {
        cacheName: "lufy-dashboard",
        expiration: { maxEntries: 200, maxAgeSeconds: 30 * 86400 },
        cacheableResponse: { statuses: [200] },
        // X-Request-Id differs on every answer: each revalidation is announced to the page.
        broadcastUpdate: { channelName: "lufy-dashboard", options: { headersToCheck: ["x-request-id"] } },
      },
    },
    {
      urlPattern: ({ url }) => url.pathname.startsWith("/api/") || url.pathname.startsWith("/media/"),
      handler: "NetworkOnly",
    },
  ],
});
for (const w of warnings) console.warn(`workbox: ${w}`);
console.log(`sw.js: ${count} files precached (${(size / 1024).toFixed(1)} KiB)`);

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}
for (const path of files(dist)) {
  if (!/\.(js|css|html|svg|webmanifest|json|txt)$/.test(path)) continue;
  const body = readFileSync(path);
  if (body.length < 1024) continue;
  writeFileSync(`${path}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
  writeFileSync(`${path}.gz`, gzipSync(body, { level: 9 }));
}
