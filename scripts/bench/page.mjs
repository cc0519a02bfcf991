// Shared by the in-page benchmarks: serve the built dist/ on 127.0.0.1 and launch Debian's
// Chromium headless with WebGPU on SwiftShader.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const types = { '.wasm': 'application/wasm', '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.json': 'application/json', '.css': 'text/css' };

/** Serves `dist` on a free port of 127.0.0.1; resolves to { server, base }. */
export async function serveDist(dist) {
  const server = http.createServer((req, res) => {
    let f = path.normalize(path.join(dist, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    if (!f.startsWith(dist)) return res.writeHead(403).end();
    if (fs.existsSync(f) && fs.statSync(f).isDirectory()) f = path.join(f, 'index.html');
    fs.readFile(f, (e, b) => (e ? res.writeHead(404).end() : res.writeHead(200, { 'content-type': types[path.extname(f)] ?? 'application/octet-stream' }).end(b)));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${server.address().port}/` };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--no-sandbox', '--disable-dev-shm-usage'],
  });
}
