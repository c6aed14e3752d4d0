// Scenario 4 of bench/run.mjs (compute); see bench/README.md for what it measures.
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

/** 4. mlp_heavy at saturation vs direct onnxruntime at the batch size the agent formed. */
export async function compute(ctx) {
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
