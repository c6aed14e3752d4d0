#!/usr/bin/env node
// What one Prometheus / router scrape of GET /metrics costs with 20 models loaded (issue: the
// llm-d router scrapes every 50 ms). A real agent (dist/, in this process, CPU provider) on a
// temporary repository of 20 copies of the bundled `simple` model, each with traffic so every
// per-model family (counters, gauges, the latency histogram) has samples, GPU telemetry from
// the fake nvidia-smi (test/fixtures) so the GPU gauges are filled too. Measures:
//   render   AgentMetrics.render() alone (the work a scrape adds to the agent's event loop), wall
//            time per call and process CPU time per call
//   http     GET /metrics over 127.0.0.1 (undici, keep-alive), the scraper's view
// Prints p50/p95/p99/max and a PASS/FAIL line against the 5 ms target. No assertion anywhere.
//
//   npm run build && node bench/scrape-cost.mjs [--models 20] [--iterations 500]
process.env.ORT_DISABLE_TELEMETRY = '1';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { generateBundledModels } from '../scripts/generate-models.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({ options: { models: { type: 'string', default: '20' }, iterations: { type: 'string', default: '500' } } });
const MODELS = Number(opts.models);
const N = Number(opts.iterations);
const TARGET_MS = 5;

const { Agent } = await import(path.join(ROOT, 'dist/src/agent.js'));
const { ConfigSchema } = await import(path.join(ROOT, 'dist/src/config/schema.js'));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-scrape-'));
const gen = path.join(tmp, 'generated');
const repo = path.join(tmp, 'models');
await generateBundledModels(gen);
const config = fs.readFileSync(path.join(ROOT, 'models/simple/config.pbtxt'), 'utf8');
const names = Array.from({ length: MODELS }, (_, i) => `m${String(i).padStart(2, '0')}`);
for (const name of names) {
  fs.mkdirSync(path.join(repo, name, '1'), { recursive: true });
  fs.copyFileSync(path.join(gen, 'simple', '1', 'model.onnx'), path.join(repo, name, '1', 'model.onnx'));
  fs.writeFileSync(path.join(repo, name, 'config.pbtxt'), config.replace(/^name: "simple"$/m, `name: "${name}"`));
}

const agent = new Agent(Object.freeze(ConfigSchema.parse({
  models: repo, port: 0, logLevel: 'silent', providers: 'cpu', intraOpThreads: 1, publicMetrics: true,
  nvidiaSmiPath: path.join(ROOT, 'test/fixtures/nvidia-smi/fake-nvidia-smi'),
})));
await agent.start({ waitForModels: true });
const url = agent.address;

const body = JSON.stringify({ inputs: [
  { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: Array.from({ length: 16 }, (_, i) => i) },
  { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: Array.from({ length: 16 }, () => 1) },
] });
for (const name of names) {
  for (let i = 0; i < 3; i++) {
    const r = await request(`${url}/v2/models/${name}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await r.body.text();
    if (r.statusCode !== 200) throw new Error(`${name}: HTTP ${r.statusCode}`);
  }
}
await request(`${url}/v2/models/nope/infer`, { method: 'POST', body }).then((r) => r.body.text()); // one error reply

const text = await agent.metrics.render();
const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
const families = text.split('\n').filter((l) => l.startsWith('# TYPE')).length;

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.at(-1) };
}
const fmt = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(3)} ms`).join('  ');

for (let i = 0; i < 50; i++) await agent.metrics.render(); // warm-up
const render = [];
const cpu0 = process.cpuUsage();
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await agent.metrics.render();
  render.push(performance.now() - t);
}
// CPU time per render: less sensitive than wall time to other processes on a shared machine.
const cpu = process.cpuUsage(cpu0);
const cpuMsPerRender = (cpu.user + cpu.system) / 1000 / N;
const http = [];
for (let i = 0; i < 50; i++) await (await request(`${url}/metrics`)).body.text();
for (let i = 0; i < N; i++) {
  const t = performance.now();
  const r = await request(`${url}/metrics`);
  await r.body.text();
  http.push(performance.now() - t);
}
await agent.close();
fs.rmSync(tmp, { recursive: true, force: true });

const r = stats(render);
const h = stats(http);
let load = '';
try { load = execFileSync('uptime', { encoding: 'utf8' }).trim(); } catch { load = `loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`; }
console.log(`scrape cost: ${MODELS} models loaded, ${families} families, ${series} series, ${(Buffer.byteLength(text) / 1024).toFixed(1)} KiB per scrape, ${N} scrapes each`);
console.log(`node ${process.version}, ${os.cpus().length} CPUs; ${load}`);
console.log(`render (AgentMetrics.render):  ${fmt(r)}  (CPU time ${cpuMsPerRender.toFixed(3)} ms per render)`);
console.log(`http   (GET /metrics, 127.0.0.1): ${fmt(h)}`);
console.log(`${h.p50 < TARGET_MS ? 'PASS' : 'FAIL'} scrape p50 ${h.p50.toFixed(3)} ms < ${TARGET_MS} ms (HTTP, ${MODELS} models)`);
console.log(`${h.p99 < TARGET_MS ? 'PASS' : 'FAIL'} scrape p99 ${h.p99.toFixed(3)} ms < ${TARGET_MS} ms (HTTP, ${MODELS} models)`);
