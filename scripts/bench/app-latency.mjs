// Recommendation latency inside the built app (dist/), as a listener triggers it: each click on a
// catalog track records an event and recomputes "up next" on the device; the page shows the time
// of that recomputation (data-testid="latency-ms", data-count counts them). Runs the q8 demo bundle on WebGPU and on the
// CPU (flex) in the same headless Chromium, 1 warm-up + N clicks each, and prints p50/p95.
//   node scripts/bench/app-latency.mjs [N]     (after trunk build --release)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, serveDist } from './page.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = process.env.ENCORE_DIST ?? path.join(root, 'dist');
const runs = Number(process.argv[2] ?? 30);
const { server, base } = await serveDist(dist);
const browser = await launchChromium();
const pct = (v, q) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const rows = [];
for (const compute of ['auto', 'cpu']) {
  const page = await browser.newPage();
  await page.goto(base);
  await page.evaluate((c) => { localStorage.setItem('encore.bundle', JSON.stringify('demo')); localStorage.setItem('encore.compute', JSON.stringify(c)); }, compute);
  await page.reload();
  await page.waitForSelector('[data-testid="bundle-status"][data-state="ready"]', { timeout: 180_000 });
  await page.check('[data-testid="mute"]');
  const ids = await page.locator('[data-testid="track"]').evaluateAll((els) => els.map((e) => e.dataset.trackId));
  const times = [];
  for (let i = 0; i <= runs; i++) {
    const before = await page.locator('[data-testid="latency-ms"]').getAttribute('data-count');
    await page.locator(`[data-testid="track"][data-track-id="${ids[(i * 7) % ids.length]}"] [data-testid="play"]`).click();
    await page.waitForFunction((b) => document.querySelector('[data-testid="latency-ms"]').dataset.count !== b, before, { timeout: 120_000 });
    times.push(Number(await page.locator('[data-testid="latency-ms"]').textContent()));
  }
  const backend = (await page.locator('[data-testid="backend"]').textContent()).trim();
  rows.push({ backend, first: times[0], p50: pct(times.slice(1), 0.5), p95: pct(times.slice(1), 0.95), runs });
  await page.close();
}
await browser.close();
server.close();
console.log('| backend | first (ms) | p50 (ms) | p95 (ms) | runs |\n|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.backend} | ${r.first.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.runs} |`);
fs.mkdirSync(path.join(root, 'target', 'bench'), { recursive: true });
fs.writeFileSync(path.join(root, 'target', 'bench', 'app-latency.json'), JSON.stringify(rows, null, 2));
