// Scenario 5 of bench/run.mjs (cold-start); see bench/README.md for what it measures.
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

/** 5. Cold start: unload + load through the API vs InferenceSession.create + one run. */
export async function coldStart(ctx) {
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
