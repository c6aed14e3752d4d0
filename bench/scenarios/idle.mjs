// Idle CPU: the agent's CPU (all threads) over a window in which nothing is sent, with every
// bench model loaded. Timers, telemetry sampling and onnxruntime pool threads show up here.
import { cpuNs, threadNs } from '../lib/proc.mjs';
import { round } from '../lib/stats.mjs';

export const name = 'idle';
export const title = 'idle CPU with models loaded';

export async function run(ctx) {
  const ms = ctx.P.idle.durationMs;
  ctx.step(`idle: agent CPU over ${ms} ms without requests`);
  await new Promise((r) => setTimeout(r, 500)); // let the previous phase's replies settle
  const a = cpuNs(ctx.agentPid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuNs(ctx.agentPid);
  const wall = performance.now() - t0;
  return { window_ms: round(wall), cpu_ms: round((b - a) / 1e6, 1), pct_of_one_core: round((100 * (b - a)) / 1e6 / wall, 2), threads: threadNs(ctx.agentPid).size };
}

export function issueRows(s) {
  return [{ figure: 'agent CPU while idle with models loaded', value: `${s.pct_of_one_core}% of one core (${s.cpu_ms} ms in ${s.window_ms} ms)`, target: '≤ 1% of one core', pass: s.pct_of_one_core <= 1 }];
}
