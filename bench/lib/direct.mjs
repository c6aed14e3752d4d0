// The compute limit: onnxruntime-node called directly in the bench process, with the session
// options the agent uses: the agent's own ortOptions(sessionDefaults(config)) (from dist/), for
// the AgentConfig that its parseArgs + loadConfig make of the very argv and environment the agent
// child gets. The bench's models set no per-model `parameters`, so no per-model override applies.
import { createRequire } from 'node:module';
import '../../dist/src/util/ort-env.js'; // onnxruntime's telemetry off, as in the agent
import * as ort from 'onnxruntime-node';
import { loadConfig, parseArgs } from '../../dist/src/index.js';
import { sessionDefaults } from '../../dist/src/agent.js';
import { ortOptions } from '../../dist/src/execution/ort-session.js';

export function ortVersion() {
  const require = createRequire(import.meta.url);
  return require('onnxruntime-node/package.json').version;
}

let current;

/** Set the options from the agent's `serve` argv (call before createSession). */
export function useAgentArgv(serveArgv, env = process.env) {
  const c = loadConfig(parseArgs(serveArgv), env);
  const opts = ortOptions(sessionDefaults(c), c.providers);
  current = opts;
  return opts;
}

export function agentSessionOptions() {
  if (!current) throw new Error('useAgentArgv() first');
  return current;
}

/** Readable form of the options for the report. */
export function describeOptions(o) {
  return {
    ...o,
    executionProviders: o.executionProviders.map((p) => (typeof p === 'string' ? p : p.name)),
    intraOpNumThreads: o.intraOpNumThreads ?? '0 (onnxruntime default: one per physical core)',
    interOpNumThreads: o.interOpNumThreads ?? '0 (onnxruntime default)',
    ...(o.extra ? { extra: JSON.stringify(o.extra) } : {}),
  };
}

export function createSession(file) {
  return ort.InferenceSession.create(file, agentSessionOptions());
}

/** Feeds factory: new ort.Tensor objects over fixed data, as the agent builds per request. */
export function feedsOf(inputs) {
  return () => {
    const f = {};
    for (const t of inputs) f[t.name] = new ort.Tensor('float32', t.data, t.shape);
    return f;
  };
}

/** Per-call latency (µs) of `new Tensor(s)` + `await session.run(feeds)`. */
export async function runLatency(session, makeFeeds, n, warmup) {
  for (let i = 0; i < warmup; i++) await session.run(makeFeeds());
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(makeFeeds());
    out[i] = Number(process.hrtime.bigint() - t0) / 1e3;
  }
  return out;
}

/** Back-to-back runs for `durationMs`: runs/s and per-run latencies (µs). */
export async function runThroughput(session, makeFeeds, durationMs, warmupRuns) {
  for (let i = 0; i < warmupRuns; i++) await session.run(makeFeeds());
  const lat = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(durationMs * 1e6));
  let t = start;
  while (t < end) {
    const t0 = t;
    await session.run(makeFeeds());
    t = process.hrtime.bigint();
    lat.push(Number(t - t0) / 1e3);
  }
  const seconds = Number(t - start) / 1e9;
  return { runs: lat.length, seconds, runsPerSecond: lat.length / seconds, latUs: lat };
}

/** Zero inputs of `rows` rows for a [-1, width] FP32 input (the agent's warm-up data). */
export function zeros(name, rows, width) {
  return [{ name, shape: [rows, width], data: new Float32Array(rows * width) }];
}
