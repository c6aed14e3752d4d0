// Scaling past one core: the agent with --http-processes N (N front-end processes share the
// port, decode/encode, and send decoded tensors to the primary's batchers over IPC) for N = 1
// (today's path) and 2, 4, 8 where the machine has at least that many cores. Per N, one agent
// on the bench repository (add_sub; mlp_batch = the bundled mlp with its batching), measured
// with the cheap load generator (lib/loadgen.mjs: wrk when installed):
// - req/s at c=32 and c=256: add_sub binary and JSON, mlp_batch binary;
// - p50 at c=1, add_sub binary (the hop's cost at low load), with the undici client;
// - CPU of the whole agent (primary + front ends) per request, and the primary's share: the
//   primary's µs/request bounds what any number of front ends can reach (1e6 / it per core).
// The figure that decides the default: N=2 ÷ N=1 on each row (no loss allowed at 2 cores).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startNode, stopChild } from '../lib/children.mjs';
import { dispatcher, latencyLoop } from '../lib/client.mjs';
import { load } from '../lib/loadgen.mjs';
import { cpuNs, loadAverage } from '../lib/proc.mjs';
import { binaryRequest, f32, jsonRequest } from '../lib/requests.mjs';
import { textTable } from '../lib/report.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'scale';
export const title = 'scaling past one core: --http-processes N (front-end processes feeding one batcher per model)';

/** The front-end processes of an agent (its children). */
function childrenOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const sumCpu = (pids) => pids.reduce((n, p) => n + (cpuNs(p) ?? 0), 0);

export async function run(ctx) {
  if (!ctx.named) return { skipped: 'run with --only scale: it starts one agent per N, too long for the default runs' };
  const cores = os.availableParallelism();
  const quick = ctx.quick;
  const durationS = quick ? 2 : 5;
  const warmupS = 1; // wrk takes whole seconds
  const latencyN = quick ? 300 : 2000;
  const counts = [1, 2, 4, 8].filter((n) => n <= 2 || n <= cores);
  const addSub = [{ name: 'INPUT0', shape: [1, 16], data: f32(16, (i) => i) }, { name: 'INPUT1', shape: [1, 16], data: f32(16, () => 1) }];
  const x = [{ name: 'x', shape: [1, 256], data: f32(256, (i) => Math.sin(i)) }];
  const rows = [
    { key: 'add_sub binary', req: binaryRequest('add_sub', addSub) },
    { key: 'add_sub JSON', req: jsonRequest('add_sub', addSub) },
    { key: 'mlp binary', req: binaryRequest('mlp_batch', x) },
  ];
  const out = { cores, cpu_model: os.cpus()[0]?.model ?? 'unknown', load_before: loadAverage(), duration_s: durationS, counts, runs: [] };
  for (const n of counts) {
    const agent = startNode(`agent --http-processes ${n}`, [path.join(ctx.ROOT, 'dist', 'src', 'cli.js'), 'serve', '--models', ctx.repo, '--host', '127.0.0.1', '--port', '0',
      '--grpc-port', '0', '--providers', 'cpu', '--log-level', 'info', '--load-models', 'add_sub,mlp_batch', '--http-processes', String(n)], {
      isReady: (o) => o.msg === 'gpu-agent listening' && typeof o.url === 'string',
      guard: true,
    });
    try {
      const url = (await agent.ready).url.replace('localhost', '127.0.0.1');
      await ctx.waitModelsReady(url, ['add_sub', 'mlp_batch'], 60_000);
      const run = { http_processes: n, front_end_pids: n > 1 ? childrenOf(agent.pid).length : 0, rows: [] };
      for (const { key, req } of rows) {
        for (const c of [32, 256]) {
          if (key === 'add_sub JSON' && c === 256) continue;
          ctx.step(`scale: N=${n}, ${key}, c=${c}, ${durationS} s`);
          await ctx.gate(`scale N=${n} ${key} c=${c}`);
          const pids = [agent.pid, ...childrenOf(agent.pid)];
          const c0 = sumCpu(pids);
          const p0 = cpuNs(agent.pid) ?? 0;
          const r = await load(url, req, { connections: c, durationS, warmupS });
          const cpuUs = (sumCpu(pids) - c0) / 1e3;
          const primaryUs = ((cpuNs(agent.pid) ?? 0) - p0) / 1e3;
          if (r.errors || r.refused) throw new Error(`N=${n} ${key} c=${c}: ${r.errors} errors, ${r.refused} non-200`);
          run.rows.push({ kind: key, concurrency: c, tool: r.tool, rps: round(r.rps), p50_us: r.p50_us, cpu_us_per_request: round(cpuUs / (r.ok + 1e-9), 1), primary_cpu_us_per_request: round(primaryUs / (r.ok + 1e-9), 1) });
        }
      }
      ctx.step(`scale: N=${n}, add_sub binary, c=1, ${latencyN} requests`);
      await ctx.gate(`scale N=${n} c=1`);
      const d = dispatcher(url, 1);
      try {
        await latencyLoop(d, rows[0].req, Math.round(latencyN / 4));
        const lat = summarize(await latencyLoop(d, rows[0].req, latencyN));
        run.c1 = { kind: 'add_sub binary', tool: 'undici (bench process)', p50_us: lat.p50_us, p95_us: lat.p95_us };
      } finally {
        await d.close();
      }
      out.runs.push(run);
    } finally {
      await stopChild(agent, 5000);
    }
  }
  out.load_after = loadAverage();
  const base = out.runs[0];
  for (const r of out.runs.slice(1)) {
    r.vs_1 = r.rows.map((row, i) => ({ kind: row.kind, concurrency: row.concurrency, ratio: round(row.rps / base.rows[i].rps, 2) }));
    r.c1_p50_vs_1 = round(r.c1.p50_us / base.c1.p50_us, 2);
  }
  const table = [];
  for (const r of out.runs) {
    r.rows.forEach((row, i) => table.push([r.http_processes, row.kind, row.concurrency, row.rps, row.p50_us === null ? '—' : round(row.p50_us), row.cpu_us_per_request, row.primary_cpu_us_per_request, r.vs_1 ? `${r.vs_1[i].ratio}×` : '1×', row.tool]));
    table.push([r.http_processes, 'add_sub binary', 1, '—', r.c1.p50_us, '—', '—', r.c1_p50_vs_1 ? `p50 ${r.c1_p50_vs_1}×` : '1×', r.c1.tool]);
  }
  console.log(`\nscale: ${out.cores} cores (${out.cpu_model}); load average before ${out.load_before.join(' ')}, after ${out.load_after.join(' ')}`);
  console.log(textTable(['N', 'request', 'c', 'req/s', 'p50 µs', 'agent CPU µs/req', 'of it primary', 'vs N=1', 'client'], table));
  return out;
}

export function issueRows(s) {
  if (s.skipped) return [];
  const rows = [];
  for (const r of s.runs.slice(1)) {
    const worst = Math.min(...r.vs_1.map((v) => v.ratio));
    const best = Math.max(...r.vs_1.map((v) => v.ratio));
    rows.push({
      figure: `--http-processes ${r.http_processes} ÷ 1, req/s (add_sub binary/JSON, mlp; c=32/256; ${r.rows[0].tool}; ${s.cores} cores)`,
      value: `${worst}×–${best}× (${r.vs_1.map((v) => `${v.kind} c=${v.concurrency} ${v.ratio}×`).join(', ')}); c=1 p50 ${r.c1.p50_us} vs ${s.runs[0].c1.p50_us} µs`,
      target: s.cores <= 2 ? 'no loss at 2 cores (≥ 1×) to be on by default' : '> 1× at c=32/256, c=1 p50 no worse',
      pass: worst >= 1 && r.c1_p50_vs_1 <= 1,
    });
  }
  return rows;
}
