// Peer: the naive 20-line server (bench/peers/naive-server.mjs: fastify + onnxruntime-node,
// intraOpNumThreads 1, one session.run per request) against the agent on the bundled mlp
// (the agent's mlp_batch: the bundled batching, delay 500 µs), JSON and binary, c=1 and c=32,
// with the cheap load generator (lib/loadgen.mjs), alternating who goes first per round.
import path from 'node:path';
import { startNode, stopChild } from '../lib/children.mjs';
import { load } from '../lib/loadgen.mjs';
import { binaryRequest, f32, jsonRequest } from '../lib/requests.mjs';
import { round } from '../lib/stats.mjs';

export const name = 'naive';
export const title = 'peer: naive fastify + onnxruntime-node server (mlp)';

export async function run(ctx) {
  const { P } = ctx;
  const naive = startNode('naive server', [path.join(ctx.ROOT, 'bench', 'peers', 'naive-server.mjs'), ctx.models.mlp_batch.file, '0'], {
    isReady: (o) => o.msg === 'naive server listening',
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
  });
  try {
    const { url: naiveUrl } = await naive.ready;
    ctx.pids.naive = naive.pid;
    const x = { name: 'x', shape: [1, 256], data: f32(256, (i) => Math.sin(i)) };
    const out = { model: 'mlp (agent: mlp_batch)', duration_s: P.peers.durationS, rounds: P.peers.rounds, rows: [] };
    for (const kind of P.peers.kinds) {
      for (const c of [1, 32]) {
        const runs = { agent: [], naive: [] };
        for (let r = 0; r < P.peers.rounds; r++) {
          const order = r % 2 === 0 ? ['agent', 'naive'] : ['naive', 'agent'];
          for (const who of order) {
            const origin = who === 'agent' ? ctx.agentUrl : naiveUrl;
            const req = kind === 'json' ? jsonRequest('mlp_batch', [x]) : binaryRequest('mlp_batch', [x]);
            ctx.step(`naive peer: ${who}, ${kind}, c=${c}, ${P.peers.durationS} s`);
            await ctx.gate(`naive ${who} ${kind} c=${c}`);
            const res = await load(origin, req, { connections: c, durationS: P.peers.durationS, warmupS: P.peers.warmupS });
            if (res.errors || res.refused) throw new Error(`${who} ${kind} c=${c}: ${res.errors} errors, ${res.refused} non-200`);
            runs[who].push(res);
          }
        }
        const rps = (list) => list.reduce((n, x) => n + x.ok, 0) / list.reduce((n, x) => n + x.seconds, 0);
        out.rows.push({
          kind, concurrency: c, tool: runs.agent[0].tool,
          agent_rps: round(rps(runs.agent)), naive_rps: round(rps(runs.naive)),
          agent_p50_us: runs.agent.at(-1).p50_us, naive_p50_us: runs.naive.at(-1).p50_us,
          ratio: round(rps(runs.agent) / rps(runs.naive), 2),
        });
      }
    }
    return out;
  } finally {
    delete ctx.pids.naive;
    await stopChild(naive, 2000);
  }
}

export function issueRows(s) {
  return s.rows.map((r) => ({
    figure: `agent ÷ naive server, mlp, ${r.kind}, c=${r.concurrency} (${r.tool})`,
    value: `${r.ratio}× (${r.agent_rps} vs ${r.naive_rps} req/s)`,
    target: r.concurrency === 1 ? '≥ 1×' : '≥ 3×',
    pass: r.ratio >= (r.concurrency === 1 ? 1 : 3),
  }));
}
