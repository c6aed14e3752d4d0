// Scenario 3 of bench/run.mjs (http); see bench/README.md for what it measures.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { request } from 'undici';
import { closedLoop, dispatcher, latencyLoop, send } from '../lib/client.mjs';
import { killAll, liveChildren, startNode, startSpinners, stopChild } from '../lib/children.mjs';
import { agentSessionOptions, createSession, describeOptions, feedsOf, ortVersion, runLatency, runThroughput, useAgentArgv, zeros } from '../lib/direct.mjs';
import { buildImageRepository, checkClassifier, checkedLoop, checkOcr, IMAGE_MODELS, MIN_SIMILARITY, predictRequest, renderImages } from '../lib/images.mjs';
import { buildRepository, MAX_BATCH } from '../lib/models.mjs';
import { EXTRA_SCENARIOS, issueTable, NUMBERED, runStandalone, STANDALONE } from '../scenarios/index.mjs';
import { cpuNs, cpusAllowed, loadAverage, probe, probeDelta, threadCount, waitForQuiet } from '../lib/proc.mjs';
import { summarizeProfile } from '../lib/profile.mjs';
import { mdTable, textTable } from '../lib/report.mjs';
import { binaryRequest, decodeReply, f32, jsonRequest, maxAbsDiff } from '../lib/requests.mjs';
import { fmtRate, fmtUs, median, round, summarize } from '../lib/stats.mjs';
import { ROOT, require, parseOnly, parseOptions, OPT, P, RUN, RUN_STANDALONE, TARGETS, log, T0, step, getJson, postJson, waitModelsReady, modelStats, statsDelta, withWindow, withWindowStats, CPU_HEADERS, CPU_NOTE, cpuCols, cpuShares, latencyCols, pooled, order } from '../lib/common.mjs';

/** 3. Agent throughput on add_sub vs the empty route, same request bytes, concurrency 32. */
export async function http(ctx) {
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
