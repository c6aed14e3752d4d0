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
import { ROOT, require, parseOnly, parseOptions, OPT, P, RUN, RUN_STANDALONE, TARGETS, log, T0, step, getJson, postJson, waitModelsReady, modelStats, statsDelta, withWindow, withWindowStats, CPU_HEADERS, CPU_NOTE, cpuCols, cpuShares, latencyCols, pooled, order } from './lib/common.mjs';
import { overhead } from './scenarios/overhead.mjs';
import { batching } from './scenarios/batching.mjs';
import { http } from './scenarios/http.mjs';
import { compute } from './scenarios/compute.mjs';
import { coldStart } from './scenarios/cold-start.mjs';
import { images, OCR_STAGES, STAGE_MODELS } from './scenarios/images.mjs';

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
    const { repo, models } = await buildRepository(tmp, { queueDelayUs: OPT.queueDelayUs, resnet: RUN('fastapi') && (!OPT.quick || Boolean(OPT.only)) });
    const imageRepo = RUN(6) ? await buildImageRepository(tmp) : undefined;

    step('starting the agent and the empty route (child processes)');
    const nodeFlags = profDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profDir, 'agent')] : [];
    const serveArgv = ['--models', repo, '--host', '127.0.0.1', '--port', '0', '--grpc-port', '0', '--log-level', 'info', '--providers', 'cpu', ...OPT.agentArgs];
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
      const argv = ['--models', imageRepo.repo, '--host', '127.0.0.1', '--port', '0', '--grpc-port', '0', '--log-level', 'info', '--providers', 'cpu', ...OPT.agentArgs];
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
    const xctx = { ...ctx, named: Boolean(OPT.only), repo, agentPid: agent.pid, P, ROOT, step, quick: OPT.quick, modelStats: (m) => modelStats(agentUrl, m), waitModelsReady };
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
