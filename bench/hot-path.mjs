#!/usr/bin/env node
// Main-thread CPU per request of the agent's inference hot path against the empty route's, on
// add_sub batch 1, binary and JSON, at concurrency 1 and 32 (issue 16, "a lean hot path").
//
//   node bench/hot-path.mjs [--seconds 5] [--rounds 1] [--profile] [--only binary|json] [--concurrency 1,32]
//                           [--dist dist,other-dist]   (agents built into these folders, measured side by side)
//
// It starts a real agent (node dist/src/cli.js serve, the bench's own repository and flags) and
// the empty route (bench/empty-server.mjs), drives each with wrk (a separate C process, so the
// client's CPU is not the servers'), and reads the on-CPU time of each server's main thread from
// /proc/<pid>/task/<pid>/schedstat around the measured run: CPU µs per 200 reply. On-CPU time
// is far less sensitive to other load on a shared machine than latency or req/s (it still
// varies with cache and frequency effects: compare runs made side by side).
//
// --profile runs the agent under `node --cpu-prof` (numbers perturbed) and prints its self time
// per function per request for each stream (bench/lib/profile.mjs).
// Writes nothing under bench/results.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, stopChild } from './lib/children.mjs';
import { hasWrk, load } from './lib/loadgen.mjs';
import { buildRepository } from './lib/models.mjs';
import { loadAverage, threadNs } from './lib/proc.mjs';
import { summarizeProfile } from './lib/profile.mjs';
import { binaryRequest, f32, jsonRequest } from './lib/requests.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return dflt;
  return argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
};
const SECONDS = Number(opt('seconds', 5));
const PROFILE = argv.includes('--profile');
const KINDS = (opt('only', 'binary,json')).split(',');
const CONC = String(opt('concurrency', '1,32')).split(',').map(Number);

if (!hasWrk()) {
  console.error('hot-path: wrk is not installed (apt-get install wrk)');
  process.exit(2);
}

function mainThreadNs(pid) {
  return threadNs(pid).get(String(pid)) ?? 0;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-hot-'));
const profDir = PROFILE ? path.join(tmp, 'prof') : undefined;
let agents = [];
let empty;
try {
  const { repo } = await buildRepository(tmp, { queueDelayUs: 500, resnet: false });
  const nodeFlags = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  // --dist a,b: agents built into these folders (relative to the repository), measured side by side.
  const dists = String(opt('dist', 'dist')).split(',');
  agents = dists.map((d) => ({
    name: dists.length > 1 ? `agent:${d}` : 'agent',
    child: startNode(`agent ${d}`, [...nodeFlags, path.join(ROOT, d, 'src', 'cli.js'), 'serve', '--models', repo, '--load-models', 'add_sub', '--model-control-mode', 'explicit',
      '--host', '127.0.0.1', '--port', '0', '--grpc-port', '0', '--log-level', 'info', '--providers', 'cpu'], {
      isReady: (o) => o.msg === 'gpu-agent listening' && typeof o.url === 'string',
      guard: true,
    }),
  }));
  const emptyFlags = profDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profDir, 'empty')] : [];
  empty = startNode('empty route', [...emptyFlags, path.join(ROOT, 'bench', 'empty-server.mjs')], { isReady: (o) => o.msg === 'empty server listening' });
  const e = await empty.ready;
  for (const a of agents) {
    a.url = (await a.child.ready).url.replace('0.0.0.0', '127.0.0.1');
    for (let i = 0; i < 200; i++) {
      const r = await fetch(`${a.url}/v2/models/add_sub/ready`).catch(() => undefined);
      if (r?.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const inputs = [
    { name: 'INPUT0', shape: [1, 16], data: f32(16, (i) => i) },
    { name: 'INPUT1', shape: [1, 16], data: f32(16, () => 1) },
  ];
  const reqs = { binary: binaryRequest('add_sub', inputs), json: jsonRequest('add_sub', inputs) };
  const rows = [];
  console.log(`hot-path: ${SECONDS} s per stream, wrk; load average at start ${loadAverage().join(', ')}`);
  const ROUNDS = Number(opt('rounds', 1));
  const servers = [{ name: 'empty', url: e.url, pid: empty.pid }, ...agents.map((a) => ({ name: a.name, url: a.url, pid: a.child.pid }))];
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of KINDS) {
      for (const c of CONC) {
        // Alternate the order each round so no server is always measured first.
        for (const { name: server, url, pid } of round % 2 ? [...servers].reverse() : servers) {
          await load(url, reqs[kind], { connections: c, durationS: 1 }); // warm-up
          const t0 = process.hrtime.bigint() / 1000n;
          const n0 = mainThreadNs(pid);
          const r = await load(url, reqs[kind], { connections: c, durationS: SECONDS });
          const n1 = mainThreadNs(pid);
          const t1 = process.hrtime.bigint() / 1000n;
          const row = { round, kind, concurrency: c, server, ok: r.ok, errors: r.errors + r.refused, rps: Math.round(r.rps), main_cpu_us_per_req: Math.round(((n1 - n0) / r.ok / 1e3) * 10) / 10, window: { from: Number(t0), to: Number(t1) } };
          rows.push(row);
          console.log(`${kind.padEnd(6)} c=${String(c).padEnd(3)} ${server.padEnd(18)} ${String(row.rps).padStart(6)} req/s  main thread ${String(row.main_cpu_us_per_req).padStart(6)} µs/req  (${r.ok} ok, ${row.errors} not ok; load ${loadAverage()[0]})`);
        }
      }
    }
  }
  const med = (xs) => { const a = [...xs].sort((x, y) => x - y); return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2; };
  console.log(`\nmain-thread CPU per request (median of ${ROUNDS} round(s)), and minus the empty route's:`);
  for (const kind of KINDS) for (const c of CONC) {
    const of = (server) => med(rows.filter((r) => r.kind === kind && r.concurrency === c && r.server === server).map((r) => r.main_cpu_us_per_req));
    const em = of('empty');
    console.log(`  ${kind} c=${c}: empty ${em} µs; ` + agents.map((a) => `${a.name} ${of(a.name)} µs (+${Math.round((of(a.name) - em) * 10) / 10})`).join('; '));
  }
  console.log(`load average at end ${loadAverage().join(', ')}`);
  if (PROFILE) {
    for (const a of agents) await stopChild(a.child);
    await stopChild(empty);
    empty = undefined;
    const agentFiles = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    const fileOf = (server) => server === 'empty'
      ? path.join(profDir, 'empty', fs.readdirSync(path.join(profDir, 'empty')).find((f) => f.endsWith('.cpuprofile')))
      : path.join(profDir, agentFiles.find((f) => f.includes(`.${agents.find((a) => a.name === server).child.pid}.`)));
    for (const row of rows) {
      const s = summarizeProfile(fileOf(row.server), Number(opt('top', 25)), row.window);
      console.log(`\nprofile ${row.server} ${row.kind} c=${row.concurrency}: busy ${Math.round((s.busy_ms * 1000) / row.ok * 10) / 10} µs/req`);
      for (const ar of s.areas) console.log(`  ${ar.area.padEnd(34)} ${(Math.round((ar.self_ms * 1000 / row.ok) * 10) / 10).toString().padStart(6)} µs/req`);
      for (const f of s.top) console.log(`    ${(Math.round((f.self_ms * 1000 / row.ok) * 100) / 100).toString().padStart(6)} µs  ${f.function} ${f.where}`);
    }
  }
} finally {
  for (const a of agents) await stopChild(a.child).catch(() => undefined);
  if (empty) await stopChild(empty).catch(() => undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
}
