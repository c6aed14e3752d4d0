#!/usr/bin/env node
// CPU per request of each process on the gateway path: the client (undici), the coordinator
// (the gateway) and the agent (a CLI process serving identity_fp32 on CPU), direct and through
// the gateway, at concurrency 1 and 32. CPU time (user + system, from process.cpuUsage and
// /proc/<pid>/stat) is much less sensitive to a shared machine than wall-clock latency, so it
// shows a cut in per-request work where the latency figures drown in noise.
//
//   node bench/gateway-cpu.mjs [--requests=3000] [--profile-dir=DIR] [--gateway-processes=N]
//   (--gateway-processes: the coordinator also runs N gateway processes; a 'processes' row
//   measures the same requests through their port, CPU summed over the coordinator and them)
//   (--profile-dir: the coordinator runs under --cpu-prof and writes its profile there, the
//   reference proxy its own in DIR/reference)
//
// A third row, "reference", is the same requests through bench/lib/reference-proxy.mjs (the
// least a fastify + undici proxy does, no routing or accounting): the floor a Node proxy costs here.
//
// The 2-core arithmetic: at c=32 every request through the gateway costs client + coordinator +
// agent CPU, direct costs client + agent, so on C cores the best ratio is
// (client_direct + agent) / (client_gw + coordinator + agent) when CPU is the bottleneck.
import { fork } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { startBenchCoordinator, startFleetAgent, startReferenceProxy } from './lib/fleet-agent.mjs';
import { cpuTimesUs } from './lib/proc.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const TOKEN = 'bench-admin-token';
const CLIENT = 'bench-client-token';
const arg = (name, dflt) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};

const GATEWAY_PROCESSES = Number(arg('gateway-processes', 0));
if (process.argv.includes('--child')) {
  const c = await startBenchCoordinator(ROOT, { token: TOKEN, clientToken: CLIENT, prefix: 'gw-cpu', gatewayProcesses: GATEWAY_PROCESSES });
  process.on('message', (m) => {
    if (m === 'cpu') process.send({ cpu: process.cpuUsage() });
    else if (m === 'ready') process.send({ ready: c.nodes().some((n) => n.models.some((x) => x.name === 'identity_fp32' && x.state === 'READY')) });
    else if (m === 'pids') process.send({ pids: c.gatewayProcessPids() });
    else if (m === 'close') void c.close().then(() => process.exit(0));
  });
  process.send({ url: c.url, agentsUrl: c.agentsUrl, gatewayUrl: c.gatewayUrl });
  await new Promise(() => undefined);
}

const REQUESTS = Number(arg('requests', 3000));
const PROFILE = arg('profile-dir', undefined);
/** --only=32: measure c=32 only (a profile of the gateway under load, without the c=1 phases). */
const ONLY = arg('only', undefined);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const child = fork(fileURLToPath(import.meta.url), ['--child', ...process.argv.filter((a) => a.startsWith('--gateway-processes='))], { execArgv: PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`] : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const replies = [];
child.on('message', (m) => replies.shift()?.(m));
const first = new Promise((r) => replies.push(r));
const ask = (m) => new Promise((r) => {
  replies.push(r);
  child.send(m);
});
const { url, agentsUrl, gatewayUrl } = await first;

const { agent, agentUrl } = await startFleetAgent(ROOT, { agentsUrl, token: TOKEN, prefix: 'gw-cpu' });
for (let t = 0; t < 300 && !(await ask('ready')).ready; t++) await sleep(100);

const agentCpuUs = () => cpuTimesUs(agent.pid).totalUs;
let coordSystemUs = 0;
const coordCpuUs = async () => {
  const { cpu } = await ask('cpu');
  coordSystemUs = cpu.system;
  return cpu.user + cpu.system;
};
const clientCpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

const referenceProxy = await startReferenceProxy(ROOT, agentUrl, PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(PROFILE, 'reference')}`] : []);
let referenceSystemUs = 0;
const referenceCpuUs = () => {
  const t = cpuTimesUs(referenceProxy.child.pid);
  referenceSystemUs = t.systemUs;
  return t.totalUs;
};

const body = JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
const direct = new Pool(agentUrl, { connections: 64 });
const gateway = new Pool(url, { connections: 64 });
const viaReference = new Pool(referenceProxy.url, { connections: 64 });
const viaProcesses = gatewayUrl ? new Pool(gatewayUrl, { connections: 64 }) : undefined;
const headers = { 'content-type': 'application/json' };
const gwHeaders = { ...headers, authorization: `Bearer ${CLIENT}` };
async function one(pool, h) {
  const r = await pool.request({ method: 'POST', path: '/v2/models/identity_fp32/infer', headers: h, body });
  await r.body.text();
  if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
}
async function run(pool, h, concurrency, n) {
  let left = n;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (left-- > 0) await one(pool, h);
  }));
}
let primaryOnlyUs = 0;
const processesCpuUs = async () => {
  const { pids } = await ask('pids');
  primaryOnlyUs = await coordCpuUs();
  return primaryOnlyUs + pids.reduce((sum, pid) => sum + cpuTimesUs(pid).totalUs, 0);
};
/** The proxy's CPU: the coordinator's for the gateway, the reference proxy's for 'reference'. */
const proxyCpuUs = async (name) => (name === 'reference' ? referenceCpuUs() : name === 'processes' ? await processesCpuUs() : await coordCpuUs());
async function measure(name, pool, h, concurrency) {
  await run(pool, h, concurrency, 300); // warm
  const [c0, a0, k0, t0] = [clientCpuUs(), agentCpuUs(), await proxyCpuUs(name), performance.now()];
  const s0 = name === 'reference' ? referenceSystemUs : coordSystemUs;
  const p0 = primaryOnlyUs;
  await run(pool, h, concurrency, REQUESTS);
  const [c1, a1, k1, t1] = [clientCpuUs(), agentCpuUs(), await proxyCpuUs(name), performance.now()];
  const primaryUs = Math.round((primaryOnlyUs - p0) / REQUESTS);
  const coordinatorSystemUs = Math.round(((name === 'reference' ? referenceSystemUs : coordSystemUs) - s0) / REQUESTS);
  const r = {
    name, concurrency, requests: REQUESTS, rps: Math.round(REQUESTS / ((t1 - t0) / 1000)),
    clientUs: Math.round((c1 - c0) / REQUESTS), coordinatorUs: Math.round((k1 - k0) / REQUESTS), agentUs: Math.round((a1 - a0) / REQUESTS), coordinatorSystemUs,
  };
  const proxy = `${name === 'reference' ? 'reference proxy' : name === 'processes' ? `coordinator + ${GATEWAY_PROCESSES} gateway processes` : 'coordinator'} ${r.coordinatorUs} µs${name === 'processes' ? ` (the coordinator's own ${primaryUs})` : ` (${r.coordinatorSystemUs} system)`}`;
  console.log(`${name.padEnd(9)} c=${String(concurrency).padEnd(2)} ${String(r.rps).padStart(5)} req/s   CPU per request: client ${r.clientUs} µs, ${proxy}, agent ${r.agentUs} µs`);
  return r;
}
if (viaProcesses) {
  // The processes learn of the node one broadcast (100 ms) after the coordinator does.
  for (let t = 0; t < 100; t++) {
    if (await one(viaProcesses, gwHeaders).then(() => true, () => false)) break;
    await sleep(50);
  }
}
console.log(`load before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} cores)`);
const results = [];
const levels = ONLY ? [Number(ONLY)] : [1, 32];
for (const c of levels) {
  results.push(await measure('direct', direct, headers, c));
  results.push(await measure('gateway', gateway, gwHeaders, c));
  results.push(await measure('reference', viaReference, headers, c));
  if (viaProcesses) results.push(await measure('processes', viaProcesses, gwHeaders, c));
}
console.log(`load after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const c of levels) {
  const d = results.find((r) => r.name === 'direct' && r.concurrency === c);
  const g = results.find((r) => r.name === 'gateway' && r.concurrency === c);
  const bound = (d.clientUs + d.agentUs) / (g.clientUs + g.coordinatorUs + g.agentUs);
  const ref = results.find((r) => r.name === 'reference' && r.concurrency === c);
  const procs = results.find((r) => r.name === 'processes' && r.concurrency === c);
  if (procs) console.log(`c=${c}: through ${GATEWAY_PROCESSES} gateway processes ${(procs.rps / d.rps).toFixed(2)} of direct, their CPU per request ${procs.coordinatorUs} µs`);
  console.log(`c=${c}: CPU-bound best gateway/direct ratio on a machine where all three share the cores = ${bound.toFixed(2)} (measured ${(g.rps / d.rps).toFixed(2)}); the reference proxy: ${(ref.rps / d.rps).toFixed(2)}, its CPU per request ${ref.coordinatorUs} µs against the gateway's ${g.coordinatorUs} µs (${(g.coordinatorUs / ref.coordinatorUs).toFixed(2)}×)`);
}
console.log(JSON.stringify({ date: new Date().toISOString(), cores: os.cpus().length, load: os.loadavg(), results }));
await direct.close();
await gateway.close();
await viaReference.close();
await viaProcesses?.close();
await referenceProxy.close();
agent.kill('SIGTERM');
await ask('close').catch(() => undefined);
