// Overload: goodput (200 replies/s) on mlp_q8 (the bundled mlp batching, max_queue_size 8) at
// 8 clients, then at 256 clients (10× what the queue and one batch hold). Closed-loop clients
// that re-send at once after a 429: the worst case, no backoff. The cheap load generator.
import { load } from '../lib/loadgen.mjs';
import { binaryRequest, f32 } from '../lib/requests.mjs';
import { round } from '../lib/stats.mjs';

export const name = 'overload';
export const title = 'overload: goodput at 8 vs 256 clients (mlp, max_queue_size 8)';

export async function run(ctx) {
  const { P } = ctx;
  const x = { name: 'x', shape: [1, 256], data: f32(256, (i) => Math.sin(i)) };
  const req = binaryRequest('mlp_q8', [x]);
  const out = { model: 'mlp_q8', request: 'binary [1,256]', levels: [] };
  for (const c of [8, 256]) {
    ctx.step(`overload: ${c} clients, ${P.overload.durationS} s`);
    await ctx.gate(`overload c=${c}`);
    const r = await load(ctx.agentUrl, req, { connections: c, durationS: P.overload.durationS, warmupS: P.overload.warmupS });
    out.levels.push({ clients: c, tool: r.tool, goodput_rps: round(r.rps), refused_per_s: round(r.refused / r.seconds), errors: r.errors, p50_us: r.p50_us });
  }
  out.ratio = round(out.levels[1].goodput_rps / out.levels[0].goodput_rps, 3);
  return out;
}

export function issueRows(s) {
  const [a, b] = s.levels;
  return [{
    figure: `goodput under 10× overload (max_queue_size 8, 256 clients) ÷ at 8 clients (${a.tool})`,
    value: `${s.ratio} (${b.goodput_rps} vs ${a.goodput_rps} req/s; ${b.refused_per_s} refusals/s)`,
    target: '≥ 0.9',
    pass: s.ratio >= 0.9,
  }];
}
