// Peer: FastAPI + PyTorch eager on ResNet-18 (bench/peers/fastapi_resnet.py), against the agent
// serving the same network exported to ONNX (bench/setup-peers.sh), c=8 closed loop with the
// bench's undici client (a 50+ ms request makes the client's CPU negligible), binary bodies both
// ways; answers compared. Then compute efficiency on this convolutional net: the agent's rows/s
// ÷ direct onnxruntime's at the batch the agent formed. Skipped, with the reason, when the
// Debian packages or the exported model are missing.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { request } from 'undici';
import { closedLoop } from '../lib/client.mjs';
import { createSession, feedsOf, runThroughput } from '../lib/direct.mjs';
import { binaryRequest, decodeReply, f32, maxAbsDiff } from '../lib/requests.mjs';
import { round, summarize } from '../lib/stats.mjs';

export const name = 'fastapi';
export const title = 'peer: FastAPI + PyTorch eager (ResNet-18, c=8)';
const PY = '/usr/bin/python3';

export function missing(ctx) {
  try {
    execFileSync(PY, ['-c', 'import torch, torchvision, fastapi, uvicorn, numpy'], { stdio: 'ignore' });
  } catch {
    return 'FastAPI peer skipped: python3-torch, python3-torchvision, python3-fastapi, python3-uvicorn not importable by /usr/bin/python3 (run bench/setup-peers.sh as root)';
  }
  if (!ctx.models.resnet18) return 'FastAPI peer skipped: bench/peers/resnet18/1/model.onnx missing (run bench/setup-peers.sh)';
  return undefined;
}

function startPeer(root, port) {
  const proc = spawn(PY, [path.join(root, 'bench', 'peers', 'fastapi_resnet.py'), String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const tail = [];
  readline.createInterface({ input: proc.stderr }).on('line', (l) => { tail.push(l); if (tail.length > 30) tail.shift(); });
  const ready = new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout }).on('line', (l) => {
      try {
        const o = JSON.parse(l);
        if (o.msg === 'fastapi peer listening') resolve(o);
      } catch { /* not ours */ }
    });
    proc.on('exit', (code) => reject(new Error(`FastAPI peer exited (${code}):\n${tail.join('\n')}`)));
  });
  return { proc, ready };
}

async function waitHealthy(url) {
  for (let i = 0; i < 400; i++) {
    try {
      const r = await request(`${url}/health`);
      await r.body.text();
      if (r.statusCode === 200) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('FastAPI peer did not answer /health');
}

export async function run(ctx) {
  if (ctx.P.fastapi.onlyWhenNamed && !ctx.named) return { skipped: 'FastAPI peer skipped in --quick (PyTorch start-up alone takes ~6 s); the full run and --only fastapi run it' };
  const why = missing(ctx);
  if (why) return { skipped: why };
  const { P } = ctx;
  const port = 18000 + (process.pid % 1000);
  const peer = startPeer(ctx.ROOT, port);
  try {
    const info = await peer.ready;
    await waitHealthy(info.url);
    ctx.pids.fastapi = peer.proc.pid;
    const img = f32(3 * 224 * 224, (i) => Math.sin(i * 0.001));
    const agentReq = binaryRequest('resnet18', [{ name: 'input', shape: [1, 3, 224, 224], data: img }]);
    const body = Buffer.from(img.buffer, img.byteOffset, img.byteLength);
    const peerReq = { method: 'POST', path: '/infer', headers: { 'content-type': 'application/octet-stream' }, body };
    // Same answer both ways?
    const a = await request(ctx.agentUrl + agentReq.path, { method: 'POST', headers: agentReq.headers, body: agentReq.body });
    const agentOut = decodeReply(a.headers, Buffer.from(await a.body.arrayBuffer())).logits;
    const p = await request(info.url + '/infer', { method: 'POST', headers: peerReq.headers, body });
    const pb = Buffer.from(await p.body.arrayBuffer());
    const peerOut = new Float32Array(pb.buffer, pb.byteOffset, pb.byteLength / 4);
    const diff = maxAbsDiff(agentOut, peerOut);
    const c = 8;
    const out = { model: 'resnet18 (torchvision, random weights, seed 0)', torch: info.torch, torch_threads: info.threads, concurrency: c, answers_max_abs_diff: diff, rounds: [] };
    for (let r = 0; r < P.fastapi.rounds; r++) {
      for (const who of r % 2 === 0 ? ['agent', 'fastapi'] : ['fastapi', 'agent']) {
        ctx.step(`fastapi peer: ${who}, c=${c}, ${P.fastapi.durationMs} ms`);
        await ctx.gate(`fastapi ${who}`);
        const s0 = who === 'agent' ? await ctx.modelStats('resnet18') : undefined;
        const res = await closedLoop(who === 'agent' ? ctx.agentUrl : info.url, who === 'agent' ? agentReq : peerReq, { concurrency: c, warmupMs: P.fastapi.warmupMs, durationMs: P.fastapi.durationMs });
        const s1 = who === 'agent' ? await ctx.modelStats('resnet18') : undefined;
        const batch = s0 ? (s1.inference_count - s0.inference_count) / Math.max(1, s1.execution_count - s0.execution_count) : undefined;
        out.rounds.push({ who, rps: round(res.rps, 2), latency: summarize(res.latUs), ...(batch ? { avg_batch: round(batch, 2) } : {}) });
      }
    }
    const pick = (who) => out.rounds.filter((x) => x.who === who);
    const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
    out.agent_img_s = round(mean(pick('agent').map((x) => x.rps)), 2);
    out.fastapi_img_s = round(mean(pick('fastapi').map((x) => x.rps)), 2);
    out.agent_p95_us = Math.max(...pick('agent').map((x) => x.latency.p95_us));
    out.fastapi_p95_us = Math.max(...pick('fastapi').map((x) => x.latency.p95_us));
    out.ratio = round(out.agent_img_s / out.fastapi_img_s, 2);
    // Compute efficiency on a convolutional net, at the batch the agent formed.
    const batch = Math.max(1, Math.round(mean(pick('agent').map((x) => x.avg_batch))));
    ctx.step(`fastapi: direct onnxruntime ResNet-18 at batch ${batch}`);
    const session = await createSession(ctx.models.resnet18.file);
    const d = await runThroughput(session, feedsOf([{ name: 'input', shape: [batch, 3, 224, 224], data: f32(batch * 3 * 224 * 224, (i) => Math.sin((i % (3 * 224 * 224)) * 0.001)) }]), P.fastapi.directMs, 2);
    await session.release();
    out.direct = { batch, img_s: round(d.runsPerSecond * batch, 2) };
    out.compute_efficiency = round(out.agent_img_s / out.direct.img_s, 3);
    return out;
  } finally {
    delete ctx.pids.fastapi;
    peer.proc.kill('SIGTERM');
  }
}

export function issueRows(s) {
  if (s.skipped) return [{ figure: 'agent ÷ FastAPI + PyTorch eager, ResNet-18, c=8', value: s.skipped, target: '≥ 2× with p95 no worse', pass: null }];
  const p95ok = s.agent_p95_us <= s.fastapi_p95_us;
  return [
    {
      figure: 'agent ÷ FastAPI + PyTorch eager, ResNet-18, c=8 (undici)',
      value: `${s.ratio}× (${s.agent_img_s} vs ${s.fastapi_img_s} img/s; p95 ${round(s.agent_p95_us / 1000)} vs ${round(s.fastapi_p95_us / 1000)} ms)`,
      target: '≥ 2× with p95 no worse',
      pass: s.ratio >= 2 && p95ok,
    },
    {
      figure: `compute efficiency, ResNet-18 (agent c=8 ÷ direct at batch ${s.direct.batch})`,
      value: `${s.compute_efficiency} (${s.agent_img_s} vs ${s.direct.img_s} img/s)`,
      target: '≥ 0.95',
      pass: s.compute_efficiency >= 0.95,
    },
  ];
}
