// Scenario 1 of bench/run.mjs (overhead); see bench/README.md for what it measures.
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

/** 1. Per-request overhead at concurrency 1 on add_sub, batch 1. */
export async function overhead(ctx, condition) {
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
