// Scenario 6 of bench/run.mjs (images); see bench/README.md for what it measures.
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

export const OCR_STAGES = ['decode', 'detection', 'crop', 'direction', 'recognition'];
/** Which stage runs which model (for the model-run split of the pipeline's stages). */
export const STAGE_MODELS = { detection: 'text_detection', direction: 'text_direction', recognition: 'text_recognition' };

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
export async function images(ctx) {
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
