// musicnn inside the built app (dist/), as a listener triggers it: "Your own track" decodes a file
// with WebAudio at 16 kHz and runs the log-mel front end and musicnn on the page's device. Runs
// "Vibe Ace" (61 s) on the CPU (flex, one thread in the page) and on WebGPU in the same headless
// Chromium, and prints seconds of audio per second (x real time). The CPU: a warm-up (weights,
// first allocations) and N timed runs of the whole file. WebGPU: the page is told to keep musicnn
// on WebGPU even on a software adapter (the app uses the CPU there), one patch (3 s) per batch,
// timed over the patches done within a time limit after a first (shader-compiling) patch.
//   node scripts/bench/features-browser.mjs [N]     (after trunk build --release)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, serveDist } from './page.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = process.env.ENCORE_DIST ?? path.join(root, 'dist');
const assets = process.env.ENCORE_ASSETS ?? path.join(process.env.HOME, '.cache/encore/assets');
const file = path.join(assets, 'vibe-ace/librosa-0.7.2/librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg');
const runs = Number(process.argv[2] ?? 3);
const { server, base } = await serveDist(dist);
const browser = await launchChromium();
const rows = [];
const PATCH_S = (187 * 256) / 16000;
const limitS = Number(process.env.WEBGPU_LIMIT_S ?? 240);
for (const compute of ['cpu', 'auto']) {
  const page = await browser.newPage();
  await page.goto(base);
  await page.evaluate((c) => { localStorage.setItem('encore.compute', JSON.stringify(c)); localStorage.setItem('encore.analyse', JSON.stringify('page')); }, compute);
  await page.reload();
  await page.waitForFunction(() => /WebGPU|CPU/.test(document.querySelector('[data-testid="backend"]')?.textContent ?? ''), null, { timeout: 180_000 });
  if (compute === 'auto') {
    await page.setInputFiles('[data-testid="analyse-file"]', file);
    const st = page.locator('[data-testid="analyse-status"]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="analyse-status"]').dataset.done) >= 1, null, { timeout: limitS * 1000 });
    const first = { done: Number(await st.getAttribute('data-done')), ms: Number(await st.getAttribute('data-elapsed-ms')) };
    await page.waitForTimeout(limitS * 1000 / 2);
    const last = { done: Number(await st.getAttribute('data-done')), ms: Number(await st.getAttribute('data-elapsed-ms')) };
    const backend = (await page.locator('[data-testid="backend"]').textContent()).trim();
    const x = last.done > first.done ? ((last.done - first.done) * PATCH_S) / ((last.ms - first.ms) / 1000) : NaN;
    rows.push({ backend, median_x_realtime: x, runs: `${last.done - first.done} patches after the first (${(first.ms / 1000).toFixed(1)} s)`, top_tag: '(not finished)' });
    await page.close();
    continue;
  }
  const xs = [];
  let top = '';
  for (let i = 0; i <= runs; i++) {
    await page.setInputFiles('[data-testid="analyse-file"]', []);
    await page.setInputFiles('[data-testid="analyse-file"]', file);
    await page.waitForSelector('[data-testid="analyse-status"][data-state="done"], [data-testid="analyse-status"][data-state="failed"]', { timeout: 600_000 });
    const state = await page.locator('[data-testid="analyse-status"]').getAttribute('data-state');
    if (state !== 'done') throw new Error(await page.locator('[data-testid="analyse-status"]').textContent());
    const tags = page.locator('[data-testid="analyse-tags"]');
    const secs = Number(await tags.getAttribute('data-seconds'));
    const ms = Number(await tags.getAttribute('data-millis'));
    top = await page.locator('[data-testid="analyse-tag"]').first().getAttribute('data-tag');
    if (i > 0) xs.push(secs / (ms / 1000));
  }
  const backend = (await page.locator('[data-testid="backend"]').textContent()).trim();
  xs.sort((a, b) => a - b);
  rows.push({ backend, median_x_realtime: xs[Math.floor(xs.length / 2)], runs, top_tag: top });
  await page.close();
}
await browser.close();
server.close();
console.log('| backend (in the page) | x real time (median) | runs | top tag of Vibe Ace |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.backend} | ${r.median_x_realtime.toFixed(2)} | ${r.runs} | ${r.top_tag} |`);
fs.mkdirSync(path.join(root, 'target', 'bench'), { recursive: true });
fs.writeFileSync(path.join(root, 'target', 'bench', 'features-browser.json'), JSON.stringify(rows, null, 2));
