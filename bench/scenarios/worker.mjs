// The worker-thread session path (--session-thread worker, used for CUDA) against the main
// thread, at c=1 on add_sub batch 1, two ways:
// - in this process, through the agent's own session factory (dist/): sequential runs in
//   alternating chunks; the hop alone (postMessage out, run, postMessage back);
// - over HTTP: a second agent started with --session-thread worker against the bench's agent
//   (main thread), sequential requests in alternating chunks: the figure of the issue's row
//   (it includes waking the idle worker thread and the main thread between requests).
// The added cost per batch is the difference of the medians.
import { sessionDefaults } from '../../dist/src/agent.js';
import { ortSessionFactory } from '../../dist/src/execution/ort-session.js';
import { loadConfig, parseArgs } from '../../dist/src/index.js';
import path from 'node:path';
import { startNode, stopChild } from '../lib/children.mjs';
import { dispatcher, latencyLoop } from '../lib/client.mjs';
import { binaryRequest, f32 } from '../lib/requests.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'worker';
export const title = 'session in a worker thread vs the main thread (add_sub, batch 1, c=1)';

export async function run(ctx) {
  const { n, chunk } = ctx.P.worker;
  const base = sessionDefaults(loadConfig(parseArgs(['--providers', 'cpu']), process.env));
  const sessions = {};
  for (const thread of ['main', 'worker']) {
    sessions[thread] = (await ortSessionFactory.create(ctx.models.add_sub.file, { ...base, providers: ['cpu'], thread })).session;
  }
  // Fresh tensors per run, as the agent has per request: the worker path takes ownership of
  // (transfers) inputs that own their buffer.
  const in0 = f32(16, (i) => i);
  const in1 = f32(16, () => 1);
  const fresh = () => ({
    INPUT0: { type: 'float32', dims: [1, 16], data: in0.slice() },
    INPUT1: { type: 'float32', dims: [1, 16], data: in1.slice() },
  });
  const lat = { main: [], worker: [] };
  ctx.step(`worker hop: ${n} runs each, alternating chunks of ${chunk}`);
  for (const s of Object.values(sessions)) for (let i = 0; i < 500; i++) await s.run(fresh(), ['OUTPUT0', 'OUTPUT1']);
  for (let done = 0; done < n; done += chunk) {
    for (const [thread, s] of Object.entries(sessions)) {
      for (let i = 0; i < chunk; i++) {
        const feeds = fresh();
        const t0 = process.hrtime.bigint();
        const out = await s.run(feeds, ['OUTPUT0', 'OUTPUT1']);
        lat[thread].push(Number(process.hrtime.bigint() - t0) / 1e3);
        if (out.OUTPUT0.data[3] !== 4) throw new Error(`add_sub in the ${thread} thread answered ${out.OUTPUT0.data[3]} for 3 + 1`);
      }
    }
  }
  for (const s of Object.values(sessions)) await s.release();
  const main = summarize(lat.main);
  const worker = summarize(lat.worker);
  const out = { runs_each: n, in_process: { main, worker, added_p50_us: round(worker.p50_us - main.p50_us, 1) } };

  ctx.step('worker hop over HTTP: starting a second agent with --session-thread worker');
  const argv = ['--models', ctx.repo, '--load-models', 'add_sub', '--model-control-mode', 'explicit', '--host', '127.0.0.1', '--port', '0', '--grpc-port', '0', '--log-level', 'info', '--providers', 'cpu', '--session-thread', 'worker'];
  const second = startNode('worker agent', [path.join(ctx.ROOT, 'dist', 'src', 'cli.js'), 'serve', ...argv], {
    isReady: (o) => o.msg === 'gpu-agent listening' && typeof o.url === 'string',
    guard: true,
  });
  try {
    const { url } = await second.ready;
    const workerUrl = url.replace('localhost', '127.0.0.1');
    await ctx.waitModelsReady(workerUrl, ['add_sub']);
    const req = binaryRequest('add_sub', [{ name: 'INPUT0', shape: [1, 16], data: in0 }, { name: 'INPUT1', shape: [1, 16], data: in1 }]);
    const clients = { main: dispatcher(ctx.agentUrl, 1), worker: dispatcher(workerUrl, 1) };
    const http = { main: [], worker: [] };
    for (const d of Object.values(clients)) await latencyLoop(d, req, 500);
    await ctx.gate('worker hop over HTTP');
    for (let done = 0; done < n; done += chunk) {
      for (const [k, d] of Object.entries(clients)) http[k].push(...(await latencyLoop(d, req, chunk)));
    }
    for (const d of Object.values(clients)) await d.close();
    const hm = summarize(http.main);
    const hw = summarize(http.worker);
    out.http = { main: hm, worker: hw, added_p50_us: round(hw.p50_us - hm.p50_us, 1) };
  } finally {
    await stopChild(second, 3000);
  }
  return out;
}

export function issueRows(s) {
  const h = s.http;
  const p = s.in_process;
  return [
    { figure: 'worker-thread session: added p50 per request at c=1 over HTTP (add_sub, undici)', value: `${h.added_p50_us} µs (${h.worker.p50_us} vs ${h.main.p50_us} µs)`, target: '≤ 30 µs', pass: h.added_p50_us <= 30 },
    { figure: 'worker-thread session: the hop alone, in process (add_sub, p50)', value: `${p.added_p50_us} µs (${p.worker.p50_us} vs ${p.main.p50_us} µs)`, target: '—', pass: null },
  ];
}
