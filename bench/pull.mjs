#!/usr/bin/env node
/**
 * Model pull benchmark (standalone; `npm run build` first, or `npm run bench:pull`):
 *
 *   A. throughput of the agent's puller (hash while streaming, fsync, rename) on a ~200 MB file
 *      from a local HTTP server (a child process) ÷ `curl -o` from the same server. Target ≥ 0.9.
 *   B. CPU per GB of the puller (user + system, hashing included).
 *   C. load to READY: POST /v2/repository/models/{m}/load with a `source` whose blobs are cached
 *      vs the same model loaded from the repository folder. Target: ≤ 10% slower.
 *
 * The 200 MB file is random bytes generated in a temp dir at run time (never committed).
 *   node bench/pull.mjs [--mb 200] [--runs 3] [--out bench/results]
 * Prints PASS/FAIL lines and `uptime` (the machine may be shared); writes pull-<date>.{json,md}.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { cpSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const MB = Number(arg('mb', 200));
const RUNS = Number(arg('runs', 3));
const OUT = path.resolve(arg('out', path.join(ROOT, 'bench/results')));

const dist = (p) => import(pathToFileURL(path.join(ROOT, 'dist/src', p)).href);
const { ModelPuller } = await dist('sources/puller.js');
const { parseManifest } = await dist('sources/manifest.js');
const { systemClock } = await dist('util/clock.js');
const { createLogger } = await dist('util/logger.js');
const { Agent } = await dist('agent.js');
const { ConfigSchema } = await dist('config/schema.js');
const { generateComputeModel } = await import(pathToFileURL(path.join(ROOT, 'scripts/generate-models.mjs')).href);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const work = mkdtempSync(path.join(os.tmpdir(), 'bench-pull-'));

// The file: random bytes, written in 8 MiB chunks, hashed as written.
const file = path.join(work, 'blob.bin');
const hash = createHash('sha256');
{
  const ws = createWriteStream(file);
  const chunk = Buffer.alloc(8 << 20);
  for (let left = MB * 1e6; left > 0; left -= chunk.length) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    randomFillSync(part);
    hash.update(part);
    if (!ws.write(part)) await new Promise((r) => ws.once('drain', r));
  }
  await new Promise((r) => ws.end(r));
}
const digest = hash.digest('hex');
const size = MB * 1e6;

// The server: a child process, so the puller and curl compete with it the same way.
const serverSrc = `
  const http = require('node:http'), fs = require('node:fs');
  const file = process.argv[1], size = fs.statSync(file).size;
  http.createServer((req, res) => {
    const m = /^bytes=(\\d+)-(\\d*)$/.exec(req.headers.range || '');
    if (m) {
      const start = Number(m[1]), end = m[2] ? Math.min(size - 1, Number(m[2])) : size - 1;
      res.writeHead(206, { 'content-length': end - start + 1, 'content-range': 'bytes ' + start + '-' + end + '/' + size, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' });
      return void fs.createReadStream(file, { start, end, highWaterMark: 1 << 20 }).pipe(res);
    }
    res.writeHead(200, { 'content-length': size, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' });
    fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
  }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
const server = spawn(process.execPath, ['-e', serverSrc, file], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((r) => server.stdout.once('data', (d) => r(Number(String(d).trim()))));
const url = `http://127.0.0.1:${port}/blob.bin`;

async function curlOnce() {
  const dest = path.join(work, 'curl.out');
  rmSync(dest, { force: true });
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const c = spawn('curl', ['-s', '-o', dest, url], { stdio: 'ignore' });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited ${code}`))));
  });
  return (performance.now() - t0) / 1000;
}

/** The same work by hand, the fair reference: curl -o, then sha256sum, then sync of the file. */
async function curlVerifiedOnce() {
  const dest = path.join(work, 'curl.out');
  rmSync(dest, { force: true });
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', `curl -s -o "${dest}" "${url}" && sha256sum "${dest}" >/dev/null && sync "${dest}"`], { stdio: 'ignore' });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`curl+sha256sum exited ${code}`))));
  });
  return (performance.now() - t0) / 1000;
}

/** `ranged`: --pull-ranges 4 above 64 MiB (the defaults), so the 200 MB file comes in 4 ranges. */
async function pullOnce(i, ranged = false) {
  const stateDir = path.join(work, `state-${i}`);
  const modelsDir = path.join(work, `models-${i}`);
  const puller = new ModelPuller({ stateDir, modelsDir, allowHttp: true, cacheBudget: undefined, stallMs: 30_000, clock: systemClock, logger: createLogger('warn'), reserveBytes: 0, ...(ranged ? { ranges: { parts: 4, thresholdBytes: 64 * 1024 * 1024 } } : {}) });
  const m = parseManifest({ name: 'big', version: 1, files: [{ path: 'model.onnx', uri: url, sha256: digest, size }] });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await puller.pull(m, 'cli');
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(modelsDir, { recursive: true, force: true });
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

console.log(`bench/pull.mjs: ${MB} MB file, ${RUNS} runs each; ${uptime()}`);
const curl = [];
const curlVerified = [];
const pulls = [];
const rangedPulls = [];
await curlOnce(); // warm the page cache of the served file
for (let i = 0; i < RUNS; i++) {
  curl.push(await curlOnce());
  curlVerified.push(await curlVerifiedOnce());
  pulls.push(await pullOnce(i));
  rangedPulls.push(await pullOnce(`r${i}`, true));
}
server.kill();
const curlS = median(curl);
const pullS = median(pulls.map((p) => p.seconds));
const ratio = curlS / pullS;
const curlVS = median(curlVerified);
const rangedS = median(rangedPulls.map((p) => p.seconds));
const rangedCpuPerGb = median(rangedPulls.map((p) => p.cpuSeconds)) / (size / 1e9);
const cpuPerGb = median(pulls.map((p) => p.cpuSeconds)) / (size / 1e9);
const loadAvgA = uptime();

// C. load to READY from the cache vs from the repository folder.
const gen = path.join(work, 'gen');
await generateComputeModel(gen, 'heavy', 1024, 8, 4); // ~16 MB of weights
const onnx = path.join(gen, 'heavy/1/model.onnx');
const onnxBytes = readFileSync(onnx);
const onnxSha = createHash('sha256').update(onnxBytes).digest('hex');
const repo = path.join(work, 'repo');
mkdirSync(path.join(repo, 'fromrepo/1'), { recursive: true });
cpSync(onnx, path.join(repo, 'fromrepo/1/model.onnx'));
const modelServer = spawn(process.execPath, ['-e', serverSrc, onnx], { stdio: ['ignore', 'pipe', 'inherit'] });
const mport = await new Promise((r) => modelServer.stdout.once('data', (d) => r(Number(String(d).trim()))));
const config = Object.freeze(ConfigSchema.parse({ models: repo, port: 0, logLevel: 'silent', providers: 'cpu', loadModels: '', stateDir: path.join(work, 'agent-state'), allowHttp: true, lazyLoad: false }));
const agent = new Agent(config);
await agent.start({ waitForModels: true });
const post = async (p, body) => {
  const r = await fetch(`${agent.address}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${p}: ${r.status} ${await r.text()}`);
};
const source = { name: 'pulled', version: 1, files: [{ path: 'model.onnx', uri: `http://127.0.0.1:${mport}/model.onnx`, sha256: onnxSha, size: onnxBytes.length }] };
await post('/v2/repository/models/pulled/load', { parameters: { source } }); // fills the cache
const fromCache = [];
const fromRepo = [];
await post('/v2/repository/models/pulled/unload', {});
const timed = async (p, body, into) => {
  const t0 = performance.now();
  await post(p, body);
  into.push(performance.now() - t0);
  await post(p.replace(/load$/, 'unload'), {});
};
// Interleaved, alternating which goes first, so drift on a shared machine hits both alike.
for (let i = 0; i < 15; i++) {
  const repoLoad = () => timed('/v2/repository/models/fromrepo/load', {}, fromRepo);
  const cacheLoad = () => timed('/v2/repository/models/pulled/load', { parameters: { source } }, fromCache);
  if (i % 2) {
    await repoLoad();
    await cacheLoad();
  } else {
    await cacheLoad();
    await repoLoad();
  }
}
await agent.close();
modelServer.kill();
const cacheMs = median(fromCache.slice(1));
const repoMs = median(fromRepo.slice(1));
const slower = cacheMs / repoMs - 1;
const loadAvgC = uptime();
rmSync(work, { recursive: true, force: true });

const lines = [
  `A throughput: puller ${(size / 1e6 / pullS).toFixed(0)} MB/s (median ${pullS.toFixed(2)} s) vs curl -o ${(size / 1e6 / curlS).toFixed(0)} MB/s (${curlS.toFixed(2)} s): ratio ${ratio.toFixed(2)} (target >= 0.9): ${ratio >= 0.9 ? 'PASS' : 'FAIL'}`,
  `A' same work by hand (curl -o && sha256sum && sync) ${(size / 1e6 / curlVS).toFixed(0)} MB/s (${curlVS.toFixed(2)} s): puller ratio ${(curlVS / pullS).toFixed(2)}`,
  `A'' in 4 parallel ranges (then one hash of the whole file): ${(size / 1e6 / rangedS).toFixed(0)} MB/s (${rangedS.toFixed(2)} s): ratio to curl -o ${(curlS / rangedS).toFixed(2)}, to the by-hand reference ${(curlVS / rangedS).toFixed(2)}; ${rangedCpuPerGb.toFixed(2)} CPU-s/GB`,
  `B CPU per GB pulled (hashing, fsync, rename included): ${cpuPerGb.toFixed(2)} CPU-s/GB`,
  `C load to READY, ${(onnxBytes.length / 1e6).toFixed(1)} MB model: from cached blob (load API with source) ${cacheMs.toFixed(1)} ms vs repository folder ${repoMs.toFixed(1)} ms: ${(slower * 100).toFixed(1)}% (target <= 10%): ${slower <= 0.1 ? 'PASS' : 'FAIL'}`,
  `load: ${loadAvgA} (after A/B); ${loadAvgC} (after C)`,
];
for (const l of lines) console.log(l);
const date = new Date().toISOString().slice(0, 10);
mkdirSync(OUT, { recursive: true });
const result = { date, node: process.version, mb: MB, runs: RUNS, curlSeconds: curl, curlVerifiedSeconds: curlVerified, pulls, rangedPulls, ratio, cpuPerGb, loadFromCacheMs: fromCache, loadFromRepoMs: fromRepo, slower, uptime: [loadAvgA, loadAvgC] };
writeFileSync(path.join(OUT, `pull-${date}.json`), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(path.join(OUT, `pull-${date}.md`), `# Pull benchmark ${date}\n\n${lines.map((l) => `- ${l}`).join('\n')}\n\nNode ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}). Raw figures: pull-${date}.json.\n`);
