// End-to-end: serve the built dist/ on 127.0.0.1, drive Debian's Chromium with Playwright,
// and check the page computes the right numbers on real WebGPU (SwiftShader without a GPU),
// then on the CPU after the listener switches, with no request leaving 127.0.0.1.
//
// Run: `node --test tests/e2e/` after `trunk build --release` (scripts/test.sh does both).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = process.env.ENCORE_DIST ?? path.join(root, 'dist');
const shots = path.join(root, 'target', 'e2e');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.json': 'application/json',
  '.md': 'text/markdown',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function serve(dir) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let file = path.normalize(path.join(dir, decodeURIComponent(url.pathname)));
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, {
        'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
        'content-length': body.length,
      });
      res.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// The same closed-form inputs as src/smoke.rs, computed here independently in f64.
function reference() {
  const [ROWS, INNER, COLS] = [4, 8, 5];
  const x = (i, k) => Math.sin(0.7 * (INNER * i + k) + 0.3);
  const w = (k, j) => 0.8 * Math.cos(0.4 * (COLS * k + j) - 0.2);
  const out = [];
  for (let i = 0; i < ROWS; i++) {
    const logits = [];
    for (let j = 0; j < COLS; j++) {
      let s = 0;
      for (let k = 0; k < INNER; k++) s += x(i, k) * w(k, j);
      logits.push(s);
    }
    const m = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - m));
    const z = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / z));
  }
  return out;
}

let server;
let browser;
let base;

before(async () => {
  assert.ok(fs.existsSync(path.join(dist, 'index.html')), `no build in ${dist}: run trunk build --release`);
  server = await serve(dist);
  base = `http://127.0.0.1:${server.address().port}/`;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--enable-unsafe-webgpu',
      '--enable-unsafe-swiftshader',
      '--use-webgpu-adapter=swiftshader',
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  fs.mkdirSync(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.close();
});

async function settled(page) {
  const result = page.locator('[data-testid="smoke-result"]');
  await page.waitForSelector('[data-testid="smoke-result"]:not([data-state="pending"])', { timeout: 180_000 });
  return {
    backend: (await page.locator('[data-testid="backend"]').textContent()).trim(),
    state: await result.getAttribute('data-state'),
    text: (await result.textContent()).trim(),
    values: JSON.parse((await result.getAttribute('data-values')) || '[]'),
    diagnostics: await page.evaluate(() => window.encoreDiagnostics),
  };
}

function assertMatchesReference(values) {
  const expected = reference();
  assert.equal(values.length, expected.length);
  const maxDiff = Math.max(...values.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(maxDiff < 1e-4, `page values differ from the JS reference by ${maxDiff}`);
}

test('the page computes on WebGPU, then on the CPU when chosen, all from 127.0.0.1', async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} for ${r.url()}`));

  await page.goto(base);
  assert.equal(await page.locator('h1').textContent(), 'Encore');
  const gpu = await settled(page);
  assert.match(gpu.backend, /^WebGPU · \S/, 'backend label names WebGPU and its adapter');
  // The adapter named is the one the browser itself describes.
  const info = await page.evaluate(async () => {
    const a = await navigator.gpu.requestAdapter();
    return { vendor: a.info.vendor, architecture: a.info.architecture, description: a.info.description };
  });
  for (const part of [info.vendor, info.architecture, info.description].filter(Boolean)) {
    assert.ok(gpu.backend.includes(part), `"${gpu.backend}" lacks the adapter's "${part}"`);
  }
  assert.doesNotMatch(gpu.backend, /unnamed/);
  assert.equal(gpu.state, 'ok', gpu.text);
  assert.match(gpu.text, /matches the f64 reference/);
  assertMatchesReference(gpu.values);
  assert.equal(gpu.diagnostics.backend, 'WebGpu');
  assert.ok(gpu.diagnostics.smoke.ok);
  await page.locator('[data-testid="bundles"]').waitFor();
  await page.screenshot({ path: path.join(shots, 'app-webgpu.png'), fullPage: true });

  // The listener switches to the CPU: the choice is stored and the page reloads on flex.
  await Promise.all([
    page.waitForEvent('load'),
    page.selectOption('[data-testid="compute-preference"]', 'cpu'),
  ]);
  const cpu = await settled(page);
  assert.match(cpu.backend, /^CPU · flex/);
  assert.equal(cpu.state, 'ok', cpu.text);
  assertMatchesReference(cpu.values);
  assert.equal(await page.locator('[data-testid="compute-preference"]').inputValue(), 'cpu');
  await page.screenshot({ path: path.join(shots, 'app-cpu.png'), fullPage: true });

  const outside = requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'requests left 127.0.0.1');
  assert.ok(requests.some((u) => u.endsWith('.wasm')), 'the wasm module was loaded');
  assert.deepEqual(errors, [], 'the page logged errors');
  await page.close();
});

const history = (page) =>
  page.locator('[data-testid="history-play"]').evaluateAll((els) =>
    els.map((e) => ({
      id: e.dataset.trackId,
      completion: Number(e.dataset.completion),
      skipped: e.dataset.skipped === 'true',
      session: Number(e.dataset.session),
    })),
  );
const recs = (page) =>
  page.locator('[data-testid="rec"]').evaluateAll((els) => els.map((e) => e.dataset.trackId));

async function bundleReady(page) {
  await page.waitForSelector('[data-testid="bundle-status"]:not([data-state="pending"])', { timeout: 180_000 });
  const status = page.locator('[data-testid="bundle-status"]');
  assert.equal(await status.getAttribute('data-state'), 'ready', await status.textContent());
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="rec"]').length > 0, null, { timeout: 60_000 });
}

test('a listener plays, skips, reloads, exports and imports; recommendations follow on WebGPU', async () => {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 }, acceptDownloads: true });
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));

  await page.goto(base);
  await bundleReady(page);
  assert.match((await page.locator('[data-testid="backend"]').textContent()).trim(), /^WebGPU · /);
  const tracks = await page.locator('[data-testid="track"]').evaluateAll((els) => els.map((e) => e.dataset.trackId));
  assert.ok(tracks.length >= 40, `catalog has ${tracks.length} tracks`);
  assert.ok(await page.locator('[data-testid="simulated-note"]').isVisible());
  const before = await recs(page);
  await page.check('[data-testid="mute"]');

  // Play the first catalog track for a few seconds, then skip it.
  const first = tracks[0];
  await page.locator(`[data-testid="track"][data-track-id="${first}"] [data-testid="play"]`).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="audio"]').currentTime > 3, null, { timeout: 60_000 });
  const title = (await page.locator('[data-testid="now-playing"]').textContent()).trim();
  assert.notEqual(title, 'Nothing playing');
  const upNext = await recs(page);
  assert.ok(!upNext.includes(first), 'the playing track is not recommended');
  await page.click('[data-testid="skip"]');
  // The skip moved on to the first recommendation; let it play to its end, fast.
  await page.waitForFunction((id) => {
    const a = document.querySelector('[data-testid="audio"]');
    return decodeURIComponent(a.currentSrc).includes(id.split('/')[1]) && !a.paused;
  }, upNext[0], { timeout: 60_000 });
  await page.evaluate(() => { document.querySelector('[data-testid="audio"]').playbackRate = 16; });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="history-play"]').length >= 2, null, { timeout: 120_000 });
  let plays = await history(page);
  // Newest first.
  assert.equal(plays[1].id, first);
  assert.ok(plays[1].skipped, 'the early skip is flagged');
  assert.ok(plays[1].completion > 0 && plays[1].completion < 0.2, `skip completion ${plays[1].completion}`);
  assert.equal(plays[0].id, upNext[0]);
  assert.ok(!plays[0].skipped);
  assert.ok(plays[0].completion > 0.9, `full play completion ${plays[0].completion}`);
  assert.equal(plays[0].session, plays[1].session);
  const after = await recs(page);
  assert.notDeepEqual(after, before, 'recommendations changed with the history');
  const latency = Number(await page.locator('[data-testid="latency-ms"]').textContent());
  assert.ok(latency > 0, `latency ${latency}`);
  // "Why" draws on the bundle's content: musicnn's tags and the LLM's MGPHot genes.
  const whys = await page.locator('[data-testid="rec"] .why').allTextContents();
  assert.ok(whys.some((w) => /both sound [a-z]/.test(w)), `reasons: ${whys}`);
  assert.ok(whys.some((w) => /both rated high on [a-z][^;]* \(MGPHot\)/.test(w)), `reasons: ${whys}`);
  await page.screenshot({ path: path.join(shots, 'player-webgpu.png'), fullPage: true });

  // The history survives a reload.
  await page.reload();
  await bundleReady(page);
  plays = await history(page);
  assert.deepEqual(plays.map((p) => p.id), [upNext[0], first], 'history kept across a reload');
  const kept = plays.length;

  // Export, then a malformed import changes nothing, then a valid one adds its plays.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="history-export"]')]);
  const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  assert.equal(exported.format, 'encore-history/1');
  assert.equal(exported.plays.length, kept);
  await page.setInputFiles('[data-testid="history-import"]', {
    name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"format": "encore-history/1", "plays": [{"id": 1,'),
  });
  await page.waitForSelector('[data-testid="import-status"][data-state="error"]');
  assert.match(await page.locator('[data-testid="import-status"]').textContent(), /broken\.json: line 1/);
  assert.equal((await history(page)).length, kept, 'a malformed import left the history alone');
  const extra = { ...exported.plays[0], id: exported.plays[0].id + 3_600_000, started_ms: exported.plays[0].started_ms + 3_600_000 };
  await page.setInputFiles('[data-testid="history-import"]', {
    name: 'mine.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ ...exported, plays: [...exported.plays, extra] })),
  });
  await page.waitForSelector('[data-testid="import-status"][data-state="ok"]');
  assert.equal((await history(page)).length, kept + 1);
  await page.reload();
  await bundleReady(page);
  assert.equal((await history(page)).length, kept + 1, 'the import was stored');
  await page.screenshot({ path: path.join(shots, 'history.png'), fullPage: true });

  const outside = requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'requests left 127.0.0.1');
  assert.deepEqual(errors, [], 'the page logged errors');
  await page.close();
});

test('the E4SRec bundle: its LLM downloads with a progress bar and ranks in the page as natively', async (t) => {
  const encore = process.env.ENCORE_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, 'target'), 'debug', 'encore');
  assert.ok(fs.existsSync(encore), `no ${encore} (cargo build)`);
  // Its own browser context: the bundle chosen here is not the next tests' choice.
  const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(base);
  await bundleReady(page);
  const options = await page.locator('[data-testid="bundles"] option').evaluateAll((els) => els.map((e) => e.value));
  assert.ok(options.includes('demo-e4srec'), `bundles: ${options}`);
  // Every state the progress bar shows while the LLM downloads.
  await page.evaluate(() => {
    window.encoreProgress = [];
    new MutationObserver(() => {
      const p = document.querySelector('[data-testid="bundle-progress"]');
      if (p) window.encoreProgress.push([Number(p.getAttribute('value')), Number(p.getAttribute('max'))]);
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  await page.selectOption('[data-testid="bundles"]', 'demo-e4srec');
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid="bundle-status"]');
    return s.dataset.state === 'failed' || (s.dataset.state === 'ready' && /E4SRec/.test(s.textContent));
  }, null, { timeout: 600_000 });
  const status = page.locator('[data-testid="bundle-status"]');
  assert.equal(await status.getAttribute('data-state'), 'ready', await status.textContent());
  const progress = await page.evaluate(() => window.encoreProgress);
  const llmBytes = fs.statSync(path.join(dist, 'models', 'demo-e4srec', 'llm.gguf')).size;
  assert.ok(progress.length > 0, 'the progress bar showed');
  assert.deepEqual(progress.at(-1), [llmBytes, llmBytes], `progress ${JSON.stringify(progress.slice(-3))}`);

  // Three catalog tracks as the history: the page's ranking on WebGPU against the native one.
  const ids = await page.locator('[data-testid="track"]').evaluateAll((els) => els.map((e) => e.dataset.trackId));
  const history = [0, 5, 9];
  const native = JSON.parse(execFileSync(encore, [
    'recommend', path.join(dist, 'models', 'demo-e4srec'), '--history', history.map((i) => ids[i]).join(','),
    '-k', String(ids.length), '--json',
  ], { encoding: 'utf8' }));
  const inPage = await page.evaluate(async (h) => window.encoreRecommend(h, h.map(() => NaN), 1000), history);
  assert.equal(inPage.tracks.length, native.tracks.length);
  const nativeScore = new Map(native.tracks.map((t, i) => [t, native.scores[i]]));
  const scale = Math.max(...native.scores.map(Math.abs));
  const worst = Math.max(...inPage.tracks.map((t, i) => Math.abs(inPage.scores[i] - nativeScore.get(t))));
  assert.ok(worst < 2e-3 * scale, `WebGPU scores differ from native ones by ${worst} (scale ${scale})`);
  assert.deepEqual(inPage.tracks.slice(0, 3), native.tracks.slice(0, 3));
  t.diagnostic(`E4SRec ranked ${inPage.tracks.length} tracks in the page in ${inPage.ms.toFixed(0)} ms`);
  await page.screenshot({ path: path.join(shots, 'e4srec-webgpu.png'), fullPage: true });

  const outside = requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'requests left 127.0.0.1');
  assert.deepEqual(errors, [], 'the page logged errors');
  await context.close();
});

test("the page's Content-Security-Policy keeps it on its own origin", async () => {
  const page = await browser.newPage();
  await page.goto(base);
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  const outcome = await page.evaluate(async () => {
    const violation = new Promise((resolve) =>
      document.addEventListener('securitypolicyviolation', (e) => resolve(e.effectiveDirective), { once: true }),
    );
    const fetched = await fetch('http://192.0.2.1/collect').then(() => 'sent', () => 'blocked');
    return { fetched, directive: await violation };
  });
  assert.deepEqual(outcome, { fetched: 'blocked', directive: 'connect-src' });
  await page.close();
});

test('a listener analyses a track of their own with musicnn in the page', async () => {
  const assets = process.env.ENCORE_ASSETS ?? path.join(process.env.HOME, '.cache/encore/assets');
  const vibe = path.join(assets, 'vibe-ace/librosa-0.7.2/librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg');
  assert.ok(fs.existsSync(vibe), `no ${vibe} (scripts/setup.sh fetches it)`);
  const page = await browser.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(base);
  await page.evaluate(() => { localStorage.removeItem('encore.compute'); localStorage.removeItem('encore.analyse'); });
  await page.reload();
  await page.waitForFunction(() => /WebGPU|CPU/.test(document.querySelector('[data-testid="backend"]')?.textContent ?? ''), null, { timeout: 180_000 });
  const status = page.locator('[data-testid="analyse-status"]');

  // Not audio: a clear message, and the page goes on.
  await page.setInputFiles('[data-testid="analyse-file"]', { name: 'notes.mp3', mimeType: 'audio/mpeg', buffer: Buffer.from('not audio at all') });
  await page.waitForSelector('[data-testid="analyse-status"][data-state="failed"]', { timeout: 60_000 });
  assert.match(await status.textContent(), /notes\.mp3: not an audio file the browser can decode/);

  await page.setInputFiles('[data-testid="analyse-file"]', vibe);
  await page.waitForSelector('[data-testid="analyse-status"][data-state="done"], [data-testid="analyse-status"][data-state="failed"]', { timeout: 300_000 });
  const text = await status.textContent();
  assert.equal(await status.getAttribute('data-state'), 'done', text);
  // On SwiftShader (a software adapter) the app computes musicnn on the CPU and says why.
  const backend = (await page.locator('[data-testid="backend"]').textContent()).trim();
  if (backend.includes('fallback adapter')) assert.match(text, /on the CPU \(WebGPU here is .* a software adapter/);
  const tags = await page.locator('[data-testid="analyse-tag"]').evaluateAll((els) => els.map((e) => e.dataset.tag));
  assert.equal(tags.length, 5);
  assert.equal(tags[0], 'jazz', `top tags ${tags}`);
  const seconds = Number(await page.locator('[data-testid="analyse-tags"]').getAttribute('data-seconds'));
  assert.ok(Math.abs(seconds - 61.46) < 0.1, `decoded ${seconds} s`);
  assert.equal(await page.locator('[data-testid="analyse-tags"]').getAttribute('data-patches'), '20');
  // The file joins the catalog as the listener's own track, and the default bundle (a content-only
  // model over musicnn's sound) ranks it among every candidate.
  await bundleReady(page);
  const own = page.locator('[data-testid="track"][data-track-id^="own/"]');
  await own.waitFor({ timeout: 60_000 });
  assert.match(await own.textContent(), /Kevin MacLeod - Vibe Ace/);
  const rank = own.locator('[data-testid="own-rank"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="own-rank"]')?.dataset.rank, null, { timeout: 60_000 });
  const n = await page.locator('[data-testid="track"]').count();
  const r0 = Number(await rank.getAttribute('data-rank'));
  assert.ok(r0 >= 1 && r0 <= n, `own track ranked ${r0} of ${n}`);
  // Played from the page's own copy of the file, it lands in the history like any track.
  await page.check('[data-testid="mute"]');
  const ownId = await own.getAttribute('data-track-id');
  const computed = await page.locator('[data-testid="latency-ms"]').getAttribute('data-count');
  await own.locator('[data-testid="play"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="audio"]').currentTime > 1, null, { timeout: 60_000 });
  assert.match(await page.locator('[data-testid="now-playing"]').textContent(), /Vibe Ace/);
  await page.waitForFunction((c) => document.querySelector('[data-testid="latency-ms"]').dataset.count !== c, computed, { timeout: 60_000 });
  // Playing the catalog's "Vibe Ace" (the same recording): the own copy sounds alike and says so.
  await page.locator('[data-testid="track"][data-track-id="macleod/Kevin_MacLeod_-_Vibe_Ace"] [data-testid="play"]').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="history-play"]').length >= 1, null, { timeout: 60_000 });
  assert.equal((await history(page))[0].id, ownId);
  const whys = await page.locator('[data-testid="rec"] .why').allTextContents();
  assert.ok(whys.some((w) => /sound similarity \d+ %/.test(w)), `reasons: ${whys}`);
  await page.screenshot({ path: path.join(shots, 'analyse.png'), fullPage: true });
  // After a reload the own track is still listed and counted, but cannot play without its file.
  await page.reload();
  await bundleReady(page);
  await own.waitFor();
  assert.ok(await own.locator('[data-testid="play"]').isDisabled());
  assert.deepEqual(requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:')), []);
  assert.deepEqual(errors, []);
  await page.close();
});
