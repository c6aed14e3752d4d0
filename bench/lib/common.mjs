// What bench/run.mjs and its numbered scenarios (bench/scenarios/{overhead,batching,http,compute,
// cold-start,images}.mjs) share: the options (parsed once from this process's argv), the run
// parameters of --quick and the full run, and the small helpers around the agent's API and the
// CPU accounting of a measured window.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { request } from 'undici';
import { closedLoop, dispatcher, latencyLoop, send } from './client.mjs';
import { killAll, liveChildren, startNode, startSpinners, stopChild } from './children.mjs';
import { agentSessionOptions, createSession, describeOptions, feedsOf, ortVersion, runLatency, runThroughput, useAgentArgv, zeros } from './direct.mjs';
import { buildImageRepository, checkClassifier, checkedLoop, checkOcr, IMAGE_MODELS, MIN_SIMILARITY, predictRequest, renderImages } from './images.mjs';
import { buildRepository, MAX_BATCH } from './models.mjs';
import { EXTRA_SCENARIOS, issueTable, NUMBERED, runStandalone, STANDALONE } from '../scenarios/index.mjs';
import { cpuNs, cpusAllowed, loadAverage, probe, probeDelta, threadCount, waitForQuiet } from './proc.mjs';
import { summarizeProfile } from './profile.mjs';
import { mdTable, textTable } from './report.mjs';
import { binaryRequest, decodeReply, f32, jsonRequest, maxAbsDiff } from './requests.mjs';
import { fmtRate, fmtUs, median, round, summarize } from './stats.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
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
      console.log(fs.readFileSync(path.join(ROOT, 'bench', 'run.mjs'), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
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
      idle: { durationMs: 1000 },
      worker: { n: 1000, chunk: 250 },
      threading: { n: 400, heavyMs: 150 },
      // --quick: the JSON rows only (the issue's), one round.
      peers: { rounds: 1, durationS: 1, warmupS: 0, kinds: ['json'] },
      overload: { durationS: 1, warmupS: 0 },
      // --quick skips the FastAPI peer (starting PyTorch alone takes ~6 s) unless --only names it.
      fastapi: { rounds: 1, warmupMs: 800, durationMs: 2500, directMs: 1200, onlyWhenNamed: true },
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
      peers: { rounds: 2, durationS: 3, warmupS: 1, kinds: ['json', 'binary'] },
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

export { ROOT, require, parseOnly, parseOptions, OPT, P, RUN, RUN_STANDALONE, TARGETS, log, T0, step, getJson, postJson, waitModelsReady, modelStats, statsDelta, withWindow, withWindowStats, CPU_HEADERS, CPU_NOTE, cpuCols, cpuShares, latencyCols, pooled, order };
