#!/usr/bin/env node
// gRPC benchmark (npm run bench -- --only grpc, or node bench/grpc.mjs [--quick]).
//
// One agent child process (dist/src/cli.js serve, add_sub only, HTTP and gRPC on 127.0.0.1)
// and one empty gRPC server child (bench/grpc-empty-server.mjs: the same service definition,
// a ModelInfer that does nothing), driven from this process:
//   - c=1: p50/p95 latency of add_sub over gRPC (raw contents, what tritonclient sends), over
//     HTTP binary (undici, keep-alive) and of the empty gRPC method;
//   - c=32: throughput (closed loop, 32 calls in flight) of the same three.
// Targets (issue 12): gRPC efficiency = agent ÷ empty method at c=32 ≥ 0.6; agent gRPC p50 at
// c=1 ≤ 1.5 × agent HTTP binary p50 (the same model run is in both, so this compares what
// each transport adds). Also the proto-loader codec cost per request (encode + decode of the
// request and the response, in this process), the reason it was chosen over generated code.
// The machine may be shared: `uptime` is recorded before and after.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Agent as UndiciAgent, request } from 'undici';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const ROOT = path.resolve(import.meta.dirname, '..');
const QUICK = process.argv.includes('--quick');
const C1_N = QUICK ? 300 : 2000;
const C32_MS = QUICK ? 2000 : 8000;
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const log = (...a) => console.log(...a);

function child(args, env = {}) {
  const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ORT_DISABLE_TELEMETRY: '1', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return p;
}

async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function firstLine(p) {
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0].trim());
    });
    p.once('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
}

async function waitReady(url) {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await request(`${url}/v2/models/add_sub/ready`);
      await r.body.text();
      if (r.statusCode === 200) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('agent not ready');
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function latency(fn, n) {
  for (let i = 0; i < Math.min(200, n); i++) await fn(); // warm-up
  const xs = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    xs.push((performance.now() - t) * 1000);
  }
  return { p50_us: round(pct(xs, 50)), p95_us: round(pct(xs, 95)) };
}

async function throughput(fn, concurrency, ms) {
  const end = performance.now() + ms;
  let done = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await fn();
      done++;
    }
  }));
  return { rps: round(done / (ms / 1000), 0) };
}

const a = Float32Array.from({ length: 16 }, (_, i) => i);
const b = new Float32Array(16).fill(1);
const grpcRequest = {
  model_name: 'add_sub',
  inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 16] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 16] }],
  raw_input_contents: [Buffer.from(a.buffer), Buffer.from(b.buffer)],
};
const header = Buffer.from(JSON.stringify({
  inputs: [
    { name: 'INPUT0', datatype: 'FP32', shape: [1, 16], parameters: { binary_data_size: 64 } },
    { name: 'INPUT1', datatype: 'FP32', shape: [1, 16], parameters: { binary_data_size: 64 } },
  ],
  parameters: { binary_data_output: true },
}));
const httpBody = Buffer.concat([header, Buffer.from(a.buffer), Buffer.from(b.buffer)]);

function grpcClientFor(address) {
  const def = protoLoader.loadSync('grpc_service.proto', { includeDirs: [path.join(ROOT, 'proto')], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def);
  return { client: new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure()), def };
}

function inferCall(client) {
  return () => new Promise((resolve, reject) => client.ModelInfer(grpcRequest, (err, r) => {
    if (err) return reject(err);
    if (r.raw_output_contents[0].readFloatLE(4) !== 2) return reject(new Error('wrong answer'));
    resolve();
  }));
}

/** proto-loader's cost per request: encode + decode of the request and of add_sub's response. */
function codecCost(def) {
  const m = def['inference.GRPCInferenceService'].ModelInfer;
  const resp = { model_name: 'add_sub', model_version: '1', outputs: grpcRequest.inputs.map((i, k) => ({ ...i, name: `OUTPUT${k}` })), raw_output_contents: grpcRequest.raw_input_contents };
  const n = 20000;
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    m.requestDeserialize(m.requestSerialize(grpcRequest));
    m.responseDeserialize(m.responseSerialize(resp));
  }
  return round(((performance.now() - t) * 1000) / n, 2);
}

async function main() {
  const before = uptime();
  log(`[grpc] uptime before: ${before}`);
  const repo = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-bench-grpc-'));
  cpSync(path.join(ROOT, 'models', 'add_sub'), path.join(repo, 'add_sub'), { recursive: true });
  const [port, grpcPort] = [await freePort(), await freePort()];
  const agent = child(['dist/src/cli.js', 'serve', '--models', repo, '--host', '127.0.0.1', '--port', String(port), '--grpc-port', String(grpcPort), '--load-models', 'add_sub', '--log-level', 'warn']);
  const empty = child(['bench/grpc-empty-server.mjs']);
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url);
    const emptyPort = await firstLine(empty);
    const agentGrpc = grpcClientFor(`127.0.0.1:${grpcPort}`);
    const emptyGrpc = grpcClientFor(`127.0.0.1:${emptyPort}`);
    const dispatcher = new UndiciAgent({ connections: 64, pipelining: 1 });
    const httpCall = async () => {
      const r = await request(`${url}/v2/models/add_sub/infer`, { method: 'POST', body: httpBody, headers: { 'inference-header-content-length': String(header.length) }, dispatcher });
      const body = Buffer.from(await r.body.arrayBuffer());
      if (r.statusCode !== 200) throw new Error(`HTTP ${r.statusCode}: ${body}`);
    };
    const emptyCall = () => new Promise((resolve, reject) => emptyGrpc.client.ModelInfer(grpcRequest, (err) => (err ? reject(err) : resolve())));

    log(`[grpc] c=1, ${C1_N} requests each`);
    const c1 = { grpc: await latency(inferCall(agentGrpc.client), C1_N), http_binary: await latency(httpCall, C1_N), empty_grpc: await latency(emptyCall, C1_N) };
    log(`[grpc] c=32, ${C32_MS} ms each`);
    const c32 = { grpc: await throughput(inferCall(agentGrpc.client), 32, C32_MS), http_binary: await throughput(httpCall, 32, C32_MS), empty_grpc: await throughput(emptyCall, 32, C32_MS) };
    const codec = codecCost(agentGrpc.def);
    const after = uptime();
    const efficiency = round(c32.grpc.rps / c32.empty_grpc.rps, 2);
    const c1Ratio = round(c1.grpc.p50_us / c1.http_binary.p50_us, 2);
    const rows = [
      ['add_sub c=1 p50 / p95', `gRPC ${c1.grpc.p50_us} / ${c1.grpc.p95_us} µs`, `HTTP binary ${c1.http_binary.p50_us} / ${c1.http_binary.p95_us} µs`, `empty gRPC ${c1.empty_grpc.p50_us} / ${c1.empty_grpc.p95_us} µs`],
      ['add_sub c=32 throughput', `gRPC ${c32.grpc.rps}/s`, `HTTP binary ${c32.http_binary.rps}/s`, `empty gRPC ${c32.empty_grpc.rps}/s`],
    ];
    log('\n' + rows.map((r) => r.join(' | ')).join('\n'));
    log(`proto-loader codec, request + response encode/decode: ${codec} µs per request (in the client process)`);
    log(`\nIssue 12 table (uptime before: ${before}; after: ${after}; machine shared):`);
    log(`gRPC efficiency (agent ÷ empty method, c=32): ${efficiency}  target ≥ 0.6  ${efficiency >= 0.6 ? 'PASS' : 'FAIL'}`);
    log(`gRPC c=1 p50 ÷ HTTP binary c=1 p50 (agent): ${c1Ratio}  target ≤ 1.5  ${c1Ratio <= 1.5 ? 'PASS' : 'FAIL'}`);
    console.log(JSON.stringify({ c1, c32, codec_us_per_request: codec, efficiency, c1_ratio: c1Ratio, uptime_before: before, uptime_after: after }));
    agentGrpc.client.close();
    emptyGrpc.client.close();
    await dispatcher.close();
  } finally {
    agent.kill('SIGTERM');
    empty.kill('SIGTERM');
    rmSync(repo, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
