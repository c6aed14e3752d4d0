#!/usr/bin/env node
// Streaming VAD benchmark: 1, 16 and 64 concurrent Silero VAD streams through the agent's
// sequence batcher over HTTP (JSON, one 512-sample chunk per request), at real-time pace (a
// chunk every 32 ms per stream) and as fast as possible; against the same model called
// directly (onnxruntime-node in this process, one session) per stream in a loop with h/c
// carried by hand. Prints chunks/s, p50/p99 per chunk, the real-time stream count sustained
// (p99 < 32 ms and pace kept) and PASS/FAIL lines for the issue's targets, plus `uptime`
// (the machine may be shared).
//
//   npm run build && node bench/vad.mjs [--quick] [--seconds 4]
import { spawn, execSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
process.env.ORT_DISABLE_TELEMETRY = '1';
const ort = (await import('onnxruntime-node')).default;
const { fetchSileroVad, sileroModelPath } = await import('../scripts/fetch-silero-vad.mjs');
const { synthSpeech } = await import('../scripts/synth-speech-wav.mjs');

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const seconds = args.includes('--seconds') ? Number(args[args.indexOf('--seconds') + 1]) : quick ? 2 : 4;
const COUNTS = [1, 16, 64];
const CHUNK = 512;
const PERIOD_MS = 32;

const audio = synthSpeech(8, 3).samples;
const chunkAt = (k) => audio.subarray((k * CHUNK) % (audio.length - CHUNK), ((k * CHUNK) % (audio.length - CHUNK)) + CHUNK);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One stream: `chunks` requests of one sequence, paced every 32 ms when realTime. */
async function agentStream(url, id, deadline, realTime, lat) {
  let k = 0;
  const t0 = performance.now();
  let behind = 0;
  while (performance.now() < deadline) {
    if (realTime) {
      const due = t0 + k * PERIOD_MS;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -PERIOD_MS) behind++;
    }
    const last = performance.now() + (realTime ? PERIOD_MS : 0) >= deadline;
    const start = performance.now();
    const res = await fetch(`${url}/v2/models/silero_vad/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, CHUNK], data: Array.from(chunkAt(k)) }], parameters: { sequence_id: id, sequence_start: k === 0, sequence_end: last } }),
    });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`stream ${id} chunk ${k}: ${res.status} ${body.error}`);
    lat.push(performance.now() - start);
    k++;
    if (last) break;
  }
  return { chunks: k, behind };
}

async function runAgent(url, n, realTime, round) {
  const lat = [];
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => agentStream(url, `b${round}-${n}-${i}`, deadline, realTime, lat)));
  const wall = (performance.now() - start) / 1000;
  const chunks = rs.reduce((a, r) => a + r.chunks, 0);
  return { n, mode: realTime ? 'real-time' : 'fast', chunks_per_s: chunks / wall, p50: pct(lat, 50), p99: pct(lat, 99), behind: rs.reduce((a, r) => a + r.behind, 0) };
}

async function runDirect(session, n) {
  const lat = [];
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const sr = new ort.Tensor('int64', BigInt64Array.of(16000n), []);
  let chunks = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    let h = new Float32Array(128);
    let c = new Float32Array(128);
    for (let k = 0; performance.now() < deadline; k++) {
      const t = performance.now();
      const r = await session.run({ input: new ort.Tensor('float32', chunkAt(k).slice(), [1, CHUNK]), sr, h: new ort.Tensor('float32', h, [2, 1, 64]), c: new ort.Tensor('float32', c, [2, 1, 64]) });
      h = r.hn.data;
      c = r.cn.data;
      lat.push(performance.now() - t);
      chunks++;
    }
  }));
  const wall = (performance.now() - start) / 1000;
  return { n, mode: 'direct loop', chunks_per_s: chunks / wall, p50: pct(lat, 50), p99: pct(lat, 99) };
}

const uptime = () => execSync('uptime').toString().trim();
const fmt = (r) => `${String(r.n).padStart(3)} streams  ${r.mode.padEnd(11)}  ${r.chunks_per_s.toFixed(0).padStart(6)} chunks/s  p50 ${r.p50.toFixed(1).padStart(6)} ms  p99 ${r.p99.toFixed(1).padStart(6)} ms${r.behind !== undefined && r.mode === 'real-time' ? `  late>32ms: ${r.behind}` : ''}`;

const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-vad-bench-'));
await fetchSileroVad(repo);
const port = await freePort();
const agent = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli.js'), 'serve', '--grpc-port', '0', '--models', repo, '--port', String(port), '--host', '127.0.0.1', '--providers', 'cpu', '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
const url = `http://127.0.0.1:${port}`;
try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/v2/models/silero_vad/ready`)).status === 200) break;
    } catch { /* not up yet */ }
    if (i > 200) throw new Error('agent did not become ready');
    await sleep(100);
  }
  console.log(`# Silero VAD streams (${seconds} s per figure); ${os.cpus().length} cores; uptime before: ${uptime()}`);
  const results = [];
  let round = 0;
  for (const n of COUNTS) {
    for (const rt of [true, false]) {
      const r = await runAgent(url, n, rt, round++);
      results.push(r);
      console.log(fmt(r));
    }
  }
  const stats = (await (await fetch(`${url}/v2/models/silero_vad/stats`)).json()).model_stats[0];
  const session = await ort.InferenceSession.create(sileroModelPath());
  for (const n of COUNTS) {
    const r = await runDirect(session, n);
    results.push(r);
    console.log(fmt(r));
  }
  await session.release();
  const sustained = Math.max(0, ...results.filter((r) => r.mode === 'real-time' && r.p99 < PERIOD_MS && r.behind === 0).map((r) => r.n));
  const fast64 = results.find((r) => r.n === 64 && r.mode === 'fast');
  const direct64 = results.find((r) => r.n === 64 && r.mode === 'direct loop');
  const rt = results.find((r) => r.n === sustained && r.mode === 'real-time');
  console.log(`batches: ${stats.sequence_stats.merged_batches} of ${stats.execution_count} held chunks of several streams; largest ${stats.sequence_stats.max_sequences_per_batch} streams in one batch`);
  console.log(`real-time streams sustained (of ${COUNTS.join(', ')}; p99 < 32 ms, none late): ${sustained}`);
  const ratio = fast64.chunks_per_s / direct64.chunks_per_s;
  console.log(`${ratio >= 2 ? 'PASS' : 'FAIL'}  64 streams through the agent: ${fast64.chunks_per_s.toFixed(0)} chunks/s = ${ratio.toFixed(2)}x the direct per-stream loop's ${direct64.chunks_per_s.toFixed(0)} (target >= 2x)`);
  console.log(`${rt && rt.p99 < PERIOD_MS ? 'PASS' : 'FAIL'}  p99 per chunk at the sustained real-time count (${sustained}): ${rt ? rt.p99.toFixed(1) : 'n/a'} ms (target < 32 ms)`);
  console.log(`uptime after: ${uptime()}`);
} finally {
  agent.kill('SIGTERM');
}
