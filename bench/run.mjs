#!/usr/bin/env node
// gpu-node-agent benchmark (npm run bench [-- --quick]).
//
// Drives a real, listening agent (a child process: node dist/src/cli.js serve ...) over HTTP
// from this process, and compares it, in the same run and with the same client (undici, see
// lib/client.mjs), with two references:
//   - the compute limit: onnxruntime-node called directly in this process with the agent's
//     session options (lib/direct.mjs), measured while the agent is idle;
//   - the HTTP limit: an empty fastify route (bench/empty-server.mjs, another child process)
//     that receives the very same request bytes.
// Client and servers share this machine's cores; every phase reports how the CPU was shared
// (client, agent, empty route, other processes, steal) so noisy numbers can be recognised.
// Scenario 6 (images) drives a second agent that serves the repository's OCR models
// (lib/images.mjs): the text-direction classifier and the OCR pipeline on rendered PNGs.
//
// Options:
//   --quick              shorter runs (CI-sized, < 45 s with the build)
//   --only=1,3 / --only naive,overload
//                        run only these scenarios, by number or name: 1 overhead, 2 batching, 3 http,
//                        4 compute, 5 cold (start), 6 images; idle, worker, threading, naive, overload,
//                        fastapi (bench/scenarios/*.mjs); load-cycles, pull, fleet-scale (standalone
//                        bench/<name>.mjs files, run as child processes when present);
//                        partial runs do not write bench/results
//   --profile            run the agent under `node --cpu-prof` and print its top self-time functions
//                        (numbers are perturbed by the profiler: results are not written)
//   --queue-delay-us=N   max_queue_delay_microseconds of mlp_batch and mlp_heavy (default 500, the bundled mlp's)
//   --agent-args="..."   extra `serve` flags for the agent, e.g. "--intra-op-threads 1" (analysis only;
//                        the direct onnxruntime reference follows them, and so does the image agent of
//                        scenario 6; results are not written)
//   --no-keep-awake      no keep-awake spinners (see lib/children.mjs startSpinners): by default, during
//                        scenario 1 only, one nice-19 busy loop per core keeps idle vCPUs from halting,
//                        which otherwise adds wake-ups to every request at concurrency 1 on a VM; the
//                        full run also measures scenario 1 without them
//   --keep               keep the temporary model repository
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { request } from 'undici';
import { closedLoop, dispatcher, latencyLoop, send } from './lib/client.mjs';
import { killAll, liveChildren, startNode, startSpinners, stopChild } from './lib/children.mjs';
import { agentSessionOptions, createSession, describeOptions, feedsOf, ortVersion, runLatency, runThroughput, useAgentArgv, zeros } from './lib/direct.mjs';
import { buildImageRepository, checkClassifier, checkedLoop, checkOcr, IMAGE_MODELS, MIN_SIMILARITY, predictRequest, renderImages } from './lib/images.mjs';
import { buildRepository, MAX_BATCH } from './lib/models.mjs';
import { EXTRA_SCENARIOS, issueTable, NUMBERED, runStandalone, STANDALONE } from './scenarios/index.mjs';
import { cpuNs, cpusAllowed, loadAverage, probe, probeDelta, threadCount, waitForQuiet } from './lib/proc.mjs';
import { summarizeProfile } from './lib/profile.mjs';
import { mdTable, textTable } from './lib/report.mjs';
import { binaryRequest, decodeReply, f32, jsonRequest, maxAbsDiff } from './lib/requests.mjs';
import { fmtRate, fmtUs, median, round, summarize } from './lib/stats.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Options and parameters

/** `1,3` or `naive,overload` (or both): numbered scenarios as numbers, the others by name. */
function parseOnly(v) {
  const known = new Set([...Object.keys(NUMBERED), ...EXTRA_SCENARIOS.map((x) => x.name), ...STANDALONE]);
  const out = new Set();
  for (const item of String(v ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const key = /^\d+$/.test(item) ? Number(item) : NUMBERED[item] ?? item;
    if (typeof key === 'string' && !known.has(key)) throw new Error(`--only: unknown scenario '${item}'; known: 1-6, ${[...known].join(', ')}`);
    out.add(key);
  }
  if (out.size === 0) throw new Error('--only needs a list of scenarios, e.g. --only naive,overload');
  return out;
}

function parseOptions(argv) {
  const o = { quick: false, only: undefined, profile: false, queueDelayUs: 500, keep: false, agentArgs: [], keepAwake: true };
  for (const a of argv) {
    if (argv[argv.indexOf(a) - 1] === '--only') continue; // the value of `--only <names>`
    const [k, v] = a.split('=', 2);
    if (k === '--quick') o.quick = true;
    else if (k === '--profile') o.profile = true;
    else if (k === '--keep') o.keep = true;
    else if (k === '--no-keep-awake') o.keepAwake = false;
    else if (k === '--only') o.only = parseOnly(v ?? argv[argv.indexOf(a) + 1]);
    else if (k === '--queue-delay-us') o.queueDelayUs = Number(v);
    else if (k === '--agent-args') o.agentArgs = String(v ?? '').split(/\s+/).filter(Boolean);
    else if (k === '--help' || k === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option '${a}' (see --help)`);
  }
  if (!Number.isInteger(o.queueDelayUs) || o.queueDelayUs < 0) throw new Error('--queue-delay-us must be a non-negative integer');
  return o;
}

const OPT = parseOptions(process.argv.slice(2));
const P = OPT.quick
  ? {
      warmupMs: 250,
      s1: { n: 2000, warmup: 1000, chunk: 250 },
      s2: { levels: [1, 32, 64], rounds: 1, warmupMs: 250, durationMs: 800 },
      s3: { concurrency: 32, rounds: 2, warmupMs: 250, durationMs: 800, autocannonS: 0 },
      s4: { concurrency: 2 * MAX_BATCH, warmupMs: 500, durationMs: 1500, directMs: 800, reference: false },
      s5: { reps: 2 },
      // The image agent starts with the first one (its load overlaps the warm-up; idle until
      // scenario 6) to keep --quick short; the full run starts it for scenario 6 only.
      // The last run (OCR, c=16) does not wait for the pages still in flight when its window ends
      // (up to ~3 s on 2 cores): the image agent is stopped at once instead.
      s6: { startEarly: true, abandonLast: true, classifier: { warmupMs: 200, durationMs: 700 }, ocr1: { warmupMs: 300, durationMs: 1200 }, ocr16: { warmupMs: 2000, durationMs: 2500 } },
      idle: { durationMs: 2000 },
      worker: { n: 2000, chunk: 250 },
      threading: { n: 800, heavyMs: 250 },
      peers: { rounds: 1, durationS: 1, warmupS: 0 },
      overload: { durationS: 2, warmupS: 0 },
      fastapi: { rounds: 1, warmupMs: 800, durationMs: 2500, directMs: 1200 },
      quiet: { sampleMs: 150, maxWaitMs: 500, totalMs: 2000 },
      watchdogMs: 150_000,
    }
  : {
      warmupMs: 1500,
      s1: { n: 10_000, warmup: 3000, chunk: 500 },
      s2: { levels: [1, 8, 32, 64], rounds: 2, warmupMs: 500, durationMs: 3000 },
      s3: { concurrency: 32, rounds: 5, warmupMs: 300, durationMs: 2000, autocannonS: 3 },
      s4: { concurrency: 2 * MAX_BATCH, warmupMs: 1500, durationMs: 6000, directMs: 4000, reference: true },
      s5: { reps: 5 },
      s6: { startEarly: false, abandonLast: false, classifier: { warmupMs: 1000, durationMs: 4000 }, ocr1: { warmupMs: 1000, durationMs: 10_000 }, ocr16: { warmupMs: 6000, durationMs: 15_000 } },
      idle: { durationMs: 10_000 },
      worker: { n: 10_000, chunk: 500 },
      threading: { n: 3000, heavyMs: 1500 },
      peers: { rounds: 2, durationS: 3, warmupS: 1 },
      overload: { durationS: 5, warmupS: 1 },
      fastapi: { rounds: 2, warmupMs: 2000, durationMs: 6000, directMs: 4000 },
      quiet: { sampleMs: 250, maxWaitMs: 15_000, totalMs: 60_000 },
      watchdogMs: 600_000,
    };
const RUN = (n) => !OPT.only || OPT.only.has(n);
// Standalone bench files of other areas run only when named.
const RUN_STANDALONE = (n) => Boolean(OPT.only?.has(n));

const TARGETS = { overheadUs: 60, batchingGain: 3, httpEfficiency: 0.6, computeEfficiency: 0.9 };

// ---------------------------------------------------------------------------------------------
// Small helpers

const log = (...a) => console.log(...a);
const T0 = performance.now();
const step = (s) => process.stdout.write(`  … [${((performance.now() - T0) / 1000).toFixed(1)} s] ${s}\n`);

async function getJson(url) {
  const r = await request(url);
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${r.statusCode} ${text}`);
  return JSON.parse(text);
}

async function postJson(url, body) {
  const r = await request(url, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const text = await r.body.text();
  return { status: r.statusCode, body: text ? JSON.parse(text) : undefined };
}

async function waitModelsReady(url, names, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (const m of names) {
    for (;;) {
      const r = await request(`${url}/v2/models/${m}/ready`);
      const text = await r.body.text();
      if (r.statusCode === 200) break;
      if (/UNAVAILABLE/.test(text)) throw new Error(`model ${m} failed to load: ${text}`);
      if (Date.now() > deadline) throw new Error(`model ${m} not ready after ${timeoutMs} ms: ${text}`);
      await new Promise((res) => setTimeout(res, 25));
    }
  }
}

async function modelStats(url, model) {
  return (await getJson(`${url}/v2/models/${model}/stats`)).model_stats[0];
}

/** What the agent did between two stats snapshots: batch sizes and per-phase times. */
function statsDelta(a, b) {
  const d = (k) => ({ count: b.inference_stats[k].count - a.inference_stats[k].count, ns: b.inference_stats[k].ns - a.inference_stats[k].ns });
  const perCount = (x) => (x.count ? round(x.ns / x.count / 1e3, 1) : null);
  const inferences = b.inference_count - a.inference_count;
  const executions = b.execution_count - a.execution_count;
  const success = d('success');
  const queue = d('queue');
  const input = d('compute_input');
  const infer = d('compute_infer');
  const output = d('compute_output');
  const before = new Map(a.batch_stats.map((s) => [s.batch_size, s]));
  const histogram = b.batch_stats
    .map((s) => {
      const p = before.get(s.batch_size);
      const count = s.compute_infer.count - (p?.compute_infer.count ?? 0);
      const ns = s.compute_infer.ns - (p?.compute_infer.ns ?? 0);
      return { batch_size: s.batch_size, executions: count, infer_us_mean: count ? round(ns / count / 1e3, 1) : null };
    })
    .filter((h) => h.executions > 0);
  for (const h of histogram) h.rows_pct = round((100 * h.batch_size * h.executions) / Math.max(1, inferences), 1);
  return {
    inferences,
    executions,
    avg_batch: executions ? round(inferences / executions, 2) : null,
    per_request_us: { in_agent_total: perCount(success), queue: perCount(queue) },
    per_execution_us: { compute_input: perCount(input), compute_infer: perCount(infer), compute_output: perCount(output) },
    compute_infer_total_ms: round(infer.ns / 1e6, 1),
    histogram,
  };
}

/**
 * Run `fn` (a closed loop with warm-up) and probe the CPU exactly over its measured window
 * (timers at the window's start and end); returns fn's result and the CPU delta.
 */
async function withWindow(warmupMs, durationMs, pids, fn, extra = {}) {
  let a;
  let b;
  const ta = setTimeout(() => { a = probe(pids); extra.start?.(); }, warmupMs);
  const tb = setTimeout(() => { b = probe(pids); extra.end?.(); }, warmupMs + durationMs);
  const result = await fn();
  clearTimeout(ta);
  clearTimeout(tb);
  b ??= probe(pids);
  return { result, cpu: a ? probeDelta(a, b, result.requests) : undefined };
}

/** withWindow plus the agent's statistics for the model over the same window. */
async function withWindowStats(ctx, model, warmupMs, durationMs, fn) {
  let s0;
  let s1;
  const w = await withWindow(warmupMs, durationMs, ctx.pids, fn, {
    start: () => { s0 = modelStats(ctx.agentUrl, model); },
    end: () => { s1 = modelStats(ctx.agentUrl, model); },
  });
  const a = await (s0 ?? modelStats(ctx.agentUrl, model));
  const b = await (s1 ?? modelStats(ctx.agentUrl, model));
  return { result: w.result, stats: statsDelta(a, b), cpu: w.cpu };
}

const CPU_HEADERS = ['server CPU/req (main + other threads)', 'client CPU/req'];
const CPU_NOTE = 'CPU/req: on-CPU time (/proc/<pid>/task/*/schedstat) over the measured window ÷ replies; for the agent, its main (JS) thread + its other threads (onnxruntime intra-op pool, V8, libuv); client = the bench process (undici).';

function cpuCols(cpu, server = 'agent') {
  const p = cpu?.cpu_us_per_request;
  if (!p) return ['—', '—'];
  const srv = server === 'empty' ? fmtUs(p.empty) : `${fmtUs(p.agent_main_thread + p.agent_other_threads)} (${Math.round(p.agent_main_thread)} + ${Math.round(p.agent_other_threads)})`;
  return [srv, fmtUs(p.client)];
}

function cpuShares(c) {
  const p = c.processes_pct_of_one_core;
  const parts = Object.entries(p).filter(([k, v]) => v > 0 && !k.startsWith('keep-awake')).map(([k, v]) => `${k} ${v}%`);
  return `${parts.join(', ')} of one core; other processes ${c.foreign_pct ?? '?'}% of the machine`;
}

function latencyCols(l) {
  return [fmtUs(l.p50_us), fmtUs(l.p95_us), fmtUs(l.p99_us)];
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** 1. Per-request overhead at concurrency 1 on add_sub, batch 1. */
async function overhead(ctx, condition) {
  const { agentUrl, emptyUrl, models, pids } = ctx;
  const inputs = [
    { name: 'INPUT0', shape: [1, 16], data: f32(16, (i) => i) },
    { name: 'INPUT1', shape: [1, 16], data: f32(16, () => 1) },
  ];
  const out = { condition, model: 'add_sub', batch: 1, concurrency: 1, requests_per_variant: P.s1.n, interleaved_chunks_of: P.s1.chunk, variants: {} };
  const ec = dispatcher(emptyUrl, 1);
  const ac = dispatcher(agentUrl, 1);
  // Four streams (empty/agent x binary/JSON), warmed up and then measured in round-robin chunks,
  // so that none of them is measured "first" (the first phase after a change runs measurably
  // colder here) and slow drifts in background load hit all four alike.
  const reqs = [binaryRequest('add_sub', inputs), jsonRequest('add_sub', inputs)];
  const streams = reqs.flatMap((req) => [
    { kind: req.kind, server: 'empty', d: ec, req, lat: [] },
    { kind: req.kind, server: 'agent', d: ac, req, lat: [] },
  ]);
  try {
    step(`overhead (${condition}): warm-up, ${P.s1.warmup} requests per stream (empty/agent x binary/JSON), round-robin`);
    for (let done = 0; done < P.s1.warmup; done += P.s1.chunk) {
      for (const st of streams) await latencyLoop(st.d, st.req, Math.min(P.s1.chunk, P.s1.warmup - done));
    }
    step(`overhead (${condition}): ${P.s1.n} sequential requests per stream, chunks of ${P.s1.chunk}, round-robin`);
    await ctx.gate(`overhead (${condition})`);
    const c0 = probe(pids);
    for (let done = 0; done < P.s1.n; done += P.s1.chunk) {
      for (const st of streams) st.lat.push(...(await latencyLoop(st.d, st.req, Math.min(P.s1.chunk, P.s1.n - done))));
    }
    const cpu = probeDelta(c0, probe(pids), 2 * P.s1.n); // each server served 2 x n requests (binary + JSON)
    for (const req of reqs) {
      const e = streams.find((st) => st.kind === req.kind && st.server === 'empty').lat;
      const g = streams.find((st) => st.kind === req.kind && st.server === 'agent').lat;
      out.variants[req.kind] = { request_bytes: req.body.length, empty: summarize(e), agent: summarize(g) };
    }
    const pr = cpu.cpu_us_per_request;
    out.cpu = cpu;
    out.cpu_us_per_request = {
      empty: pr.empty,
      agent: round(pr.agent_main_thread + pr.agent_other_threads, 1),
      agent_main_thread: pr.agent_main_thread,
      agent_other_threads: pr.agent_other_threads,
      note: 'per request, averaged over the binary and JSON requests (measured together, interleaved)',
    };
  } finally {
    await ec.close();
    await ac.close();
  }
  step(`overhead (${condition}): ${P.s1.n} direct session.run calls in the bench process (agent idle)`);
  const session = await createSession(models.add_sub.file);
  await ctx.gate(`overhead direct (${condition})`);
  const c0 = probe(pids);
  const ns0 = cpuNs(process.pid);
  const lat = await runLatency(session, feedsOf(inputs), P.s1.n, P.s1.warmup);
  const ns1 = cpuNs(process.pid);
  const cpu = probeDelta(c0, probe(pids));
  // The same runs paced like the agent's concurrency-1 traffic: one empty-route round trip
  // (the process sleeps in epoll, as the agent does between requests) before each timed run.
  // Not part of the target; it shows what onnxruntime itself costs when it does not run hot.
  step(`overhead (${condition}): ${P.s1.n} direct session.run calls, each after one empty-route round trip`);
  const pacer = dispatcher(emptyUrl, 1);
  const makeFeeds = feedsOf(inputs);
  const paced = new Float64Array(P.s1.n);
  try {
    for (let i = 0; i < P.s1.n; i++) {
      await send(pacer, reqs[0]);
      const t0 = process.hrtime.bigint();
      await session.run(makeFeeds());
      paced[i] = Number(process.hrtime.bigint() - t0) / 1e3;
    }
  } finally {
    await pacer.close();
  }
  out.direct_paced = { ...summarize(paced), what: 'as direct, but each run follows one request to the empty route (not back-to-back)' };
  await session.release();
  out.direct = {
    ...summarize(lat),
    cpu_us_per_request: round((ns1 - ns0) / (P.s1.n + P.s1.warmup) / 1e3, 1),
    cpu,
    what: 'new ort.Tensor x2 + await session.run(feeds) (onnxruntime-node runs it after a setImmediate, synchronously)',
  };
  for (const v of Object.values(out.variants)) {
    v.overhead_p50_us = round(v.agent.p50_us - (v.empty.p50_us + out.direct.p50_us), 1);
    v.overhead_vs_paced_p50_us = round(v.agent.p50_us - (v.empty.p50_us + out.direct_paced.p50_us), 1);
  }
  out.overhead_cpu_us = round(out.cpu_us_per_request.agent - (out.cpu_us_per_request.empty + out.direct.cpu_us_per_request), 1);
  return out;
}

/** Rounds of closed-loop runs pooled: throughput over the summed windows, latencies pooled. */
function pooled(runs) {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const seconds = runs.reduce((n, r) => n + r.seconds, 0);
  return { rps: round(requests / seconds), requests, seconds, latency: summarize(runs.flatMap((r) => r.latUs)) };
}

/** Alternate A/B then B/A... so slow drifts in background load hit both sides alike. */
function order(pair, r) {
  return r % 2 === 0 ? pair : [pair[1], pair[0]];
}

/** 2. Dynamic batching on vs off on the mlp, closed loop at several concurrencies. */
async function batching(ctx) {
  const { agentUrl } = ctx;
  const x = { name: 'x', shape: [1, 256], data: f32(256, (i) => Math.sin(i)) };
  const out = {
    models: { off: 'mlp_nobatch', on: 'mlp_batch' },
    request: 'binary, batch 1 ([1,256] FP32 in, binary out)',
    warmup_ms: P.s2.warmupMs,
    duration_ms: P.s2.durationMs,
    rounds: P.s2.rounds,
    queue_delay_us: OPT.queueDelayUs,
    levels: [],
  };
  for (const c of P.s2.levels) {
    const runs = { off: [], on: [] };
    const gains = [];
    for (let r = 0; r < P.s2.rounds; r++) {
      const rps = {};
      for (const [key, model] of order([['off', 'mlp_nobatch'], ['on', 'mlp_batch']], r)) {
        step(`batching ${key}: ${model}, concurrency ${c}, ${P.s2.durationMs} ms${P.s2.rounds > 1 ? ` (round ${r + 1}/${P.s2.rounds})` : ''}`);
        const req = binaryRequest(model, [x]);
        await ctx.gate(`batching ${key} c=${c} #${r + 1}`);
        const { result, stats, cpu } = await withWindowStats(ctx, model, P.s2.warmupMs, P.s2.durationMs, () =>
          closedLoop(agentUrl, req, { concurrency: c, warmupMs: P.s2.warmupMs, durationMs: P.s2.durationMs }),
        );
        runs[key].push({ ...result, stats, cpu });
        rps[key] = result.rps;
      }
      gains.push(rps.on / rps.off);
    }
    const level = { concurrency: c };
    for (const key of ['off', 'on']) {
      const p = pooled(runs[key]);
      const inferences = runs[key].reduce((n, r) => n + r.stats.inferences, 0);
      const executions = runs[key].reduce((n, r) => n + r.stats.executions, 0);
      const inferNs = runs[key].reduce((n, r) => n + (r.stats.per_execution_us.compute_infer ?? 0) * 1e3 * r.stats.executions, 0);
      level[key] = {
        rps: p.rps,
        requests: p.requests,
        rounds_rps: runs[key].map((r) => round(r.rps)),
        latency: p.latency,
        avg_batch: executions ? round(inferences / executions, 2) : null,
        compute_infer_us_per_execution: executions ? round(inferNs / executions / 1e3, 1) : null,
        agent: runs[key].map((r) => r.stats),
        cpu: runs[key].at(-1).cpu,
        cpu_rounds: runs[key].map((r) => r.cpu),
      };
    }
    level.gains_per_round = gains.map((g) => round(g, 2));
    level.gain = round(median(gains), 2);
    out.levels.push(level);
  }
  return out;
}

/** 3. Agent throughput on add_sub vs the empty route, same request bytes, concurrency 32. */
async function http(ctx) {
  const { agentUrl, emptyUrl, pids } = ctx;
  const c = P.s3.concurrency;
  const inputs = [
    { name: 'INPUT0', shape: [1, 16], data: f32(16, (i) => i) },
    { name: 'INPUT1', shape: [1, 16], data: f32(16, () => 1) },
  ];
  const req = binaryRequest('add_sub', inputs);
  const out = {
    concurrency: c,
    request: `binary add_sub batch 1 (${req.body.length} bytes, binary outputs); the empty route gets the same bytes`,
    warmup_ms: P.s3.warmupMs,
    duration_ms: P.s3.durationMs,
    rounds: [],
  };
  const runs = { empty: [], agent: [] };
  for (let r = 0; r < P.s3.rounds; r++) {
    const round_ = {};
    for (const [key, url] of order([['empty', emptyUrl], ['agent', agentUrl]], r)) {
      step(`http round ${r + 1}/${P.s3.rounds}: ${key}, concurrency ${c}, ${P.s3.durationMs} ms`);
      await ctx.gate(`http ${key} #${r + 1}`);
      const { result: res, cpu } = await withWindow(P.s3.warmupMs, P.s3.durationMs, pids, () =>
        closedLoop(url, req, { concurrency: c, warmupMs: P.s3.warmupMs, durationMs: P.s3.durationMs }),
      );
      runs[key].push(res);
      round_[key] = { rps: round(res.rps), latency: summarize(res.latUs), cpu };
    }
    round_.efficiency = round(round_.agent.rps / round_.empty.rps, 3);
    out.rounds.push(round_);
  }
  const pe = pooled(runs.empty);
  const pa = pooled(runs.agent);
  out.empty_rps = pe.rps;
  out.agent_rps = pa.rps;
  out.empty_latency = pe.latency;
  out.agent_latency = pa.latency;
  out.efficiency = round(median(out.rounds.map((r) => r.efficiency)), 3);
  if (P.s3.autocannonS > 0) {
    // Cross-check only (not the target): autocannon's raw-socket client costs less CPU per
    // request than undici, which matters when client and server share 2 cores.
    const { default: autocannon } = await import('autocannon');
    out.autocannon = {};
    for (const [key, url] of [['empty', emptyUrl], ['agent', agentUrl]]) {
      step(`http cross-check with autocannon: ${key}, ${c} connections, ${P.s3.autocannonS} s`);
      await ctx.gate(`http autocannon ${key}`);
      const c0 = probe(pids);
      const r = await autocannon({ url: url + req.path, method: 'POST', headers: req.headers, body: req.body, connections: c, pipelining: 1, duration: P.s3.autocannonS });
      if (r.non2xx || r.errors) throw new Error(`autocannon against ${key}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      out.autocannon[key] = { rps: round(r.requests.average), latency_p50_ms: r.latency.p50, cpu: probeDelta(c0, probe(pids), r.requests.total) };
    }
    out.autocannon.efficiency = round(out.autocannon.agent.rps / out.autocannon.empty.rps, 3);
  }
  return out;
}

/** 4. mlp_heavy at saturation vs direct onnxruntime at the batch size the agent formed. */
async function compute(ctx) {
  const { agentUrl, models, pids } = ctx;
  const c = P.s4.concurrency;
  const x = { name: 'x', shape: [1, 1024], data: f32(1024, (i) => Math.cos(i)) };
  const req = binaryRequest('mlp_heavy', [x]);
  step(`compute: mlp_heavy, concurrency ${c}, ${P.s4.durationMs} ms`);
  await ctx.gate('compute agent');
  const { result, stats, cpu: cpuAgent } = await withWindowStats(ctx, 'mlp_heavy', P.s4.warmupMs, P.s4.durationMs, () =>
    closedLoop(agentUrl, req, { concurrency: c, warmupMs: P.s4.warmupMs, durationMs: P.s4.durationMs }),
  );
  const batch = Math.max(1, Math.round(stats.avg_batch ?? 1));
  const mode = [...stats.histogram].sort((a, b) => b.executions - a.executions)[0]?.batch_size ?? batch;
  step(`compute: direct session.run at batch ${batch} for ${P.s4.directMs} ms (agent idle)`);
  const session = await createSession(models.mlp_heavy.file);
  await ctx.gate('compute direct');
  const c1 = probe(pids);
  const feeds = feedsOf([{ name: 'x', shape: [batch, 1024], data: f32(batch * 1024, (i) => Math.cos(i % 1024)) }]);
  const d = await runThroughput(session, feeds, P.s4.directMs, 5);
  const cpuDirect = probeDelta(c1, probe(pids));
  const directAt = { batch, rows_per_s: round(d.runsPerSecond * batch), run_us: summarize(d.latUs), runs: d.runs, cpu: cpuDirect };
  let directMax;
  if (batch !== MAX_BATCH && P.s4.reference) {
    step(`compute: direct session.run at batch ${MAX_BATCH} (reference only)`);
    const dm = await runThroughput(session, feedsOf([{ name: 'x', shape: [MAX_BATCH, 1024], data: f32(MAX_BATCH * 1024, (i) => Math.cos(i % 1024)) }]), Math.min(1000, P.s4.directMs), 3);
    directMax = { batch: MAX_BATCH, rows_per_s: round(dm.runsPerSecond * MAX_BATCH), run_us: summarize(dm.latUs) };
  }
  // Same answer as the agent? (one request through the agent vs the same row run directly)
  const ac = dispatcher(agentUrl, 1);
  const reply = await send(ac, req, true);
  await ac.close();
  const direct1 = await session.run(feedsOf([x])());
  const diff = maxAbsDiff(decodeReply(reply.headers, reply.body).y, direct1.y.data);
  await session.release();
  if (!(diff < 1e-3)) throw new Error(`mlp_heavy: the agent's output differs from direct onnxruntime by ${diff}`);
  const agentRowsPerS = round(result.rps); // one row per request
  const windowMs = P.s4.durationMs;
  return {
    model: 'mlp_heavy',
    concurrency: c,
    request: 'binary, batch 1 ([1,1024] FP32 in, binary out)',
    agent: { rows_per_s: agentRowsPerS, latency: summarize(result.latUs), stats, cpu: cpuAgent, compute_busy_pct: round((100 * stats.compute_infer_total_ms) / windowMs, 1) },
    direct: directAt,
    direct_at_max_batch: directMax,
    modal_batch: mode,
    efficiency: round(agentRowsPerS / directAt.rows_per_s, 3),
    agent_vs_direct_output_max_abs_diff: diff,
  };
}

/** 5. Cold start: unload + load through the API vs InferenceSession.create + one run. */
async function coldStart(ctx) {
  const { agentUrl, models } = ctx;
  const out = { reps: P.s5.reps, note: 'model files are in the OS page cache (warm-cache load)', models: {} };
  for (const [model, width] of [['mlp_heavy', 1024], ['mlp_batch', 256]]) {
    step(`cold start: ${model}, ${P.s5.reps} x (unload, load) and ${P.s5.reps} x direct create + run`);
    const client = [];
    const agentLoadMs = [];
    for (let i = 0; i < P.s5.reps; i++) {
      const u = await postJson(`${agentUrl}/v2/repository/models/${model}/unload`);
      if (u.status !== 200) throw new Error(`unload ${model}: ${JSON.stringify(u.body)}`);
      const t0 = process.hrtime.bigint();
      const l = await postJson(`${agentUrl}/v2/repository/models/${model}/load`);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (l.status !== 200) throw new Error(`load ${model}: ${JSON.stringify(l.body)}`);
      client.push(ms);
      agentLoadMs.push((await modelStats(agentUrl, model)).load_ms);
    }
    const direct1 = [];
    const directWarm = [];
    for (let i = 0; i < P.s5.reps; i++) {
      let t0 = process.hrtime.bigint();
      let s = await createSession(models[model].file);
      await s.run(feedsOf(zeros('x', 1, width))());
      direct1.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await s.release();
      t0 = process.hrtime.bigint();
      s = await createSession(models[model].file);
      await s.run(feedsOf(zeros('x', 1, width))());
      await s.run(feedsOf(zeros('x', MAX_BATCH, width))());
      directWarm.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await s.release();
    }
    out.models[model] = {
      file_mb: round(models[model].bytes / 1e6, 1),
      agent_load_client_ms: round(median(client), 1),
      agent_load_ms_reported: median(agentLoadMs),
      direct_create_run1_ms: round(median(direct1), 1),
      direct_create_warmup_ms: round(median(directWarm), 1),
      samples: { client, agentLoadMs, direct1, directWarm },
    };
  }
  return out;
}

/** Sums of a {count, ns} field between two stats snapshots. */
function durDelta(a, b) {
  return { count: b.count - (a?.count ?? 0), ns: b.ns - (a?.ns ?? 0) };
}

/** statsDelta plus the image decoding + preprocessing time (`preprocess`, before the queue). */
function imageStatsDelta(a, b) {
  const out = statsDelta(a, b);
  const pre = durDelta(a.inference_stats.preprocess, b.inference_stats.preprocess);
  const success = durDelta(a.inference_stats.success, b.inference_stats.success);
  const queue = durDelta(a.inference_stats.queue, b.inference_stats.queue);
  const infer = durDelta(a.inference_stats.compute_infer, b.inference_stats.compute_infer);
  const exec = ['compute_input', 'compute_infer', 'compute_output'].reduce((n, k) => n + durDelta(a.inference_stats[k], b.inference_stats[k]).ns, 0);
  out.totals_ns = { preprocess: pre.ns, queue: queue.ns, success: success.ns, compute_infer: infer.ns, compute_all: exec };
  out.preprocess = pre;
  // Per image (one image per request here): decode + preprocess, queue, then the run of the batch
  // it was in (success − queue: compute_input + compute_infer + compute_output of that batch).
  const per = (ns, n) => (n ? round(ns / n / 1e3, 1) : null);
  const runPerRequest = success.count ? (success.ns - queue.ns) / success.count : NaN;
  out.per_image_us = {
    decode_preprocess: per(pre.ns, pre.count),
    queue: per(queue.ns, queue.count),
    model_run: Number.isFinite(runPerRequest) ? round(runPerRequest / 1e3, 1) : null,
    model_work: per(infer.ns, out.inferences), // compute_infer ÷ images: the model's cost of one image once batched
  };
  const inAgent = (pre.ns / Math.max(1, pre.count)) + (success.ns / Math.max(1, success.count));
  const pct = (x) => (inAgent > 0 && Number.isFinite(x) ? round((100 * x) / inAgent, 1) : null);
  out.share_of_time_in_agent_pct = {
    decode_preprocess: pct(pre.ns / Math.max(1, pre.count)),
    queue: pct(queue.ns / Math.max(1, queue.count)),
    model_run: pct(runPerRequest),
  };
  out.decode_vs_model_work_pct = pre.ns + infer.ns > 0 ? round((100 * pre.ns) / (pre.ns + infer.ns), 1) : null;
  return out;
}

const OCR_STAGES = ['decode', 'detection', 'crop', 'direction', 'recognition'];
/** Which stage runs which model (for the model-run split of the pipeline's stages). */
const STAGE_MODELS = { detection: 'text_detection', direction: 'text_direction', recognition: 'text_recognition' };

/** The pipeline's statistics between two snapshots: time per stage per image and its share. */
function pipelineDelta(a, b) {
  const pa = a.pipeline_stats;
  const pb = b.pipeline_stats;
  const success = durDelta(pa.success, pb.success);
  const fail = durDelta(pa.fail, pb.fail);
  const stages = {};
  let sum = 0;
  for (const k of OCR_STAGES) {
    const d = pb.stages[k] ? durDelta(pa.stages[k], pb.stages[k]) : { count: 0, ns: 0 };
    stages[k] = d;
    sum += d.ns;
  }
  for (const k of OCR_STAGES) {
    const d = stages[k];
    d.ms_per_image = d.count ? round(d.ns / d.count / 1e6, 2) : null;
    d.share_pct = sum > 0 ? round((100 * d.ns) / sum, 1) : null;
  }
  return { images: success.count, failed: fail.count, ms_per_image: success.count ? round(success.ns / success.count / 1e6, 2) : null, stages };
}

/** Every stats snapshot scenario 6 needs, fetched together. */
async function imageAgentStats(url) {
  const all = await Promise.all(IMAGE_MODELS.map((m) => getJson(`${url}/v2/models/${m}/stats`)));
  return Object.fromEntries(IMAGE_MODELS.map((m, i) => [m, all[i].model_stats[0]]));
}

/**
 * 6. Images: the text-direction classifier and the OCR pipeline through POST /v1/models/{m}/predict
 * (PNG body), closed loop at concurrency 1 and 16; every answer checked; per run the agent's
 * statistics deltas say where the time went (decode vs the model stages).
 */
async function images(ctx) {
  const { url, pids, rendered } = ctx;
  const out = {
    agent: ctx.agentInfo,
    route: 'POST /v1/models/{model}/predict, body = the PNG, Content-Type image/png (JSON answer)',
    inputs: {
      classifier: { text: rendered.line.text, width: rendered.line.width, height: rendered.line.height, font_px: rendered.line.font_px, png_bytes: rendered.line.bytes },
      ocr: { lines: rendered.ocr.lines, width: rendered.ocr.width, height: rendered.ocr.height, font_px: rendered.ocr.font_px, png_bytes: rendered.ocr.bytes },
      font: 'DejaVu Sans, black on white',
    },
    checks: { classifier: "top prediction label '0' (upright)", ocr: `${rendered.ocr.lines.length} lines in order, each with similarity ≥ ${MIN_SIMILARITY} (1 − edit distance ÷ longer length) and angle 0` },
    runs: [],
  };
  const cls = predictRequest('text_direction', rendered.line.png);
  const ocr = predictRequest('ocr', rendered.ocr.png);
  const checkLine = checkClassifier;
  const checkPage = checkOcr(rendered.ocr.lines);
  // First answers (also the first runs at these shapes): shown, and kept in the results.
  {
    const d = dispatcher(url, 1);
    try {
      const first = {};
      for (const [k, req, check] of [['classifier', cls, checkLine], ['ocr', ocr, checkPage]]) {
        try {
          const r = await send(d, req, true);
          const j = JSON.parse(r.body.toString('utf8'));
          first[k] = { answer: k === 'ocr' ? j.lines.map((l) => ({ text: l.text, confidence: round(l.confidence, 3), box: l.box, angle: l.angle })) : j.predictions, problem: check(r.body) ?? null };
        } catch (err) {
          first[k] = { error: err.message };
        }
      }
      out.first_answers = first;
      const c = first.classifier;
      const o = first.ocr;
      step(`images: first answers: classifier ${c.error ? `error ${c.error}` : `${c.answer[0].label} (${round(c.answer[0].score, 3)})${c.problem ? ` WRONG: ${c.problem}` : ''}`}; ocr ${o.error ? `error ${o.error}` : `${JSON.stringify(o.answer.map((l) => l.text))}${o.problem ? ` WRONG: ${o.problem}` : ''}`}`);
    } finally {
      await d.close();
    }
  }
  out.agent.threads = threadCount(ctx.pid);
  out.agent.load_ms = Object.fromEntries(await Promise.all(['text_detection', 'text_direction', 'text_recognition'].map(async (m) => [m, (await modelStats(url, m)).load_ms])));
  const plan = [
    ['text_direction', 'classifier', cls, checkLine, 1, P.s6.classifier],
    ['text_direction', 'classifier', cls, checkLine, 16, P.s6.classifier],
    ['ocr', 'pipeline', ocr, checkPage, 1, P.s6.ocr1],
    ['ocr', 'pipeline', ocr, checkPage, 16, P.s6.ocr16],
  ];
  for (const [i, [model, kind, req, check, c, t]] of plan.entries()) {
    const abandon = P.s6.abandonLast && i === plan.length - 1;
    step(`images: ${model}, concurrency ${c}, ${t.durationMs} ms after ${t.warmupMs} ms warm-up`);
    await ctx.gate(`images ${model} c=${c}`);
    let s0;
    let s1;
    const w = await withWindow(t.warmupMs, t.durationMs, pids, () => checkedLoop(url, req, check, { concurrency: c, warmupMs: t.warmupMs, durationMs: t.durationMs, abandon }), {
      start: () => { s0 = imageAgentStats(url); },
      end: () => { s1 = imageAgentStats(url); },
    });
    const a = await (s0 ?? imageAgentStats(url));
    const b = await (s1 ?? imageAgentStats(url));
    const r = w.result;
    const run = {
      model,
      kind,
      concurrency: c,
      warmup_ms: t.warmupMs,
      duration_ms: t.durationMs,
      images_per_s: round(r.rps, 1),
      images: r.requests,
      latency: summarize(r.latUs),
      errors: r.errors,
      wrong: r.wrong,
      first_error: r.first_error,
      first_wrong: r.first_wrong,
      failures_outside_window: r.failures_total - r.errors - r.wrong,
      ...(abandon ? { abandoned_in_flight: r.abandoned_in_flight, note: 'requests in flight at the end of the window were not awaited (the image agent was stopped right after)' } : {}),
      cpu: w.cpu,
    };
    if (kind === 'classifier') {
      run.agent = imageStatsDelta(a.text_direction, b.text_direction);
    } else {
      run.pipeline = pipelineDelta(a.ocr, b.ocr);
      run.stage_models = {};
      for (const [stage, m] of Object.entries(STAGE_MODELS)) {
        const d = statsDelta(a[m], b[m]);
        run.stage_models[stage] = {
          model: m,
          calls: d.inferences,
          executions: d.executions,
          avg_batch: d.avg_batch,
          compute_infer_ms_total: d.compute_infer_total_ms,
          compute_infer_ms_per_image: run.pipeline.images ? round(d.compute_infer_total_ms / run.pipeline.images, 2) : null,
          queue_ms_per_call: d.per_request_us.queue === null ? null : round(d.per_request_us.queue / 1e3, 2),
        };
      }
    }
    if (r.errors || r.wrong) step(`images: ${model} c=${c}: ${r.errors} error(s), ${r.wrong} wrong answer(s): ${r.first_error ?? r.first_wrong}`);
    out.runs.push(run);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Report

/** Which agent was measured: the commit, and the source files that differ from it. */
function agentBuild() {
  try {
    const git = (...a) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const changed = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).map((l) => l.slice(3));
    return { commit: git('rev-parse', '--short', 'HEAD'), src_changes_not_committed: changed };
  } catch {
    return { commit: 'unknown (no git)', src_changes_not_committed: [] };
  }
}

function machineInfo() {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpu_model: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    available_parallelism: os.availableParallelism(),
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    onnxruntime_node: ortVersion(),
    fastify: require('fastify/package.json').version,
    undici: require('undici/package.json').version,
    agent_version: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
    agent_build: agentBuild(),
    load_average_at_start: loadAverage(),
  };
}

function targets(s) {
  const t = [];
  if (s.overhead) {
    const v = s.overhead.variants.binary.overhead_p50_us;
    t.push({ name: `overhead (binary, c=1, p50, ${s.overhead.condition})`, pass: v <= TARGETS.overheadUs, value: `${v} µs`, target: `≤ ${TARGETS.overheadUs} µs` });
  }
  if (s.batching) {
    const l = s.batching.levels.find((x) => x.concurrency === 32);
    if (l) {
      const p95ok = l.on.latency.p95_us <= l.off.latency.p95_us;
      t.push({
        name: 'batching gain (mlp, c=32)',
        pass: l.gain >= TARGETS.batchingGain && p95ok,
        value: `${l.gain}x; p95 on ${fmtUs(l.on.latency.p95_us)} vs off ${fmtUs(l.off.latency.p95_us)} (${p95ok ? 'no worse' : 'worse'})`,
        target: `≥ ${TARGETS.batchingGain}x with p95 no worse`,
      });
    }
  }
  if (s.http) t.push({ name: 'HTTP efficiency (add_sub binary, c=32)', pass: s.http.efficiency >= TARGETS.httpEfficiency, value: String(s.http.efficiency), target: `≥ ${TARGETS.httpEfficiency}` });
  if (s.compute) t.push({ name: `compute efficiency (mlp_heavy, batch ${s.compute.direct.batch})`, pass: s.compute.efficiency >= TARGETS.computeEfficiency, value: String(s.compute.efficiency), target: `≥ ${TARGETS.computeEfficiency}` });
  return t;
}

/** Every table of the report, as [title, headers, rows, notes[]]. */
function tables(R) {
  const out = [];
  const s = R.scenarios;
  for (const o of [s.overhead, s.overhead_idle].filter(Boolean)) {
    const rows = [];
    for (const [k, v] of Object.entries(o.variants)) {
      rows.push([`empty fastify route (${k} body, ${v.request_bytes} B)`, ...latencyCols(v.empty), '']);
      rows.push([`agent add_sub (${k})`, ...latencyCols(v.agent), `${v.overhead_p50_us} µs`]);
    }
    rows.push(['direct session.run (in-process, back-to-back)', ...latencyCols(o.direct), '']);
    if (o.direct_paced) rows.push(['direct session.run, paced (reference only)', ...latencyCols(o.direct_paced), '']);
    const c = o.cpu_us_per_request;
    out.push([
      `1. Overhead${o === s.overhead_idle ? ' (secondary: idle CPUs, no keep-awake)' : ''}: add_sub, batch 1, concurrency 1, ${o.requests_per_variant} requests per stream; ${o.condition}`,
      ['', 'p50', 'p95', 'p99', 'overhead p50 = agent − (empty + direct)'],
      rows,
      [
        `Four streams (empty/agent x binary/JSON), one keep-alive connection per server, measured round-robin in chunks of ${o.interleaved_chunks_of} requests after a round-robin warm-up.`,
        ...(o.direct_paced ? [`Paced: each direct run follows one empty-route round trip instead of running back-to-back, as the agent's runs do at concurrency 1; against it the p50 overhead would be ${Object.entries(o.variants).map(([k, v]) => `${v.overhead_vs_paced_p50_us} µs (${k})`).join(', ')}. The target uses the back-to-back figure.`] : []),
        `CPU per request (on-CPU time of all threads, /proc schedstat, binary and JSON together): empty route ${fmtUs(c.empty)}, agent ${fmtUs(c.agent)} (main thread ${fmtUs(c.agent_main_thread)} + other threads ${fmtUs(c.agent_other_threads)}), direct session.run ${fmtUs(o.direct.cpu_us_per_request)} (bench process); agent − (empty + direct) = ${o.overhead_cpu_us} µs.`,
      ],
    ]);
  }
  if (s.batching) {
    const b = s.batching;
    const rows = b.levels.flatMap((l) => [
      [l.concurrency, 'off', fmtRate(l.off.rps), ...latencyCols(l.off.latency), l.off.avg_batch ?? '—', fmtUs(l.off.compute_infer_us_per_execution), '', ...cpuCols(l.off.cpu)],
      [l.concurrency, 'on', fmtRate(l.on.rps), ...latencyCols(l.on.latency), l.on.avg_batch ?? '—', fmtUs(l.on.compute_infer_us_per_execution), `${l.gain}x${l.gains_per_round.length > 1 ? ` (${l.gains_per_round.join(', ')})` : ''}`, ...cpuCols(l.on.cpu)],
    ]);
    out.push([
      `2. Batching gain: mlp ([-1,256], 3 layers), dynamic batching off (${b.models.off}) vs on (${b.models.on}, delay ${b.queue_delay_us} µs)`,
      ['concurrency', 'batching', 'req/s', 'p50', 'p95', 'p99', 'avg batch', 'compute_infer/batch', 'gain', ...CPU_HEADERS],
      rows,
      [`${b.request}; ${b.rounds} round(s) of ${b.duration_ms} ms per point (each after ${b.warmup_ms} ms warm-up), off and on alternated; req/s and latency pooled over rounds; gain = median of per-round on/off ratios; CPU columns from the last round.`, CPU_NOTE],
    ]);
  }
  if (s.http) {
    const h = s.http;
    const last = h.rounds.at(-1);
    const rows = [
      ['empty fastify route', fmtRate(h.empty_rps), ...latencyCols(h.empty_latency), `${h.rounds.map((r) => fmtRate(r.empty.rps)).join(' / ')}`, ...cpuCols(last.empty.cpu, 'empty')],
      ['agent add_sub', fmtRate(h.agent_rps), ...latencyCols(h.agent_latency), `${h.rounds.map((r) => fmtRate(r.agent.rps)).join(' / ')}`, ...cpuCols(last.agent.cpu)],
      ['efficiency agent ÷ empty', String(h.efficiency), '', '', '', h.rounds.map((r) => r.efficiency).join(' / '), '', ''],
    ];
    const notes = [`${h.request}; undici client, concurrency ${h.concurrency}; ${h.rounds.length} round(s) of ${h.duration_ms} ms each, empty and agent alternated; req/s and latency pooled; efficiency = median of per-round ratios; CPU columns from the last round.`, CPU_NOTE];
    if (h.autocannon) notes.push(`Cross-check with autocannon (cheaper client, not the target): empty ${fmtRate(h.autocannon.empty.rps)} req/s, agent ${fmtRate(h.autocannon.agent.rps)} req/s, efficiency ${h.autocannon.efficiency}.`);
    out.push([`3. HTTP efficiency: concurrency ${h.concurrency}`, ['', 'req/s', 'p50', 'p95', 'p99', 'per round req/s', ...CPU_HEADERS], rows, notes]);
  }
  if (s.compute) {
    const c = s.compute;
    const st = c.agent.stats;
    const hist = st.histogram.slice().sort((a, b) => b.executions - a.executions).slice(0, 6).map((h) => `${h.batch_size}×${h.executions}`).join(', ');
    const rows = [
      [`agent, concurrency ${c.concurrency}`, fmtRate(c.agent.rows_per_s), String(st.avg_batch), fmtUs(st.per_execution_us.compute_infer), fmtUs(c.agent.latency.p50_us)],
      [`direct session.run, batch ${c.direct.batch}`, fmtRate(c.direct.rows_per_s), String(c.direct.batch), fmtUs(c.direct.run_us.p50_us), ''],
    ];
    if (c.direct_at_max_batch) rows.push([`direct session.run, batch ${MAX_BATCH} (reference)`, fmtRate(c.direct_at_max_batch.rows_per_s), String(MAX_BATCH), fmtUs(c.direct_at_max_batch.run_us.p50_us), '']);
    rows.push(['efficiency agent ÷ direct', String(c.efficiency), '', '', '']);
    out.push([
      '4. Compute efficiency: mlp_heavy ([-1,1024], 20 layers) at saturation',
      ['', 'rows/s', 'batch', 'run time (agent: mean compute_infer; direct: p50)', 'request p50'],
      rows,
      [
        `Agent batches (size×executions, most frequent): ${hist}. Session busy ${c.agent.compute_busy_pct}% of the window.`,
        'compute_infer is the agent\'s own clock around `await session.run()`: onnxruntime-node 1.29 runs the session synchronously on the event-loop thread one setImmediate later, so it also counts the request handling the loop does before that turn.',
        `Agent per execution: compute_input ${fmtUs(st.per_execution_us.compute_input)}, compute_infer ${fmtUs(st.per_execution_us.compute_infer)}, compute_output ${fmtUs(st.per_execution_us.compute_output)}; per request: queue ${fmtUs(st.per_request_us.queue)}, in agent ${fmtUs(st.per_request_us.in_agent_total)}.`,
        c.agent.cpu ? `CPU: ${cpuShares(c.agent.cpu)} during the agent window; ${cpuShares(c.direct.cpu)} during the direct run.` : '',
      ].filter(Boolean),
    ]);
  }
  if (s.cold) {
    const rows = Object.entries(s.cold.models).map(([m, v]) => [
      `${m} (${v.file_mb} MB)`,
      `${v.agent_load_client_ms} ms`,
      `${v.agent_load_ms_reported} ms`,
      `${v.direct_create_run1_ms} ms`,
      `${v.direct_create_warmup_ms} ms`,
    ]);
    out.push([
      `5. Cold start: load-to-READY, median of ${s.cold.reps}`,
      ['model', 'agent load (client)', 'agent load_ms', 'direct create + 1 run', 'direct create + runs at 1 and 64'],
      rows,
      ['Agent load includes its warm-up (zero data at batch 1 and at max_batch_size 64); the last column does the same directly. Files are in the page cache.'],
    ]);
  }
  if (s.images) {
    const im = s.images;
    const inp = im.inputs;
    const fails = (r) => `${r.errors} / ${r.wrong}`;
    const cpuImage = (cpu) => {
      const p = cpu?.cpu_us_per_request;
      if (!p) return ['—', '—'];
      return [`${fmtUs(p.agent_main_thread + p.agent_other_threads)} (${fmtUs(p.agent_main_thread)} + ${fmtUs(p.agent_other_threads)})`, fmtUs(p.client)];
    };
    const batch = (r) => (r.kind === 'classifier' ? r.agent.avg_batch ?? '—' : Object.values(r.stage_models).map((m) => m.avg_batch ?? '—').join(' / '));
    const rows = im.runs.map((r) => [
      r.kind === 'classifier' ? `classifier ${r.model}` : `OCR pipeline ${r.model}`,
      r.concurrency,
      fmtRate(r.images_per_s),
      ...latencyCols(r.latency),
      r.images,
      fails(r),
      batch(r),
      ...cpuImage(r.cpu),
    ]);
    const cpuImg = ['server CPU/image (main + other threads)', 'client CPU/image'];
    out.push([
      `6. Images: ${im.route.split(',')[0]}, PNG body, concurrency 1 and 16`,
      ['', 'concurrency', 'images/s', 'p50', 'p95', 'p99', 'images', 'errors / wrong', 'avg batch', ...cpuImg],
      rows,
      [
        `Inputs, rendered once with sharp from SVG (${inp.font}): classifier a ${inp.classifier.width}×${inp.classifier.height} line "${inp.classifier.text}" (${inp.classifier.png_bytes} B PNG); OCR a ${inp.ocr.width}×${inp.ocr.height} page of ${inp.ocr.lines.length} lines ${inp.ocr.lines.map((l) => `"${l}"`).join(', ')} (${inp.ocr.png_bytes} B PNG, ${inp.ocr.font_px} px).`,
        `Every answer is checked: classifier ${im.checks.classifier}; OCR ${im.checks.ocr}. images/s counts correct answers inside the window; errors = no answer or not HTTP 200, wrong = HTTP 200 with a wrong answer.`,
        `Closed loop per run: ${im.runs.map((r) => `${r.model} c=${r.concurrency} ${r.duration_ms} ms after ${r.warmup_ms} ms`).join('; ')}. avg batch: the classifier's executions; for OCR the detection / direction / recognition models' (lines batch across pages).`,
        `Agent: ${im.agent.command} (a second agent with the repository's OCR models only${im.agent.started === 'early' ? '; started with the first one and idle during scenarios 1-5' : ', started for this scenario'}; ready in ${im.agent.ready_ms} ms).`,
        CPU_NOTE.replace('÷ replies', '÷ correct answers'),
      ],
    ]);
    const cl = im.runs.filter((r) => r.kind === 'classifier');
    if (cl.length) {
      const share = (us, pct) => `${fmtUs(us)} (${pct ?? '—'}%)`;
      out.push([
        '6a. Classifier text_direction: where an image\'s time in the agent goes (inference_stats deltas over the window)',
        ['concurrency', 'decode + preprocess', 'queue', 'model run (its batch)', 'compute_infer ÷ images', 'decode ÷ (decode + compute_infer)'],
        cl.map((r) => {
          const a = r.agent;
          return [r.concurrency, share(a.per_image_us.decode_preprocess, a.share_of_time_in_agent_pct.decode_preprocess), share(a.per_image_us.queue, a.share_of_time_in_agent_pct.queue), share(a.per_image_us.model_run, a.share_of_time_in_agent_pct.model_run), fmtUs(a.per_image_us.model_work), `${a.decode_vs_model_work_pct ?? '—'}%`];
        }),
        [
          'Per image (one per request), mean, with its share of the image\'s time in the agent: decode + preprocess = `preprocess` (sharp decode, resize, normalise; on libuv threads, at most --decode-concurrency at once, waiting for a slot included; before the queue), queue = `queue`, model run = `success` − `queue` (compute_input + compute_infer + compute_output of the batch the image ran in). compute_infer ÷ images = the model\'s own time per image once batched; the last column compares the totals of `preprocess` and `compute_infer` over the window (decode vs model work rather than wall time per image).',
        ],
      ]);
    }
    const oc = im.runs.filter((r) => r.kind === 'pipeline');
    if (oc.length) {
      const cell = (st) => `${st.ms_per_image === null ? '—' : fmtUs(st.ms_per_image * 1000)} (${st.share_pct ?? '—'}%)`;
      out.push([
        '6b. OCR pipeline: time per stage per image and its share (pipeline_stats deltas over the window)',
        ['concurrency', 'pipeline per image', ...OCR_STAGES, 'model runs per image (det + cls + rec compute_infer)'],
        oc.map((r) => {
          const p = r.pipeline;
          const m = r.stage_models;
          const models = Object.values(m).map((x) => x.compute_infer_ms_per_image ?? 0);
          return [r.concurrency, p.ms_per_image === null ? '—' : fmtUs(p.ms_per_image * 1000), ...OCR_STAGES.map((k) => cell(p.stages[k])), `${fmtUs(models.reduce((x, y) => x + y, 0) * 1000)} (${models.map((x) => round(x, 1)).join(' + ')} ms)`];
        }),
        [
          'Stage times are wall time per image (stages of one page run one after another, so they add up to the pipeline time); shares are of their sum. decode = sharp decoding the page (waiting for a decode slot included); detection, direction and recognition each include their model\'s preprocessing, queue wait (lines and pages of concurrent requests batch), run and postprocessing (DB boxes, CTC); crop = cutting the line images.',
          `Model runs per image: each stage model's compute_infer over the window ÷ pages (a batched run counted once, shared by the pages in it). ${oc.map((r) => `c=${r.concurrency}: ${Object.entries(r.stage_models).map(([k, x]) => `${k} ${x.calls} call(s) in ${x.executions} run(s), queue ${x.queue_ms_per_call ?? '—'} ms/call`).join('; ')}`).join('. ')}.`,
        ],
      ]);
    }
    const bad = im.runs.filter((r) => r.errors || r.wrong);
    if (bad.length) out.at(-1)[3].push(`Failures: ${bad.map((r) => `${r.model} c=${r.concurrency}: ${r.errors} error(s), ${r.wrong} wrong (${r.first_error ?? r.first_wrong})`).join('; ')}.`);
  }
  return out;
}

function conditionsText(R) {
  const m = R.machine;
  const c = R.conditions;
  return [
    `${m.cpu_model}, ${m.cores} cores, ${m.memory_gb} GiB, ${m.os}; Node ${m.node}, onnxruntime-node ${m.onnxruntime_node}, fastify ${m.fastify}, undici ${m.undici}; ${m.date.slice(0, 10)}; mode: ${R.mode}.`,
    `Agent ${m.agent_version} built from ${m.agent_build.commit}${m.agent_build.src_changes_not_committed.length ? ` plus ${m.agent_build.src_changes_not_committed.length} uncommitted src/ change(s)` : ''} (dist/ compiled by npm run bench).`,
    `Client and servers share the same ${m.cores} cores: the client (the bench process), the agent and the empty route are separate processes with the same CPU affinity (${c.cpus_allowed.bench} / ${c.cpus_allowed.agent} / ${c.cpus_allowed.empty}), the same node binary and flags; only one server is under load at a time. Load average at start: ${m.load_average_at_start.join(', ')}.`,
    `Direct onnxruntime uses the agent's session options: ${c.session_options_text}.`,
    c.keep_awake
      ? `Keep-awake: ${c.keep_awake.spinners} busy loops at nice ${c.keep_awake.niceness.join('/')} during ${c.keep_awake.scope} stop idle vCPUs from halting between requests; they yield to every other thread.`
      : 'No keep-awake spinners: idle vCPUs halt between requests.',
  ];
}

function render(R, md) {
  const lines = [];
  if (md) lines.push(`# gpu-node-agent benchmark, ${R.machine.date.slice(0, 10)} (${R.mode})`, '', 'Produced by `npm run bench` (bench/run.mjs); raw numbers in the .json beside this file.', '');
  for (const t of conditionsText(R)) lines.push(md ? `- ${t}` : `  ${t}`);
  lines.push('');
  for (const [title, headers, rows, notes] of tables(R)) {
    lines.push(md ? `### ${title}` : title, '');
    lines.push(md ? mdTable(headers, rows) : textTable(headers, rows));
    lines.push('');
    for (const n of notes) lines.push(...(md ? [n, ''] : [`  ${n}`]));
    if (!md) lines.push('');
  }
  lines.push(md ? '### Targets' : 'Targets', '');
  for (const t of R.targets) lines.push(`${md ? '- ' : ''}${t.pass ? 'PASS' : 'FAIL'} ${t.name}: ${t.value} (target ${t.target})`);
  lines.push('');
  const noisy = R.noise.filter((n) => n.foreign_pct >= 10 || n.steal_pct >= 5);
  if (noisy.length) {
    lines.push(`${md ? '> ' : ''}Noise: other processes or steal used ≥ 10% / 5% of the machine during ${noisy.map((n) => `${n.phase} (${n.foreign_pct}% / ${n.steal_pct}%)`).join(', ')}; those numbers are less reliable.`, '');
  }
  return lines.join('\n');
}

function collectNoise(s) {
  const out = [];
  const add = (phase, c) => c && out.push({ phase, foreign_pct: c.foreign_pct ?? 0, steal_pct: c.steal_pct ?? 0 });
  for (const o of [s.overhead, s.overhead_idle].filter(Boolean)) {
    add(`overhead (${o.condition})`, o.cpu);
    add(`overhead direct (${o.condition})`, o.direct.cpu);
  }
  if (s.batching) for (const l of s.batching.levels) for (const k of ['off', 'on']) l[k].cpu_rounds.forEach((c, i) => add(`batching ${k} c=${l.concurrency} #${i + 1}`, c));
  if (s.http) s.http.rounds.forEach((r, i) => { add(`http empty #${i + 1}`, r.empty.cpu); add(`http agent #${i + 1}`, r.agent.cpu); });
  if (s.compute) { add('compute agent', s.compute.agent.cpu); add('compute direct', s.compute.direct.cpu); }
  if (s.images) for (const r of s.images.runs) add(`images ${r.model} c=${r.concurrency}`, r.cpu);
  return out;
}

function writeResults(R) {
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const day = R.machine.date.slice(0, 10);
  const files = [];
  for (const [ext, text] of [['json', `${JSON.stringify(R, null, 2)}\n`], ['md', `${render(R, true)}\n`]]) {
    const file = path.join(dir, `${day}.${ext}`);
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
    files.push(path.relative(ROOT, file));
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = performance.now();
  const watchdog = setTimeout(() => {
    console.error(`bench: watchdog: still running after ${P.watchdogMs / 1000} s; stopping (children: ${liveChildren().join(', ') || 'none'})`);
    killAll();
    process.exit(1);
  }, P.watchdogMs);
  watchdog.unref();

  const machine = machineInfo();
  log(`gpu-node-agent benchmark (${OPT.quick ? 'quick' : 'full'}${OPT.profile ? ', agent under --cpu-prof' : ''})`);
  log(`  ${machine.cpu_model}, ${machine.cores} cores; client and servers share them. Node ${machine.node}, onnxruntime-node ${machine.onnxruntime_node}`);
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli.js'))) throw new Error('dist/src/cli.js is missing: run `tsc -p .` first (npm run bench does)');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-bench-'));
  // Removed on every exit path, signals included (children.mjs exits the process on them).
  if (!OPT.keep) process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  // onnxruntime-node 1.29's native library leaves an empty /tmp/mat-debug-<pid>.log behind in
  // every process that loads it: remove those of the processes this run started (never others').
  const ortPids = [process.pid];
  process.on('exit', () => {
    for (const pid of ortPids) {
      const f = `/tmp/mat-debug-${pid}.log`;
      try {
        if (fs.statSync(f).size === 0) fs.rmSync(f);
      } catch {
        // not there
      }
    }
  });
  const profDir = OPT.profile ? fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-bench-profile-')) : undefined;
  let agent;
  let empty;
  let imageAgent;
  try {
    step(`generating models into ${tmp}`);
    const { repo, models } = await buildRepository(tmp, { queueDelayUs: OPT.queueDelayUs, resnet: RUN('fastapi') });
    const imageRepo = RUN(6) ? await buildImageRepository(tmp) : undefined;

    step('starting the agent and the empty route (child processes)');
    const nodeFlags = profDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profDir, 'agent')] : [];
    const serveArgv = ['--models', repo, '--host', '127.0.0.1', '--port', '0', '--log-level', 'info', '--providers', 'cpu', ...OPT.agentArgs];
    useAgentArgv(serveArgv);
    agent = startNode('agent', [...nodeFlags, path.join(ROOT, 'dist', 'src', 'cli.js'), 'serve', ...serveArgv], {
      isReady: (o) => o.msg === 'gpu-agent listening' && typeof o.url === 'string',
      guard: true,
    });
    const emptyFlags = profDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profDir, 'empty')] : [];
    empty = startNode('empty route', [...emptyFlags, path.join(ROOT, 'bench', 'empty-server.mjs')], { isReady: (o) => o.msg === 'empty server listening' });
    ortPids.push(agent.pid);
    // Scenario 6's agent: the same command on the OCR repository (not profiled by --profile).
    let imageReady;
    const startImageAgent = () => {
      const t0 = performance.now();
      const argv = ['--models', imageRepo.repo, '--host', '127.0.0.1', '--port', '0', '--log-level', 'info', '--providers', 'cpu', ...OPT.agentArgs];
      imageAgent = startNode('image agent', [path.join(ROOT, 'dist', 'src', 'cli.js'), 'serve', ...argv], {
        isReady: (o) => o.msg === 'gpu-agent listening' && typeof o.url === 'string',
        guard: true,
      });
      ortPids.push(imageAgent.pid);
      imageReady = imageAgent.ready.then(async (o) => {
        const url = o.url.replace('localhost', '127.0.0.1');
        await waitModelsReady(url, IMAGE_MODELS, 120_000);
        return { url, ready_ms: round(performance.now() - t0) };
      });
      imageReady.catch(() => undefined);
    };
    if (RUN(6) && P.s6.startEarly) startImageAgent();
    const [a, e] = await Promise.all([agent.ready, empty.ready]);
    const agentUrl = a.url.replace('localhost', '127.0.0.1');
    const emptyUrl = e.url;
    await waitModelsReady(agentUrl, Object.keys(models));
    step(`agent ${agentUrl} (pid ${agent.pid}, ${threadCount(agent.pid)} threads), empty route ${emptyUrl} (pid ${empty.pid}); models ready`);

    // Sanity: the agent computes the right thing (add_sub exactly, mlp vs direct onnxruntime).
    {
      const ac = dispatcher(agentUrl, 1);
      const inputs = [{ name: 'INPUT0', shape: [1, 16], data: f32(16, (i) => i) }, { name: 'INPUT1', shape: [1, 16], data: f32(16, () => 1) }];
      for (const req of [binaryRequest('add_sub', inputs), jsonRequest('add_sub', inputs)]) {
        const reply = await send(ac, req, true);
        const r = decodeReply(reply.headers, reply.body);
        if (maxAbsDiff(r.OUTPUT0, f32(16, (i) => i + 1)) !== 0 || maxAbsDiff(r.OUTPUT1, f32(16, (i) => i - 1)) !== 0) throw new Error(`add_sub (${req.kind}) answered wrong values`);
      }
      const x = { name: 'x', shape: [1, 256], data: f32(256, (i) => Math.sin(i)) };
      const s = await createSession(models.mlp_batch.file);
      const want = (await s.run(feedsOf([x])())).y.data;
      await s.release();
      for (const m of ['mlp_nobatch', 'mlp_batch']) {
        const r = await send(ac, binaryRequest(m, [x]), true);
        const diff = maxAbsDiff(decodeReply(r.headers, r.body).y, want);
        if (!(diff < 1e-4)) throw new Error(`${m}: the agent's output differs from direct onnxruntime by ${diff}`);
      }
      await ac.close();
      const ec = dispatcher(emptyUrl, 1);
      await send(ec, binaryRequest('add_sub', inputs));
      await ec.close();
    }

    // Warm both servers up (JIT tiers, connection setup, allocator) on every request kind the
    // run sends, before anything is measured: compilation threads would otherwise bill their
    // CPU to the first measured phase.
    {
      const inputs = [{ name: 'INPUT0', shape: [1, 16], data: f32(16, (i) => i) }, { name: 'INPUT1', shape: [1, 16], data: f32(16, () => 1) }];
      const x = { name: 'x', shape: [1, 256], data: f32(256, (i) => Math.sin(i)) };
      const jobs = [
        [emptyUrl, binaryRequest('add_sub', inputs)], [emptyUrl, jsonRequest('add_sub', inputs)],
        [agentUrl, binaryRequest('add_sub', inputs)], [agentUrl, jsonRequest('add_sub', inputs)],
        [agentUrl, binaryRequest('mlp_nobatch', [x])], [agentUrl, binaryRequest('mlp_batch', [x])],
      ];
      step(`warming up both servers: ${jobs.length} request kinds x ${P.warmupMs} ms`);
      for (const [url, req] of jobs) {
        const concurrency = req.path.includes('add_sub') ? 1 : 4;
        await closedLoop(url, req, { concurrency, warmupMs: 0, durationMs: P.warmupMs });
      }
    }

    const pids = { client: process.pid, agent: agent.pid, empty: empty.pid };
    const AWAKE = 'cores kept awake (nice-19 spinner per core)';
    const IDLE = 'idle CPUs (no keep-awake)';
    let spinners = [];
    let spinnerInfo = false;
    const keepAwake = () => {
      spinners = startSpinners(os.availableParallelism());
      spinners.forEach((sp, i) => { pids[`keep-awake ${i}`] = sp.pid; });
      spinnerInfo = { spinners: spinners.length, niceness: spinners.map((sp) => { try { return os.getPriority(sp.pid); } catch { return null; } }), scope: 'scenario 1 (concurrency-1 latency) only' };
    };
    const stopSpinners = async () => {
      await Promise.all(spinners.map((sp) => stopChild(sp, 1000)));
      spinners.forEach((_, i) => { delete pids[`keep-awake ${i}`]; });
      spinners = [];
    };
    // Before each measured phase: wait (within a budget) for other processes to quieten down.
    const waits = [];
    let waitedTotal = 0;
    const gate = async (phase, ours = pids) => {
      const maxWaitMs = Math.max(0, Math.min(P.quiet.maxWaitMs, P.quiet.totalMs - waitedTotal));
      const w = await waitForQuiet(ours, { maxWaitMs, sampleMs: P.quiet.sampleMs, thresholdPct: 15 });
      waitedTotal += w.waited_ms;
      waits.push({ phase, ...w });
      if (!w.quiet) step(`${phase}: other processes still use ${w.foreign_pct}% of the machine; measuring anyway (reported as noise)`);
      else if (w.waited_ms > 2 * P.quiet.sampleMs) step(`${phase}: waited ${w.waited_ms} ms for other processes to quieten`);
    };
    // Scenario windows (CLOCK_MONOTONIC µs) and how many requests the agent served in each, to
    // cut the agent's CPU profile (--profile) down to what each scenario measured.
    const windows = [];
    const served = async () => (await getJson(`${agentUrl}/v2/models/stats`)).model_stats.reduce((n, m) => n + m.inference_stats.success.count, 0);
    const emptyServed = async () => (await getJson(`${emptyUrl}/bench/served`)).served;
    const begin = async (name) => ({ name, from: Number(process.hrtime.bigint() / 1000n), served0: await served(), empty0: await emptyServed() });
    const end = async (w) => {
      w.to = Number(process.hrtime.bigint() / 1000n);
      w.requests = (await served()) - w.served0;
      w.emptyRequests = (await emptyServed()) - w.empty0;
      windows.push(w);
    };
    const ctx = { agentUrl, emptyUrl, models, pids, gate };
    // What the scenarios of bench/scenarios/ get.
    const xctx = { ...ctx, repo, agentPid: agent.pid, P, ROOT, step, quick: OPT.quick, modelStats: (m) => modelStats(agentUrl, m), waitModelsReady };
    const scenarios = {};
    const show = (k) => {
      const R = { scenarios: { [k]: scenarios[k] } };
      for (const [title, headers, rows, notes] of tables(R)) {
        log(`\n${title}\n${textTable(headers, rows)}`);
        for (const n of notes) log(`  ${n}`);
      }
      log('');
    };
    const scenario = async (key, title, fn) => {
      if (title) log(title);
      const w = await begin(key);
      scenarios[key] = await fn();
      await end(w);
      show(key);
    };
    if (imageReady) {
      const r = await imageReady;
      step(`image agent ${r.url} (pid ${imageAgent.pid}) ready in ${r.ready_ms} ms, started with the first one; idle until scenario 6`);
    }
    // Idle CPU first: nothing has been measured yet, the warm-up's replies have settled.
    const extra = async (x) => {
      log(`\n[${x.name}] ${x.title}`);
      const w = await begin(x.name);
      scenarios[x.name] = await x.run(xctx);
      await end(w);
      for (const r of x.issueRows(scenarios[x.name])) log(`  ${r.figure}: ${r.value} (target ${r.target})`);
    };
    for (const x of EXTRA_SCENARIOS.filter((x) => x.first && RUN(x.name))) await extra(x);
    if (RUN(1)) {
      if (OPT.keepAwake && !OPT.quick) await scenario('overhead_idle', '\n[1/6] overhead, idle CPUs', () => overhead(ctx, IDLE));
      if (OPT.keepAwake) keepAwake();
      await scenario('overhead', '\n[1/6] overhead', () => overhead(ctx, OPT.keepAwake ? AWAKE : IDLE));
      await stopSpinners(); // only the concurrency-1 latency scenario needs them: the others keep the cores busy
    }
    if (RUN(2)) await scenario('batching', '[2/6] batching', () => batching(ctx));
    if (RUN(3)) await scenario('http', '[3/6] HTTP efficiency', () => http(ctx));
    if (RUN(4)) await scenario('compute', '[4/6] compute efficiency', () => compute(ctx));
    if (RUN(5)) await scenario('cold', '[5/6] cold start', () => coldStart(ctx));
    if (RUN(6)) {
      log('[6/6] images');
      const early = Boolean(imageReady);
      if (!early) {
        step('images: starting the image agent (OCR models) for this scenario');
        startImageAgent();
      }
      const [r, rendered] = await Promise.all([imageReady, renderImages()]);
      step(`image agent ${r.url} (pid ${imageAgent.pid}, ${threadCount(imageAgent.pid)} threads) ready${early ? '' : ` in ${r.ready_ms} ms`}; test PNGs rendered (${rendered.line.bytes} B line, ${rendered.ocr.bytes} B page)`);
      // The image agent is "agent" in this scenario's CPU accounting; the first agent and the
      // empty route are idle and named apart so that they do not count as other processes.
      const imagePids = { client: process.pid, agent: imageAgent.pid, 'agent of scenarios 1-5 (idle)': agent.pid, 'empty route (idle)': empty.pid };
      const agentInfo = {
        command: `node dist/src/cli.js serve --models <tmp>/models-images --host 127.0.0.1 --port 0 --log-level info --providers cpu${OPT.agentArgs.length ? ' ' + OPT.agentArgs.join(' ') : ''}`,
        started: early ? 'early' : 'for this scenario',
        ready_ms: r.ready_ms,
        models: Object.fromEntries(IMAGE_MODELS.map((m) => [m, { config: imageRepo.configs[m], onnx_bytes: imageRepo.onnx_bytes[m] ?? null }])),
      };
      const ctx6 = { url: r.url, pid: imageAgent.pid, pids: imagePids, rendered, agentInfo, gate: (phase) => gate(phase, imagePids) };
      await scenario('images', '', () => images(ctx6));
      if (P.s6.abandonLast) {
        // It is still reading the pages the last run left in flight: no drain.
        step('images: stopping the image agent (without draining the abandoned requests)');
        await stopChild(imageAgent, 300);
      }
    }

    for (const x of EXTRA_SCENARIOS.filter((x) => !x.first && RUN(x.name))) await extra(x);
    for (const n of STANDALONE.filter(RUN_STANDALONE)) scenarios[n] = await runStandalone(n, { ROOT, quick: OPT.quick, log });

    const conditions = {
      cpus_allowed: { bench: cpusAllowed(process.pid), agent: cpusAllowed(agent.pid), empty: cpusAllowed(empty.pid) },
      agent_threads: threadCount(agent.pid),
      agent_command: `node dist/src/cli.js serve --models <tmp>/models --host 127.0.0.1 --port 0 --log-level info --providers cpu${OPT.agentArgs.length ? ' ' + OPT.agentArgs.join(' ') : ''}${profDir ? ' (under --cpu-prof)' : ''}`,
      empty_command: 'node bench/empty-server.mjs',
      client: 'undici Client/Pool in the bench process, dispatch API, keep-alive, pipelining 1; concurrency N = N connections in closed loop',
      session_options: describeOptions(agentSessionOptions()),
      session_options_text: Object.entries(describeOptions(agentSessionOptions())).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : v}`).join(', '),
      models: Object.fromEntries(Object.entries(models).map(([k, v]) => [k, { bytes: v.bytes, config: v.config }])),
    };

    conditions.keep_awake = spinnerInfo;
    step('stopping the agent and the empty route');
    await stopSpinners();
    const [agentExit, emptyExit, imageExit] = await Promise.all([stopChild(agent), stopChild(empty), imageAgent ? stopChild(imageAgent) : undefined]);
    conditions.exits = { agent: agentExit, empty: emptyExit, ...(imageAgent ? { image_agent: imageExit } : {}) };

    const R = {
      mode: OPT.quick ? 'quick' : 'full',
      partial: Boolean(OPT.only || OPT.profile || OPT.agentArgs.length),
      machine,
      conditions,
      scenarios,
    };
    R.targets = targets(scenarios);
    R.noise = collectNoise(scenarios);
    R.quiet_waits = waits;
    R.duration_s = round((performance.now() - started) / 1000, 1);

    log('='.repeat(100));
    log(render(R, false));
    R.issue_table = issueTable(scenarios, { load: loadAverage(), machine });
    log(`\n${R.issue_table.text}`);
    if (profDir) {
      for (const who of ['agent', 'empty']) {
        const dir = path.join(profDir, who);
        const file = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f))[0] : undefined;
        if (!file) {
          log(`no .cpuprofile for the ${who} in ${dir} (exit: ${JSON.stringify(conditions.exits[who])})`);
          continue;
        }
        log(`\n${who === 'agent' ? 'Agent' : 'Empty route'} CPU profile: ${file} (main JS thread only; wall-clock sampling: time the thread waited for a CPU counts too)`);
        for (const w of windows) {
          const requests = who === 'agent' ? w.requests : w.emptyRequests;
          if (!requests) continue;
          const p = summarizeProfile(file, who === 'agent' ? 25 : 12, w);
          const perReq = (ms) => `${round((ms * 1000) / requests, 1)}`;
          log(`\n[${w.name}] ${who}: ${round((w.to - w.from) / 1000)} ms window, ${requests} requests; main thread busy ${p.busy_ms} ms (${perReq(p.busy_ms)} µs/request)`);
          log(textTable(['area', 'self ms', '% of busy', 'µs/request'], p.areas.map((x) => [x.area, x.self_ms, x.pct_of_busy, perReq(x.self_ms)])));
          log('');
          log(textTable(['function', 'where', 'area', 'self ms', '% of busy', 'µs/request'], p.top.map((x) => [x.function.slice(0, 40), x.where.slice(0, 60), x.area, x.self_ms, x.pct_of_busy, perReq(x.self_ms)])));
        }
      }
    }
    if (R.partial) log('(partial or non-default run: --only, --profile or --agent-args; bench/results not written)');
    else log(`results: ${writeResults(R).join(', ')}`);
    log(`bench took ${R.duration_s} s`);
  } finally {
    await Promise.all([agent, empty, imageAgent].filter(Boolean).map((c) => stopChild(c, 3000)));
    killAll();
    if (OPT.keep) log(`kept ${tmp}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${err?.stack ?? err}`);
    killAll();
    process.exit(1);
  },
);
