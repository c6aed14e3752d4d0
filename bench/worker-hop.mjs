#!/usr/bin/env node
// Where the worker-thread hop's time goes (issue 16: the worker session path costs ≤ 30 µs per
// batch more than the main thread). A no-op "run" in a worker thread, so only the hop is timed,
// three hand-offs, each back-to-back and after an idle gap on the main thread:
//
//   postMessage   request and reply by postMessage (what src/execution/worker-session.ts does);
//   atomics       request by Atomics.notify on a SharedArrayBuffer to a worker blocked in
//                 Atomics.wait after a bounded spin (--spin-us, default 50), reply by postMessage
//                 (the main thread must come back through its event loop anyway);
//   atomics+spin  the same with the spin long enough (--long-spin-us, default 400) to cover the gap.
//
// The gap (--gap-us, default 100) stands for what the main thread does between batches over
// HTTP at c=1 (parse, reply, wait for the next request): it sleeps in Atomics.wait, so its vCPU
// may halt as it does in epoll_wait. Per variant: round-trip p50/p95 and the worker thread's
// on-CPU time per round trip (/proc schedstat); and the worker's CPU over an idle second.
//
//   node bench/worker-hop.mjs [--n 4000] [--gap-us 100] [--spin-us 50] [--long-spin-us 400]
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';

const argv = process.argv.slice(2);
const opt = (k, d) => {
  const i = argv.indexOf(`--${k}`);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const N = opt('n', 4000);
const GAP_US = opt('gap-us', 100);
const SPIN_US = opt('spin-us', 50);
const LONG_SPIN_US = opt('long-spin-us', 400);

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.postMessage({ tid: Number(fs.readFileSync('/proc/thread-self/stat', 'utf8').split(' ')[0]) });
if (workerData.mode === 'postMessage') {
  parentPort.on('message', (m) => parentPort.postMessage(m));
} else {
  // i32[0]: request sequence number (main → worker), i32[1]: stop flag.
  const i32 = new Int32Array(workerData.sab);
  const spinNs = BigInt(workerData.spinUs * 1000);
  let seen = 0;
  for (;;) {
    // Bounded spin, then sleep in the kernel until notified.
    const until = process.hrtime.bigint() + spinNs;
    while (Atomics.load(i32, 0) === seen && process.hrtime.bigint() < until);
    if (Atomics.load(i32, 0) === seen) Atomics.wait(i32, 0, seen);
    if (Atomics.load(i32, 1) === 1) break;
    seen = Atomics.load(i32, 0);
    parentPort.postMessage(seen);
  }
}
`;

function threadNs(tid) {
  return Number(fs.readFileSync(`/proc/${process.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
}
const nap = new Int32Array(new SharedArrayBuffer(4));
function idleGap(us) {
  if (us > 0) Atomics.wait(nap, 0, 0, us / 1000);
}
function pct(a, p) {
  return a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
}

async function variant(label, mode, spinUs) {
  const sab = new SharedArrayBuffer(8);
  const i32 = new Int32Array(sab);
  const w = new Worker(WORKER, { eval: true, workerData: { mode, sab, spinUs } });
  const tid = await new Promise((r) => w.once('message', (m) => r(m.tid)));
  let waiting;
  w.on('message', (m) => waiting?.(m));
  let seq = 0;
  const hop = () => new Promise((resolve) => {
    waiting = resolve;
    seq++;
    if (mode === 'postMessage') w.postMessage(seq);
    else {
      Atomics.store(i32, 0, seq);
      Atomics.notify(i32, 0);
    }
  });
  const out = { label };
  for (const gap of [0, GAP_US]) {
    for (let i = 0; i < 500; i++) await hop();
    const lat = [];
    const c0 = threadNs(tid);
    for (let i = 0; i < N; i++) {
      idleGap(gap);
      const t0 = process.hrtime.bigint();
      await hop();
      lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const cpu = (threadNs(tid) - c0) / N / 1000;
    lat.sort((a, b) => a - b);
    out[`gap ${gap} µs`] = { p50_us: Math.round(pct(lat, 50)), p95_us: Math.round(pct(lat, 95)), worker_cpu_us_per_hop: Math.round(cpu * 10) / 10 };
  }
  const i0 = threadNs(tid);
  await new Promise((r) => setTimeout(r, 1000));
  out.idle_worker_cpu_pct_of_core = Math.round(((threadNs(tid) - i0) / 1e9) * 1000) / 10;
  Atomics.store(i32, 1, 1);
  Atomics.store(i32, 0, seq + 1);
  Atomics.notify(i32, 0);
  await w.terminate();
  return out;
}

console.log(`worker hop microbench: ${N} round trips per row; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(', ')}`);
const rows = [
  await variant('postMessage both ways', 'postMessage', 0),
  await variant(`atomics request, spin ${SPIN_US} µs`, 'atomics', SPIN_US),
  await variant(`atomics request, spin ${LONG_SPIN_US} µs`, 'atomics', LONG_SPIN_US),
];
for (const r of rows) {
  const cols = Object.entries(r).filter(([k]) => k.startsWith('gap')).map(([k, v]) => `${k}: p50 ${v.p50_us} µs, p95 ${v.p95_us} µs, worker CPU ${v.worker_cpu_us_per_hop} µs/hop`);
  console.log(`${r.label.padEnd(30)} ${cols.join(' | ')} | idle worker ${r.idle_worker_cpu_pct_of_core}% of a core`);
}
