// One recommendation (a 50-play history -> the top 20 of the catalog) timed in the same headless
// Chromium four ways: Encore's bundle through burn on WebGPU and on the CPU (flex), and the same
// model as ONNX (scripts/bench/onnx_sasrec.py) through onnxruntime-web's WebGPU and wasm back
// ends. Same weights (the demo's float32 bundle), same history, p50/p95 over N runs after 10
// warm-up runs; the ONNX scores are checked against Encore's. Also prints the bundle sizes and
// the NDCG@10 change q8 causes (from the manifests). Run by scripts/bench-onnx.sh.
//   node scripts/bench/onnx-latency.mjs [N]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, serveDist } from './page.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = process.env.ENCORE_DIST ?? path.join(root, 'dist');
const runs = Number(process.argv[2] ?? 100);
const warm = 10;
if (!fs.existsSync(path.join(dist, 'bench', 'sasrec.onnx'))) throw new Error(`no ${dist}/bench/sasrec.onnx: run scripts/bench-onnx.sh`);
const { server, base } = await serveDist(dist);
const browser = await launchChromium();
const pct = (v, q) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const bundle = 'demo-fp32';
const config = JSON.parse(fs.readFileSync(path.join(dist, 'models', bundle, 'config.json'), 'utf8'));
const catalog = JSON.parse(fs.readFileSync(path.join(dist, 'models', bundle, 'catalog.json'), 'utf8'));
const maxLen = config.model.max_len;
const nBuckets = config.model.completion?.n ?? 0;
// A fixed 50-play history over the catalog with varied completion ratios.
const history = Array.from({ length: 50 }, (_, i) => (i * 17 + 5) % catalog.tracks.length);
const completions = history.map((_, i) => ((i * 37) % 100) / 100);
const itemOf = new Map(config.items.map((id, i) => [id, i]));
const items = history.map((t) => itemOf.get(catalog.tracks[t].id) + 1);
const bucket = (r) => 1 + Math.min(nBuckets - 1, Math.floor(Math.min(Math.max(r, 0), 1) * nBuckets));
const feedItems = [...Array(maxLen - items.length).fill(0), ...items.slice(-maxLen)];
const feedComp = [...Array(maxLen - items.length).fill(0), ...completions.slice(-maxLen).map(bucket)];
const trackOfItem = config.items.map((id) => catalog.tracks.findIndex((t) => t.id === id));

const rows = [];
let encoreTop = null;
let page = await browser.newPage();
for (const compute of ['auto', 'cpu']) {
  await page.goto(base);
  await page.evaluate(([b, c]) => { localStorage.setItem('encore.bundle', JSON.stringify(b)); localStorage.setItem('encore.compute', JSON.stringify(c)); }, [bundle, compute]);
  await page.reload();
  await page.waitForSelector('[data-testid="bundle-status"][data-state="ready"]', { timeout: 180_000 });
  await page.waitForFunction(() => typeof window.encoreRecommend === 'function');
  const out = await page.evaluate(async ([h, c, n, w]) => {
    const times = [];
    let last;
    for (let i = 0; i < n + w; i++) {
      last = await window.encoreRecommend(h, c, 20);
      if (i >= w) times.push(last.ms);
    }
    return { times, last };
  }, [history, completions, runs, warm]);
  const backend = (await page.locator('[data-testid="backend"]').textContent()).trim();
  rows.push({ engine: 'Encore (burn)', backend, p50: pct(out.times, 0.5), p95: pct(out.times, 0.95), runs });
  encoreTop = encoreTop ?? out.last;
}

// onnxruntime-web in the same page (its files are served from the app's origin, as the CSP wants).
await page.goto(base);
await page.addScriptTag({ url: `${base}bench/ort/ort.all.min.js` });
for (const ep of ['webgpu', 'wasm']) {
  const out = await page.evaluate(async ([b, ep, it, cp, hasComp, n, w]) => {
    ort.env.wasm.wasmPaths = `${b}bench/ort/`;
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(`${b}bench/sasrec.onnx`, { executionProviders: [ep] });
    const feeds = { items: new ort.Tensor('int64', BigInt64Array.from(it.map(BigInt)), [1, it.length]) };
    if (hasComp) feeds.completion = new ort.Tensor('int64', BigInt64Array.from(cp.map(BigInt)), [1, cp.length]);
    const times = [];
    let res;
    for (let i = 0; i < n + w; i++) {
      const t0 = performance.now();
      res = await session.run(feeds);
      const top = Array.from(res.top_items.data, Number);
      const ms = performance.now() - t0;
      if (i >= w) times.push(ms);
    }
    const adapter = ep === 'webgpu' ? await navigator.gpu.requestAdapter().then((a) => a?.info ? `${a.info.vendor} ${a.info.architecture} ${a.info.description}`.trim() : '') : '';
    return { times, top: Array.from(res.top_items.data, Number), scores: Array.from(res.top_scores.data), adapter };
  }, [base, ep, feedItems, feedComp, nBuckets > 0, runs, warm]);
  const top = out.top.map((i) => trackOfItem[i]);
  const agree = top.filter((t, i) => t === encoreTop.tracks[i]).length;
  const maxDiff = Math.max(...top.map((t, i) => {
    const j = encoreTop.tracks.indexOf(t);
    return j < 0 ? Infinity : Math.abs(out.scores[i] - encoreTop.scores[j]);
  }));
  rows.push({ engine: 'onnxruntime-web', backend: ep === 'webgpu' ? `WebGPU · ${out.adapter}` : 'wasm (CPU, 1 thread)', p50: pct(out.times, 0.5), p95: pct(out.times, 0.95), runs, agree, maxDiff });
}
await browser.close();
server.close();

const manifest = (b) => JSON.parse(fs.readFileSync(path.join(dist, 'models', b, 'manifest.json'), 'utf8'));
const size = (b) => manifest(b).files.find((f) => f.path === 'model.bpk').bytes;
const effect = manifest('demo').quantization_effect;
console.log(`One recommendation: a ${history.length}-play history -> top 20 of ${catalog.tracks.length} tracks; ${runs} runs after ${warm} warm-up, milliseconds.\n`);
console.log('| engine | backend | p50 (ms) | p95 (ms) | top 20 as Encore\'s |\n|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.engine} | ${r.backend} | ${r.p50.toFixed(2)} | ${r.p95.toFixed(2)} | ${r.agree === undefined ? '' : `${r.agree}/20 in order, scores within ${r.maxDiff.toExponential(1)}`} |`);
const e = (b) => rows.find((r) => r.engine === 'Encore (burn)' && r.backend.startsWith(b));
const o = (b) => rows.find((r) => r.engine === 'onnxruntime-web' && r.backend.startsWith(b));
console.log(`\nEncore / onnxruntime-web p50: WebGPU ${(e('WebGPU').p50 / o('WebGPU').p50).toFixed(2)}x, CPU ${(e('CPU').p50 / o('wasm').p50).toFixed(2)}x (goal <= 1.0x)`);
const [f32, q8] = [size('demo-fp32'), size('demo')];
console.log(`Bundle weights: float32 ${f32} bytes, q8 ${q8} bytes (${(q8 / f32).toFixed(3)}x; goal <= 0.3x); NDCG@10 ${effect.metrics['NDCG@10'][0].toFixed(4)} -> ${effect.metrics['NDCG@10'][1].toFixed(4)} (${(100 * (effect.metrics['NDCG@10'][1] / effect.metrics['NDCG@10'][0] - 1)).toFixed(2)} %; goal >= -1 %)`);
fs.mkdirSync(path.join(root, 'target', 'bench'), { recursive: true });
fs.writeFileSync(path.join(root, 'target', 'bench', 'onnx-latency.json'), JSON.stringify({ rows, bytes: { fp32: f32, q8 }, quantization_effect: effect }, null, 2));
