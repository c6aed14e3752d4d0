// Where the CPU went during a phase, from /proc (Linux): the share of the machine used by each
// of our processes (bench client, agent, empty route) and by everything else ("foreign": other
// processes on this box) plus hypervisor steal. Foreign load makes a phase's numbers noisy; the
// report prints it next to every measurement instead of hiding it.
import fs from 'node:fs';
import os from 'node:os';

const HZ = 100; // USER_HZ: clock ticks per second of /proc/stat and /proc/<pid>/stat (100 on Linux)

/** utime and stime of a process, all threads, in clock ticks; undefined once it is gone. */
function readUserSystemTicks(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]), system: Number(f[12]) };
  } catch {
    return undefined;
  }
}

function readTicks(pid) {
  const t = readUserSystemTicks(pid);
  return t && t.user + t.system;
}

/** CPU time of a process (all threads) in µs, total and system, at /proc's 10 ms resolution. */
export function cpuTimesUs(pid) {
  const t = readUserSystemTicks(pid);
  if (!t) throw new Error(`process ${pid} is gone`);
  return { totalUs: (t.user + t.system) * (1e6 / HZ), systemUs: t.system * (1e6 / HZ) };
}

function readMachine() {
  try {
    const v = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
    return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
  } catch {
    return undefined;
  }
}

/** pids: { name: pid }. */
export function cpuSnapshot(pids) {
  const per = {};
  for (const [name, pid] of Object.entries(pids)) per[name] = pid === undefined ? undefined : readTicks(pid);
  return { t: performance.now(), machine: readMachine(), per };
}

/** CPU use between two snapshots, as % of one core per process and % of the whole machine. */
export function cpuDelta(a, b) {
  const seconds = (b.t - a.t) / 1000;
  const cores = os.availableParallelism();
  const out = { seconds: Math.round(seconds * 100) / 100, cores, processes_pct_of_one_core: {} };
  let ours = 0;
  for (const name of Object.keys(b.per)) {
    const x = a.per[name];
    const y = b.per[name];
    if (x === undefined || y === undefined) continue;
    ours += y - x;
    out.processes_pct_of_one_core[name] = Math.round(((y - x) / HZ / seconds) * 100);
  }
  if (a.machine && b.machine) {
    const capacity = seconds * HZ * cores;
    const busy = b.machine.busy - a.machine.busy;
    out.machine_busy_pct = Math.round((busy / capacity) * 100);
    out.foreign_pct = Math.max(0, Math.round(((busy - ours) / capacity) * 100));
    out.steal_pct = Math.round(((b.machine.steal - a.machine.steal) / capacity) * 100);
  }
  return out;
}

/** The CPUs a process may run on (Cpus_allowed_list), e.g. "0-1". */
export function cpusAllowed(pid = process.pid) {
  try {
    const m = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m[1] : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Threads of a process (onnxruntime's intra-op pool shows up here). */
export function threadCount(pid) {
  try {
    const m = /Threads:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function loadAverage() {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

/**
 * Wait (up to maxWaitMs) until other processes use less than thresholdPct of the machine over a
 * sampleMs window, so a phase does not start in the middle of someone else's build. Returns what
 * it saw; the phase runs anyway when the wait runs out (its noise is then reported).
 */
export async function waitForQuiet(pids, { maxWaitMs, thresholdPct = 15, sampleMs = 200 }) {
  const t0 = performance.now();
  for (;;) {
    const a = cpuSnapshot(pids);
    await new Promise((r) => setTimeout(r, sampleMs));
    const d = cpuDelta(a, cpuSnapshot(pids));
    const waited = performance.now() - t0;
    const quiet = (d.foreign_pct ?? 0) < thresholdPct;
    if (quiet || waited >= maxWaitMs) return { waited_ms: Math.round(waited), foreign_pct: d.foreign_pct, quiet };
  }
}

/** On-CPU time of all threads of a process, in ns (/proc/<pid>/task/<tid>/schedstat). */
export function cpuNs(pid) {
  let total = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
      } catch {
        // thread exited
      }
    }
  } catch {
    return undefined;
  }
  return total;
}

/** On-CPU ns per thread of a process: Map tid -> ns. */
export function threadNs(pid) {
  const out = new Map();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        out.set(tid, Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]));
      } catch {
        // thread exited
      }
    }
  } catch {
    // process gone
  }
  return out;
}

/** Everything a phase needs to account for its CPU: machine, processes, agent threads. */
export function probe(pids) {
  return {
    snap: cpuSnapshot(pids),
    agentThreads: pids.agent ? threadNs(pids.agent) : new Map(),
    agentPid: pids.agent,
    ns: { client: cpuNs(pids.client), empty: pids.empty ? cpuNs(pids.empty) : undefined },
  };
}

/**
 * CPU between two probes; with `requests`, also CPU µs per request: client (bench process),
 * empty route, agent main thread (JS: HTTP, protocol, batching, and onnxruntime's own work on
 * the calling thread) and the agent's other threads (onnxruntime's intra-op pool, V8 and libuv
 * helpers), with the busiest of those separately.
 */
export function probeDelta(a, b, requests) {
  const out = cpuDelta(a.snap, b.snap);
  if (!requests) return out;
  const per = (ns) => (ns === undefined || Number.isNaN(ns) ? null : Math.round((ns / requests / 1e3) * 10) / 10);
  let main = 0;
  let other = 0;
  let hottest = 0;
  for (const [tid, ns] of b.agentThreads) {
    const d = ns - (a.agentThreads.get(tid) ?? 0);
    if (String(tid) === String(a.agentPid)) main += d;
    else {
      other += d;
      hottest = Math.max(hottest, d);
    }
  }
  out.cpu_us_per_request = {
    client: per(b.ns.client - a.ns.client),
    empty: b.ns.empty === undefined ? null : per(b.ns.empty - a.ns.empty),
    agent_main_thread: per(main),
    agent_other_threads: per(other),
    agent_busiest_other_thread: per(hottest),
  };
  return out;
}
