// End-to-end in a real browser (Debian's Chromium through playwright-core) against a running
// Lufy stack. Started by tests/e2e/test_webapp_browser.py, which runs `lufy dev` on a fresh
// database and free port, and passes:
//   BASE_URL   the stack's URL          MAIL_DIR  the e-mail file backend's folder
//   TONE       a 40-second audio file   SHOTS     where screenshots go (not committed)
// Exits non-zero, with the reason, at the first thing that is not as it should be.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const MAIL_DIR = process.env.MAIL_DIR;
const TONE = process.env.TONE;
const SHOTS = process.env.SHOTS ?? "test-results/screenshots";
const JS_BUDGET = 300 * 1024;
const TZ = "Europe/Berlin";
mkdirSync(SHOTS, { recursive: true });

const step = (text) => console.log(`[e2e] ${text}`);
function check(condition, message) {
  if (!condition) throw new Error(message);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, { timeout = 60_000, every = 500 } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

function mailTo(address, subject) {
  for (const name of readdirSync(MAIL_DIR)) {
    if (!name.endsWith(".json")) continue;
    const mail = JSON.parse(readFileSync(join(MAIL_DIR, name), "utf8"));
    if (mail.to === address && mail.subject.includes(subject)) return mail;
  }
  return null;
}

async function apiJson(path, { token, method = "GET", body } = {}) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

// Lufy drops analytics from known bots, and headless Chromium says "HeadlessChrome": present
// the same browser as a person's Chrome.
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const major = execFileSync(CHROMIUM, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).match(/(\d+)\./)?.[1] ?? "140";
const USER_AGENT = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36`;

// Persistent profiles, not incognito contexts: Chromium never reports an incognito page installable.
const profiles = mkdtempSync(join(tmpdir(), "lufy-e2e-"));
const launch = (name, options) =>
  chromium.launchPersistentContext(join(profiles, name), {
    executablePath: CHROMIUM,
    userAgent: USER_AGENT,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    timezoneId: TZ,
    locale: "en-GB",
    viewport: { width: 1280, height: 800 },
    ...options,
  });
const consoleErrors = [];
let jsBytes = 0;
let precacheJs = 0;
let page;
let context;
try {
  context = await launch("main");
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000);
  let screen = "start";
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    // Offline, Chromium logs each request that cannot leave the machine (the app's attempt to
    // refresh its session); anything else is an error of the app.
    if (screen === "offline dashboard" && msg.text().includes("net::ERR_INTERNET_DISCONNECTED")) return;
    // The refused refresh of a reused token is the point of that step.
    if (screen === "reused refresh token" && msg.text().includes("status of 401")) return;
    consoleErrors.push(`${screen}: ${msg.text()}`);
  });
  page.on("pageerror", (error) => consoleErrors.push(`${screen}: ${error.message}`));
  page.on("requestfailed", (request) => step(`(${screen}) request failed: ${request.url()} ${request.failure()?.errorText}`));

  // --- Sign up as an artist, verify through the e-mail file backend -------------------------
  screen = "sign-up";
  step("sign up");
  const email = `artist-${Date.now()}@e2e.lufy.local`;
  const password = "a long e2e password 42";
  await page.goto(`${BASE}/sign-up`);
  await page.getByLabel("Name shown to listeners").fill("E2E Artist");
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByLabel(/an artist/).check();
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByText("Check your inbox").waitFor();

  screen = "verify-email";
  step("verify through the e-mailed link");
  const mail = await until("the verification e-mail", () => mailTo(email, "Confirm"));
  const link = mail.text.match(/https?:\/\/\S+verify-email\?token=\S+/)?.[0];
  check(link && link.startsWith(`${BASE}/verify-email?token=`), `the e-mail links to the app: ${link}`);
  await page.goto(link);
  await page.getByText("Your e-mail address is confirmed.").waitFor();

  // --- Sign in: the dashboard of a new artist; measure the JS it took -----------------------
  screen = "sign-in";
  step("sign in");
  await page.getByRole("link", { name: "Continue" }).click();
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  screen = "dashboard (new artist)";
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await page.getByText("No listening yet").waitFor();

  // A cold first load of the dashboard, in a fresh browser profile (no HTTP cache, no service
  // worker), for a person whose refresh token is already stored: what the page downloads.
  step("first load of the dashboard, cold");
  const tokens = await apiJson("/api/auth/sign-in", { method: "POST", body: { email, password } });
  const cold = await launch("cold");
  await cold.addInitScript(([refresh, user]) => {
    if (!sessionStorage.getItem("seeded")) {
      localStorage.setItem("lufy.refresh_token", refresh);
      localStorage.setItem("lufy.user", user);
      sessionStorage.setItem("seeded", "1");
    }
  }, [tokens.refresh_token, JSON.stringify(tokens.user)]);
  const coldPage = cold.pages()[0] ?? (await cold.newPage());
  coldPage.on("console", (msg) => msg.type() === "error" && consoleErrors.push(`cold dashboard: ${msg.text()}`));
  const sizes = [];
  coldPage.on("response", (response) => {
    if (new URL(response.url()).pathname.endsWith(".js") && !response.fromServiceWorker()) {
      sizes.push(response.request().sizes().then((s) => s.responseBodySize + s.responseHeadersSize));
    }
  });
  await coldPage.goto(`${BASE}/`);
  await coldPage.getByTestId("overview").waitFor();
  jsBytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  await cold.close();
  // The service worker then precaches the other screens' chunks (not the player's hls.js):
  // at worst, were none of them in the HTTP cache already, this much more.
  const dist = new URL("../dist/assets/", import.meta.url).pathname;
  precacheJs = readdirSync(dist)
    .filter((n) => n.endsWith(".js.br") && !n.startsWith("hls"))
    .reduce((sum, n) => sum + statSync(join(dist, n)).size, 0);
  step(`first load of the dashboard: ${(jsBytes / 1024).toFixed(1)} KiB of JS transferred; all precached JS (br): ${(precacheJs / 1024).toFixed(1)} KiB`);
  check(jsBytes > 0 && jsBytes <= JS_BUDGET, `first-load JS ${jsBytes} bytes is within ${JS_BUDGET}`);
  check(precacheJs <= JS_BUDGET, `precached JS ${precacheJs} bytes is within ${JS_BUDGET}`);

  // --- Installable: manifest + service worker, as Chromium judges it ------------------------
  step("installability");
  await until("the service worker to control the page", () => page.evaluate(() => !!navigator.serviceWorker.controller));
  const cdp = await context.newCDPSession(page);
  const installability = await cdp.send("Page.getInstallabilityErrors");
  check(installability.installabilityErrors.length === 0, `installable: ${JSON.stringify(installability.installabilityErrors)}`);
  const manifest = await cdp.send("Page.getAppManifest");
  check(manifest.errors.length === 0, `manifest errors: ${JSON.stringify(manifest.errors)}`);

  // --- Upload a 40-second tone, wait for ready, publish -------------------------------------
  screen = "tracks";
  step("upload");
  await page.getByRole("link", { name: "Tracks" }).click();
  await page.getByText("No tracks yet").waitFor();
  await page.getByLabel("Title").fill("E2E tone");
  await page.getByLabel("Audio file").setInputFiles(TONE);
  await page.getByRole("button", { name: "Upload" }).click();
  const row = page.getByTestId("track-row").filter({ hasText: "E2E tone" });
  await row.waitFor();
  step("wait for processing");
  await until("the track to be ready", async () => (await row.getByTestId("track-status").textContent()) === "ready", { timeout: 180_000, every: 1000 });
  await row.getByRole("button", { name: "Publish E2E tone" }).click();
  await row.getByText("published").waitFor();
  const trackId = await row.getAttribute("data-track-id");

  // --- Play it: currentTime passes 31 s, the player reports the session ---------------------
  screen = "player";
  step("play");
  await row.getByRole("button", { name: "Play E2E tone" }).click();
  const audio = page.getByTestId("audio");
  await until("playback to start", () => audio.evaluate((el) => el.currentTime > 0.5), { timeout: 30_000 });
  await page.screenshot({ path: join(SHOTS, "player-1280x800.png") });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(SHOTS, "player-390x844.png") });
  await page.setViewportSize({ width: 1280, height: 800 });
  await until("currentTime to pass 31 s", () => audio.evaluate((el) => el.currentTime > 31), { timeout: 90_000, every: 1000 });
  await until("the track to end", () => audio.evaluate((el) => el.ended), { timeout: 30_000, every: 500 });
  await page.getByTestId("player-status").getByText("Finished").waitFor();

  // --- Sign out, sign in again as the artist: the stream is on the dashboard ----------------
  screen = "account";
  step("sign out and in again");
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByText("Where you are signed in").waitFor();
  // The session the cold load used is listed too: revoke it from here.
  const revoke = page.getByRole("button", { name: /^Revoke the session on / });
  await until("the other session to be listed", async () => (await revoke.count()) >= 1);
  const others = await revoke.count();
  await revoke.first().click();
  await until("the revoked session to leave the list", async () => (await revoke.count()) === others - 1);
  await page.getByRole("button", { name: "Sign out of this device" }).click();
  screen = "sign-in (again)";
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  screen = "dashboard";
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  step("the realtime panel counts the stream");
  await until("the realtime panel to count the stream", async () => Number(await page.getByTestId("realtime-total").textContent()) >= 1, {
    timeout: 120_000,
    every: 1000,
  });

  step("the overview equals the API's");
  const { access_token: token } = await apiJson("/api/auth/sign-in", { method: "POST", body: { email, password } });
  const query = `range=28d&tz=${encodeURIComponent(TZ)}`;
  const metrics = ["streams", "listeners", "listen_seconds", "completion_rate", "skip_rate", "likes", "followers"];
  let api;
  await until(
    "the page's overview to equal the API's",
    async () => {
      if ((await page.getByRole("button", { name: "28 days" }).getAttribute("aria-pressed")) !== "true") return false;
      api = await apiJson(`/api/dashboard/overview?${query}`, { token });
      if (api.streams < 1) return false;
      for (const m of metrics) {
        const shown = await page.locator(`[data-metric="${m}"]`).getAttribute("data-value");
        if (Number(shown) !== api[m]) {
          await page.reload();
          await page.getByTestId("overview").waitFor();
          return false;
        }
      }
      return true;
    },
    { timeout: 120_000, every: 2000 },
  );
  check(api.streams === 1, `one stream counted, got ${api.streams}`);
  step("download the CSV");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
  const csv = readFileSync(await download.path(), "utf8");
  check(download.suggestedFilename() === "lufy-streams-28d.csv", `CSV file name: ${download.suggestedFilename()}`);
  const csvTotal = csv.trim().split("\n").slice(1).reduce((sum, line) => sum + Number(line.split(",").at(-1)), 0);
  check(csvTotal === api.streams, `the CSV's streams add up to the overview's (${csvTotal} vs ${api.streams}):\n${csv}`);
  const top = await page.getByTestId("top-tracks").textContent();
  check(top.includes("E2E tone"), "the top tracks table lists the track");
  void trackId;
  await page.screenshot({ path: join(SHOTS, "dashboard-1280x800.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(SHOTS, "dashboard-390x844.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // --- Offline: reload shows the shell and the last dashboard, with the banner --------------
  screen = "offline dashboard";
  step("offline reload");
  const shownStreams = await page.locator('[data-metric="streams"]').getAttribute("data-value");
  await context.setOffline(true);
  await page.reload();
  await page.getByTestId("offline-banner").waitFor();
  await page.getByTestId("overview").waitFor();
  const banner = await until("the banner to say when", async () => {
    const text = await page.getByTestId("offline-banner").textContent();
    return /offline, as of /.test(text) && text;
  });
  step(`banner: ${banner}`);
  const offlineStreams = await page.locator('[data-metric="streams"]').getAttribute("data-value");
  check(offlineStreams === shownStreams, `offline shows the last dashboard (${offlineStreams} vs ${shownStreams})`);
  await page.screenshot({ path: join(SHOTS, "dashboard-offline-1280x800.png"), fullPage: true });
  await context.setOffline(false);

  // --- A refresh token used elsewhere (stolen): the next refresh signs out, saying why ------
  screen = "reused refresh token";
  step("a reused refresh token signs the person out with a message");
  const stored = await page.evaluate(() => localStorage.getItem("lufy.refresh_token"));
  await apiJson("/api/auth/refresh", { method: "POST", body: { refresh_token: stored } });
  await page.reload();
  await page.getByText(/You have been signed out: .*already used/).waitFor();
  check((await page.evaluate(() => localStorage.getItem("lufy.refresh_token"))) === null, "the refresh token is forgotten");

  // --- Magic link, then forgot/reset password, through the e-mailed links ------------------
  screen = "magic link";
  step("sign in with a magic link");
  await page.getByRole("link", { name: "E-mail me a sign-in link" }).click();
  await page.getByLabel("E-mail").fill(email);
  await page.getByRole("button", { name: "E-mail me a link" }).click();
  await page.getByText("a sign-in link is on its way").waitFor();
  const magic = await until("the magic-link e-mail", () => mailTo(email, "sign-in link"));
  const magicLink = magic.text.match(/https?:\/\/\S+magic-link\?token=\S+/)?.[0];
  check(magicLink?.startsWith(`${BASE}/magic-link?token=`), `the magic link opens the app: ${magicLink}`);
  await page.goto(magicLink);
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();

  screen = "password reset";
  step("forgot and reset the password");
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByRole("button", { name: "Sign out of this device" }).click();
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.getByLabel("E-mail").fill(email);
  await page.getByRole("button", { name: "E-mail me a reset link" }).click();
  await page.getByText("a reset link is on its way").waitFor();
  const reset = await until("the reset e-mail", () => mailTo(email, "Reset your Lufy password"));
  await page.goto(reset.text.match(/https?:\/\/\S+reset-password\?token=\S+/)[0]);
  const newPassword = "another long e2e password 43";
  await page.getByLabel("New password").fill(newPassword);
  await page.getByRole("button", { name: "Set password" }).click();
  await page.getByText("Your password is changed").waitFor();
  await page.getByRole("link", { name: "Sign in" }).click();
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(newPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();

  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join("\n")}`);
  step(`done: screenshots in ${SHOTS}`);
  console.log(JSON.stringify({ ok: true, first_load_js_bytes: jsBytes, precached_js_bytes: precacheJs }));
} catch (error) {
  // What the person would have seen when it went wrong.
  if (page) {
    await page.screenshot({ path: join(SHOTS, "failure.png"), fullPage: true }).catch(() => {});
    const text = await page.evaluate(() => document.body.innerText).catch(() => "(no page)");
    console.error(`[e2e] page at ${page.url()}:\n${text}`);
  }
  if (consoleErrors.length) console.error(`[e2e] console errors:\n${consoleErrors.join("\n")}`);
  throw error;
} finally {
  await context?.close();
  rmSync(profiles, { recursive: true, force: true });
}
