// onnxruntime threading for a server, measured directly in this process with the agent's own
// ortOptions (dist/): intra-op threads (onnxruntime's default, one per core, vs the agent's
// auto, cores - 1) × session.intra_op.allow_spinning on/off.
// - c=1 server-like: the mlp at batch 1, each run followed by ~200 µs of JS work on this
//   thread (what HTTP handling costs per request): run latency, and CPU of the whole process
//   per request (spinning pool threads steal the core the JS work needs);
// - saturation: mlp_heavy at batch 64, back-to-back runs: rows/s.
import os from 'node:os';
import '../../dist/src/util/ort-env.js'; // onnxruntime's telemetry off before the first session, as in the agent
import * as ort from 'onnxruntime-node';
import { sessionDefaults } from '../../dist/src/agent.js';
import { autoIntraOpThreads, ortOptions } from '../../dist/src/execution/ort-session.js';
import { loadConfig, parseArgs } from '../../dist/src/index.js';
import { cpuNs } from '../lib/proc.mjs';
import { f32 } from '../lib/requests.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'threading';
export const title = 'onnxruntime threads and spinning (direct, this process)';

function busy(us) {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
}

export async function run(ctx) {
  const { n, heavyMs } = ctx.P.threading;
  const base = { ...sessionDefaults(loadConfig(parseArgs(['--providers', 'cpu']), process.env)), providers: ['cpu'] };
  const variants = [];
  for (const threads of ['onnxruntime default', 'auto']) {
    for (const spinning of [true, false]) {
      const opts = ortOptions({ ...base, allowSpinning: spinning }, ['cpu']);
      if (threads === 'onnxruntime default') delete opts.intraOpNumThreads;
      variants.push({ threads, spinning, opts });
    }
  }
  const out = { cores: os.availableParallelism(), auto_threads: autoIntraOpThreads(), variants: [] };
  for (const v of variants) {
    ctx.step(`threading: intra-op ${v.threads}, spinning ${v.spinning ? 'on' : 'off'}`);
    const s = await ort.InferenceSession.create(ctx.models.mlp_batch.file, v.opts);
    const x = new ort.Tensor('float32', f32(256, (i) => Math.sin(i)), [1, 256]);
    for (let i = 0; i < 300; i++) await s.run({ x });
    const lat = [];
    const c0 = cpuNs(process.pid);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = process.hrtime.bigint();
      await s.run({ x });
      lat.push(Number(process.hrtime.bigint() - a) / 1e3);
      busy(200);
    }
    const cpuPerReq = (cpuNs(process.pid) - c0) / 1e3 / n;
    const wallPerReq = ((performance.now() - t0) * 1000) / n;
    await s.release();
    const h = await ort.InferenceSession.create(ctx.models.mlp_heavy.file, v.opts);
    const xh = new ort.Tensor('float32', f32(64 * 1024, (i) => Math.cos(i % 1024)), [64, 1024]);
    for (let i = 0; i < 3; i++) await h.run({ x: xh });
    let runs = 0;
    const h0 = performance.now();
    while (performance.now() - h0 < heavyMs) {
      await h.run({ x: xh });
      runs++;
    }
    const heavyRowsPerS = (runs * 64 * 1000) / (performance.now() - h0);
    await h.release();
    out.variants.push({
      intra_op_threads: v.threads === 'auto' ? `auto (${autoIntraOpThreads()})` : 'onnxruntime default',
      spinning: v.spinning,
      c1_run_us: summarize(lat),
      c1_cpu_us_per_request: round(cpuPerReq, 1),
      c1_wall_us_per_request: round(wallPerReq, 1),
      heavy_b64_rows_per_s: round(heavyRowsPerS),
    });
  }
  return out;
}

export function issueRows(s) {
  const find = (t, sp) => s.variants.find((v) => v.intra_op_threads.startsWith(t) && v.spinning === sp);
  const before = find('onnxruntime', true);
  const after = find('auto', false);
  return [{
    figure: 'onnxruntime threading, c=1 mlp + 200 µs JS per request: wall per request (ort default + spinning → auto + no spinning)',
    value: `${before.c1_wall_us_per_request} → ${after.c1_wall_us_per_request} µs; CPU ${before.c1_cpu_us_per_request} → ${after.c1_cpu_us_per_request} µs; mlp_heavy b64 ${before.heavy_b64_rows_per_s} → ${after.heavy_b64_rows_per_s} rows/s`,
    target: 'no slower at c=1',
    pass: after.c1_wall_us_per_request <= before.c1_wall_us_per_request * 1.02,
  }];
}
