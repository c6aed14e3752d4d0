// The scenarios kept in files of their own (bench/run.mjs runs them after its numbered ones,
// or alone with --only <name>), the standalone bench files of other areas that `--only <name>`
// starts as child processes, and the issue's table: every figure with its target and
// PASS/FAIL, printed at the end of each run (the lead re-runs it on a quiet machine).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { textTable } from '../lib/report.mjs';
import { fmtUs, round } from '../lib/stats.mjs';
import * as fastapi from './fastapi.mjs';
import * as idle from './idle.mjs';
import * as naive from './naive.mjs';
import * as overload from './overload.mjs';
import * as scale from './scale.mjs';
import * as threading from './threading.mjs';
import * as worker from './worker.mjs';

/** Names of the numbered scenarios of run.mjs. */
export const NUMBERED = { overhead: 1, batching: 2, http: 3, compute: 4, cold: 5, 'cold-start': 5, images: 6 };

/** In run order; `first`: before scenario 1. */
export const EXTRA_SCENARIOS = [{ ...idle, first: true }, worker, threading, naive, overload, fastapi, scale];

/** Standalone bench files (bench/<name>.mjs) owned by other areas; run only when named. */
export const STANDALONE = ['load-cycles', 'pull', 'fleet-scale', 'grpc', 'vad'];

export async function runStandalone(name, { ROOT, quick, log }) {
  const file = path.join(ROOT, 'bench', `${name}.mjs`);
  if (!fs.existsSync(file)) {
    log(`\n[${name}] skipped: bench/${name}.mjs is not in this checkout`);
    return { skipped: `bench/${name}.mjs not present` };
  }
  log(`\n[${name}] node bench/${name}.mjs${quick ? ' --quick' : ''}`);
  const code = await new Promise((resolve) => {
    const p = spawn(process.execPath, [file, ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
    p.on('exit', (c) => resolve(c));
  });
  return { exit_code: code };
}

const verdict = (p) => (p === null || p === undefined ? 'SKIP' : p ? 'PASS' : 'FAIL');

/** Rows of the figures that come from run.mjs's numbered scenarios. */
function numberedRows(s) {
  const rows = [];
  const b = s.batching;
  const l1 = b?.levels.find((x) => x.concurrency === 1);
  if (l1) {
    const r = round(l1.on.rps / l1.off.rps, 2);
    rows.push({ figure: 'mlp, batching on ÷ off, c=1 (throughput, undici)', value: `${r}× (p50 ${fmtUs(l1.on.latency.p50_us)} vs ${fmtUs(l1.off.latency.p50_us)})`, target: '≥ 0.95×', pass: r >= 0.95 });
  }
  const l32 = b?.levels.find((x) => x.concurrency === 32);
  if (l32) {
    const ok = l32.on.latency.p95_us <= l32.off.latency.p95_us;
    rows.push({ figure: 'mlp, batching gain at c=32 (undici)', value: `${l32.gain}× (p95 ${fmtUs(l32.on.latency.p95_us)} vs ${fmtUs(l32.off.latency.p95_us)})`, target: '≥ 3× with p95 no worse', pass: l32.gain >= 3 && ok });
  }
  if (s.http) {
    rows.push({ figure: 'HTTP efficiency (add_sub binary, c=32, agent ÷ empty route, undici)', value: String(s.http.efficiency), target: '≥ 0.7', pass: s.http.efficiency >= 0.7 });
    if (s.http.autocannon) rows.push({ figure: 'HTTP efficiency (same, autocannon)', value: String(s.http.autocannon.efficiency), target: '≥ 0.7', pass: s.http.autocannon.efficiency >= 0.7 });
  }
  if (s.compute) rows.push({ figure: `compute efficiency (mlp_heavy at saturation ÷ direct at batch ${s.compute.direct.batch})`, value: String(s.compute.efficiency), target: '≥ 0.85', pass: s.compute.efficiency >= 0.85 });
  const o = s.overhead;
  if (o) {
    const v = o.variants.binary;
    const ratio = round(v.agent.p50_us / (v.empty.p50_us + o.direct.p50_us), 2);
    rows.push({ figure: `overhead at c=1, binary: agent p50 ÷ (empty p50 + direct p50) (${o.condition})`, value: `${ratio} (${fmtUs(v.agent.p50_us)} vs ${fmtUs(v.empty.p50_us)} + ${fmtUs(o.direct.p50_us)})`, target: '≤ 1.25', pass: ratio <= 1.25 });
    const c = o.cpu_us_per_request;
    if (c) rows.push({ figure: 'main-thread CPU per request vs the empty route (c=1, binary+JSON)', value: `${c.agent_main_thread} vs ${c.empty} µs (${round(c.agent_main_thread / c.empty, 2)}×); agent other threads ${c.agent_other_threads} µs`, target: '—', pass: null });
  }
  return rows;
}

export function issueTable(scenarios, { load, machine }) {
  const rows = numberedRows(scenarios);
  for (const x of EXTRA_SCENARIOS) if (scenarios[x.name]) rows.push(...x.issueRows(scenarios[x.name]));
  const headers = ['figure', 'measured', 'target', ''];
  const body = rows.map((r) => [r.figure, r.value, r.target, verdict(r.pass)]);
  const text = [
    `Issue 16 table (${machine.cpu_model}, ${machine.cores} cores; load average at the end ${load.join(' ')}):`,
    textTable(headers, body),
  ].join('\n');
  return { rows: rows.map((r) => ({ ...r, verdict: verdict(r.pass) })), text };
}
