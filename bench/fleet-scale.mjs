#!/usr/bin/env node
// Scale of the reference coordinator, measured (npm run build first).
//
//   node bench/fleet-scale.mjs [--nodes=1000] [--window-s=20] [--requests=2000] [--quick] [--profile-dir=DIR] [--agent-intra-op=N]
//   (--agent-intra-op: the real agent's --intra-op-threads; 1 leaves a core to the client and the coordinator)
//   (--profile-dir: the coordinator child runs under --cpu-prof and writes its profile there)
//
// The coordinator runs in a child process (so its CPU and memory are its own); this process
// plays N light fake agents that speak the real protocol over real WebSockets on 127.0.0.1
// (register, a heartbeat every 5 s with one GPU sample, command_results), and one real agent
// (a CLI process serving identity_fp32 on CPU) for the routing figures. Measured:
//   - coordinator CPU per heartbeat and in % of one core at N nodes (a window of --window-s);
//   - coordinator memory per node (heap and RSS growth from 0 to N nodes, after a GC);
//   - command round trip (POST /nodes/{id}/commands ping → the fake agent's result → answer);
//   - dashboard update latency (a heartbeat sent → the SSE update that carries it);
//   - routing overhead: gateway p50 − direct-to-node p50 at concurrency 1, and gateway ÷ direct
//     throughput at concurrency 32 (undici, keep-alive, same request bytes).
// Targets (pass/fail lines): overhead ≤ 300 µs p50, throughput ratio ≥ 0.8, N=1000 nodes under
// 25% of one core. Everything shares this machine's cores: the load average is printed with
// the figures. Results: bench/results/fleet-scale-<date>.json.
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBenchCoordinator, startFleetAgent, startReferenceProxy } from './lib/fleet-agent.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKEN = 'fleet-scale-admin-token';
const CLIENT = 'fleet-scale-client-token';
const arg = (name, fallback) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
};
const QUICK = process.argv.includes('--quick');

// ---- child: the coordinator ---------------------------------------------------------------

if (process.argv.includes('--child')) {
  const c = await startBenchCoordinator(ROOT, { token: TOKEN, clientToken: CLIENT, prefix: 'fleet-scale' });
  process.on('message', (m) => {
    if (m === 'stats') {
      globalThis.gc?.();
      process.send({ cpu: process.cpuUsage(), mem: process.memoryUsage(), wall: performance.now() });
    } else if (m === 'count') {
      const nodes = c.nodes();
      process.send({ count: nodes.filter((n) => n.state === 'Ready').length, withModel: nodes.filter((n) => ['identity_fp32', 'mlp_heavy'].every((name) => n.models.some((x) => x.name === name && x.state === 'READY'))).length });
    } else if (m === 'close') {
      void c.close().then(() => process.exit(0));
    }
  });
  process.send({ url: c.url, agentsUrl: c.agentsUrl });
  await new Promise(() => undefined);
}

// ---- parent -------------------------------------------------------------------------------

const { default: WebSocket } = await import('ws');
const { Pool } = await import('undici');
const N = arg('nodes', QUICK ? 200 : 1000);
const WINDOW_S = arg('window-s', QUICK ? 6 : 20);
const REQUESTS = arg('requests', QUICK ? 500 : 2000);
const HEARTBEAT_MS = 5_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

const PROFILE = process.argv.find((x) => x.startsWith('--profile-dir='))?.slice(14);
const child = fork(fileURLToPath(import.meta.url), ['--child'], { execArgv: ['--expose-gc', ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const replies = [];
child.on('message', (m) => replies.shift()?.(m));
const ask = (m) => new Promise((resolve) => {
  replies.push(resolve);
  child.send(m);
});
const started = await new Promise((resolve) => child.once('message', resolve));
replies.length = 0;
const { url, agentsUrl } = started;
console.log(`coordinator ${url}; ${N} fake agents, heartbeat every ${HEARTBEAT_MS / 1000} s; load average ${load()} (${os.cpus().length} cores, shared)`);

// Fake agents --------------------------------------------------------------------------------
let heartbeatsSent = 0;
const agents = [];
function fakeAgent(i) {
  const nodeId = `fake-${i}`;
  const ws = new WebSocket(agentsUrl, { headers: { authorization: `Bearer ${TOKEN}` }, perMessageDeflate: false });
  const a = { nodeId, ws, seq: 0, timer: undefined };
  a.heartbeat = () => {
    if (ws.readyState !== WebSocket.OPEN) return;
    heartbeatsSent++;
    ws.send(JSON.stringify({
      type: 'heartbeat', seq: ++a.seq, at: Date.now(), nodeState: 'ready',
      telemetry: { collectedAt: Date.now(), gpus: [{ index: 0, utilizationGpuPct: (i * 7 + a.seq) % 100, memoryUsedBytes: 1e9 + a.seq, memoryTotalBytes: 8e10, temperatureC: 50, powerDrawW: 300 }] },
      models: [{ name: 'fake_model', version: '1', queueDepth: 0, inFlight: 0, throughput: 0 }],
    }));
  };
  ws.on('open', () => ws.send(JSON.stringify({
    type: 'register', protocolVersion: 1, nodeId, sessionId: `s-${i}-${Date.now()}`, hostname: `box-${i}`, agentVersion: '0.1.0',
    url: 'http://127.0.0.1:9/', labels: { zone: `z${i % 4}`, price_per_hour: '2.49' },
    gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: `GPU-${i}`, memoryTotalBytes: 8e10 }],
    models: [{ name: 'fake_model', version: '1', state: 'READY', provider: 'cuda' }],
    capacity: { gpuCount: 1, gpuMemoryTotalBytes: 8e10 }, nodeState: 'ready', capabilities: ['command_dedup', 'command_result_code'],
  })));
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.type === 'registered') {
      a.heartbeat();
      setTimeout(() => {
        a.heartbeat();
        a.timer = setInterval(a.heartbeat, HEARTBEAT_MS);
      }, Math.random() * HEARTBEAT_MS);
    } else if (m.type === 'command') {
      ws.send(JSON.stringify({ type: 'command_result', id: m.id, ok: true, code: 'ok' }));
    }
  });
  ws.on('error', () => undefined);
  return a;
}

const before = await ask('stats');
for (let i = 0; i < N; i += 50) {
  for (let j = i; j < Math.min(N, i + 50); j++) agents.push(fakeAgent(j));
  await sleep(20);
}
for (let t = 0; t < 600; t++) {
  if ((await ask('count')).count >= N) break;
  await sleep(100);
}
await sleep(HEARTBEAT_MS + 500); // every node has heartbeated at least twice
const withNodes = await ask('stats');
const memPerNode = {
  heapBytes: (withNodes.mem.heapUsed - before.mem.heapUsed) / N,
  rssBytes: (withNodes.mem.rss - before.mem.rss) / N,
};
console.log(`memory per node: ${(memPerNode.heapBytes / 1024).toFixed(1)} KiB heap, ${(memPerNode.rssBytes / 1024).toFixed(1)} KiB RSS (${N} nodes)`);

// CPU per heartbeat ---------------------------------------------------------------------------
async function cpuWindow(label) {
  const s0 = await ask('stats');
  const h0 = heartbeatsSent;
  await sleep(WINDOW_S * 1000);
  const s1 = await ask('stats');
  const cpuUs = s1.cpu.user - s0.cpu.user + (s1.cpu.system - s0.cpu.system);
  const wallUs = (s1.wall - s0.wall) * 1000;
  const beats = heartbeatsSent - h0;
  const r = { heartbeats: beats, cpuUsPerHeartbeat: cpuUs / beats, coreFraction: cpuUs / wallUs, loadAverage: load() };
  console.log(`${label}: ${beats} heartbeats in ${WINDOW_S} s, ${r.cpuUsPerHeartbeat.toFixed(1)} µs CPU per heartbeat, ${(r.coreFraction * 100).toFixed(2)}% of one core; load ${r.loadAverage}`);
  return r;
}
const cpu = await cpuWindow(`coordinator CPU at ${N} nodes`);

// Command round trip --------------------------------------------------------------------------
const admin = new Pool(url, { connections: 4 });
const rtt = [];
for (let k = 0; k < (QUICK ? 50 : 200); k++) {
  const t0 = performance.now();
  const r = await admin.request({ method: 'POST', path: `/nodes/fake-${k % N}/commands`, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"type":"ping"}' });
  const body = await r.body.json();
  if (!body.ok) throw new Error(`ping failed: ${JSON.stringify(body)}`);
  rtt.push(performance.now() - t0);
}
const command = { p50Ms: pct(rtt, 0.5), p99Ms: pct(rtt, 0.99) };
console.log(`command round trip: p50 ${command.p50Ms.toFixed(2)} ms, p99 ${command.p99Ms.toFixed(2)} ms`);

// Dashboard update latency --------------------------------------------------------------------
const waiting = new Map(); // nodeId → { seq, resolve }: the update that carries seq (or a later one)
const sse = await admin.request({ method: 'GET', path: '/events', headers: { authorization: `Bearer ${TOKEN}` } });
let sseBuf = '';
let snapshotBytes = 0;
sse.body.on('data', (chunk) => {
  sseBuf += chunk.toString();
  let end;
  while ((end = sseBuf.indexOf('\n\n')) >= 0) {
    const frame = sseBuf.slice(0, end);
    sseBuf = sseBuf.slice(end + 2);
    const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
    if (!data) continue;
    if (frame.includes('event: snapshot')) snapshotBytes = data.length;
    for (const n of JSON.parse(data).nodes) {
      const w = waiting.get(n.nodeId);
      if (w && (n.lastHeartbeat?.seq ?? 0) >= w.seq) {
        waiting.delete(n.nodeId);
        w.resolve();
      }
    }
  }
});
await sleep(1000);
const cpuDash = await cpuWindow(`coordinator CPU at ${N} nodes with one dashboard open`);
const dash = [];
for (let k = 0; k < (QUICK ? 10 : 30); k++) {
  const a = agents[(k * 37) % N];
  const seq = a.seq + 1;
  const t0 = performance.now();
  const seen = new Promise((resolve) => waiting.set(a.nodeId, { seq, resolve }));
  a.heartbeat();
  await seen;
  dash.push(performance.now() - t0);
  await sleep(Math.random() * 300);
}
const dashboard = { p50Ms: pct(dash, 0.5), p99Ms: pct(dash, 0.99), maxMs: Math.max(...dash), snapshotBytes, intervalMs: 500 };
console.log(`dashboard update latency: p50 ${dashboard.p50Ms.toFixed(0)} ms, max ${dashboard.maxMs.toFixed(0)} ms (coalesced every 500 ms); snapshot of ${N} nodes ${(snapshotBytes / 1024).toFixed(0)} KiB`);
sse.body.destroy();

// Routing overhead with a real agent -----------------------------------------------------------
const { agent, agentUrl } = await startFleetAgent(ROOT, { agentsUrl, token: TOKEN, prefix: 'fleet-scale', computeModel: true, intraOpThreads: arg('agent-intra-op', undefined) });
for (let t = 0; t < 600 && (await ask('count')).withModel < 1; t++) await sleep(100);
const body = JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
const direct = new Pool(agentUrl, { connections: 64 });
const gateway = new Pool(url, { connections: 64 });
// The floor: the same requests through the least a fastify + undici proxy does (lib/reference-proxy.mjs).
const referenceProxy = await startReferenceProxy(ROOT, agentUrl);
const reference = new Pool(referenceProxy.url, { connections: 64 });
const headers = { 'content-type': 'application/json' };
const gwHeaders = { ...headers, authorization: `Bearer ${CLIENT}` };
async function one(pool, h, model = 'identity_fp32', payload = body) {
  const t0 = performance.now();
  const r = await pool.request({ method: 'POST', path: `/v2/models/${model}/infer`, headers: h, body: payload });
  await r.body.text();
  if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
  return performance.now() - t0;
}
for (let k = 0; k < 300; k++) {
  await one(direct, headers);
  await one(gateway, gwHeaders);
  await one(reference, headers);
}
const lat = { direct: [], gateway: [], reference: [] };
for (let block = 0; block < REQUESTS / 100; block++) {
  for (let k = 0; k < 100; k++) lat.direct.push(await one(direct, headers));
  for (let k = 0; k < 100; k++) lat.gateway.push(await one(gateway, gwHeaders));
  for (let k = 0; k < 100; k++) lat.reference.push(await one(reference, headers));
}
const c1 = { directP50Us: pct(lat.direct, 0.5) * 1000, gatewayP50Us: pct(lat.gateway, 0.5) * 1000, referenceP50Us: pct(lat.reference, 0.5) * 1000, loadAverage: load() };
c1.overheadUs = c1.gatewayP50Us - c1.directP50Us;
c1.referenceOverheadUs = c1.referenceP50Us - c1.directP50Us;
console.log(`c=1: direct p50 ${c1.directP50Us.toFixed(0)} µs, gateway p50 ${c1.gatewayP50Us.toFixed(0)} µs → routing overhead ${c1.overheadUs.toFixed(0)} µs (${N} other nodes listed); reference proxy p50 ${c1.referenceP50Us.toFixed(0)} µs → ${c1.referenceOverheadUs.toFixed(0)} µs; load ${c1.loadAverage}`);

async function closed(pool, h, seconds, model, payload) {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < end) {
      await one(pool, h, model, payload);
      done++;
    }
  }));
  return done / seconds;
}
const secs = QUICK ? 2 : 5;
const tput = { direct: 0, gateway: 0, reference: 0 };
for (let round = 0; round < 2; round++) {
  tput.direct += await closed(direct, headers, secs);
  tput.gateway += await closed(gateway, gwHeaders, secs);
  tput.reference += await closed(reference, headers, secs);
}
const c32 = { directRps: tput.direct / 2, gatewayRps: tput.gateway / 2, referenceRps: tput.reference / 2, loadAverage: load() };
c32.ratio = c32.gatewayRps / c32.directRps;
c32.referenceRatio = c32.referenceRps / c32.directRps;
console.log(`c=32: direct ${c32.directRps.toFixed(0)} req/s, gateway ${c32.gatewayRps.toFixed(0)} req/s → ratio ${c32.ratio.toFixed(2)}; reference proxy ${c32.referenceRps.toFixed(0)} req/s → ${c32.referenceRatio.toFixed(2)}; load ${c32.loadAverage}`);

// The same c=32 ratio for a model that computes (mlp_heavy, about 2 ms a request at batch 1,
// batched): not a target, it shows how the gateway's fixed cost per request weighs against work.
const heavyBody = JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1024], datatype: 'FP32', data: Array.from({ length: 1024 }, (_, i) => (i % 13) / 13) }] });
await closed(direct, headers, 1, 'mlp_heavy', heavyBody); // warm
const heavy = { direct: 0, gateway: 0 };
for (let round = 0; round < 2; round++) {
  heavy.direct += await closed(direct, headers, secs, 'mlp_heavy', heavyBody);
  heavy.gateway += await closed(gateway, gwHeaders, secs, 'mlp_heavy', heavyBody);
}
const c32Compute = { model: 'mlp_heavy', directRps: heavy.direct / 2, gatewayRps: heavy.gateway / 2, loadAverage: load() };
c32Compute.ratio = c32Compute.gatewayRps / c32Compute.directRps;
console.log(`c=32, mlp_heavy: direct ${c32Compute.directRps.toFixed(0)} req/s, gateway ${c32Compute.gatewayRps.toFixed(0)} req/s → ratio ${c32Compute.ratio.toFixed(2)}; load ${c32Compute.loadAverage}`);

// Verdicts -------------------------------------------------------------------------------------
const verdicts = [
  [`routing overhead p50 ≤ 300 µs`, c1.overheadUs <= 300, `${c1.overheadUs.toFixed(0)} µs`],
  [`throughput through the gateway ≥ 0.8 of direct (c=32)`, c32.ratio >= 0.8, c32.ratio.toFixed(2)],
  [`${N} nodes under 25% of one core`, cpu.coreFraction < 0.25, `${(cpu.coreFraction * 100).toFixed(2)}%`],
];
for (const [what, ok, value] of verdicts) console.log(`${ok ? 'PASS' : 'FAIL'} ${what}: ${value}`);
// Not targets: how far the gateway is from the floor any fastify + undici proxy has here.
console.log(`(reference proxy on this machine: overhead ${c1.referenceOverheadUs.toFixed(0)} µs at c=1, ratio ${c32.referenceRatio.toFixed(2)} at c=32; the gateway's extra over it: ${(c1.overheadUs - c1.referenceOverheadUs).toFixed(0)} µs, ${(c32.ratio / c32.referenceRatio).toFixed(2)} of its throughput)`);

const results = { date: new Date().toISOString(), nodes: N, windowS: WINDOW_S, cores: os.cpus().length, shared: true, memoryPerNode: memPerNode, cpu, cpuWithDashboard: cpuDash, command, dashboard, routing: { c1, c32, c32Compute }, verdicts: verdicts.map(([what, ok, value]) => ({ what, ok, value })) };
if (!QUICK) {
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  const file = path.join(ROOT, `bench/results/fleet-scale-${results.date.slice(0, 10)}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`wrote ${path.relative(ROOT, file)}`);
}

for (const a of agents) {
  clearInterval(a.timer);
  a.ws.terminate();
}
agent.kill('SIGTERM');
await direct.close();
await gateway.close();
await reference.close();
await referenceProxy.close();
await admin.close();
const childExit = new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
child.send('close');
await childExit;
process.exit(0);
