// Scenario 2 of bench/run.mjs (batching); see bench/README.md for what it measures.
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

/** 2. Dynamic batching on vs off on the mlp, closed loop at several concurrencies. */
export async function batching(ctx) {
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
