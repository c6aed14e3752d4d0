// Child processes (the agent, the empty route): spawn, wait until listening, stop, and never
// leave one behind: every child is SIGKILLed when the bench process exits for any reason it can
// observe (normal end, error, SIGINT/SIGTERM/SIGHUP). A bench killed with SIGKILL runs no
// handler: the empty route then exits when its stdin closes, the agent is stopped by a guard
// process that watches the bench the same way, and the keep-awake spinners exit on their own.
import { spawn } from 'node:child_process';
import os from 'node:os';
import readline from 'node:readline';

const live = new Set();
let hooked = false;

function killAllNow() {
  for (const c of live) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

function hook() {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping ${live.size} child process(es)\n`);
      killAllNow();
      process.exit(130);
    });
  }
}

/**
 * Start `node <args>` and resolve once a stdout JSON line satisfies `isReady`, with the parsed
 * line. The child's stdout is drained for its whole life (a full pipe would block it) and the
 * last lines of both streams are kept for error messages.
 */
export function startNode(name, args, { isReady, timeoutMs = 60_000, env = process.env, guard = false } = {}) {
  hook();
  const proc = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  const child = { name, proc, pid: proc.pid, tail: [], exited: undefined, exitPromise: undefined };
  live.add(child);
  const remember = (line) => {
    child.tail.push(line);
    if (child.tail.length > 60) child.tail.shift();
  };
  child.exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      child.exited = { code, signal };
      live.delete(child);
      resolve(child.exited);
    });
  });
  readline.createInterface({ input: proc.stderr }).on('line', (l) => remember(`[stderr] ${l}`));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms:\n${child.tail.join('\n')}`)), timeoutMs);
    readline.createInterface({ input: proc.stdout }).on('line', (l) => {
      remember(l);
      let obj;
      try {
        obj = JSON.parse(l);
      } catch {
        return;
      }
      if (isReady(obj)) {
        clearTimeout(timer);
        resolve(obj);
      }
    });
    child.exitPromise.then((e) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${e.code}, signal ${e.signal}) before it was ready:\n${child.tail.join('\n')}`));
    });
  });
  ready.catch(() => undefined);
  child.ready = ready;
  if (guard) startGuard(child);
  return child;
}

/**
 * For a child that does not watch its stdin (the agent): a tiny watcher process that stops it
 * if the bench process dies without running its exit handlers (SIGKILL), and exits by itself
 * when the child is gone.
 */
function startGuard(child) {
  // SIGTERM first (the agent drains), SIGKILL after 5 s: with its stdout reader gone the agent
  // can hang in its exit-time log flush (see the benchmark report).
  const code = [
    'const pid = Number(process.argv[1]);',
    'const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };',
    "process.stdin.on('end', () => {",
    "  try { process.kill(pid, 'SIGTERM'); } catch {}",
    '  const t0 = Date.now();',
    "  setInterval(() => { if (!alive()) process.exit(0); if (Date.now() - t0 > 5000) { try { process.kill(pid, 'SIGKILL'); } catch {} process.exit(0); } }, 100);",
    '});',
    'process.stdin.resume();',
    'setInterval(() => { if (!alive()) process.exit(0); }, 500);',
  ].join('\n');
  const proc = spawn(process.execPath, ['-e', code, String(child.pid)], { stdio: ['pipe', 'ignore', 'ignore'] });
  const g = { name: `${child.name} guard`, proc, pid: proc.pid, tail: [], exited: undefined };
  g.exitPromise = new Promise((resolve) => proc.on('exit', (code_, signal) => {
    g.exited = { code: code_, signal };
    live.delete(g);
    resolve(g.exited);
  }));
  live.add(g);
  child.guard = g;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves with how it ended. */
export async function stopChild(child, graceMs = 15_000) {
  if (child.exited) return child.exited;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  const e = await child.exitPromise;
  clearTimeout(timer);
  if (child.guard && !child.guard.exited) child.guard.proc.kill('SIGKILL');
  return e;
}

export function liveChildren() {
  return [...live].map((c) => `${c.name} (pid ${c.pid})`);
}

export function killAll() {
  killAllNow();
}

/**
 * Keep-awake spinners: one busy loop per core at nice 19. On a VM whose idle vCPUs halt, a
 * request/response ping-pong between two processes pays a vCPU wake-up at every hand-off
 * (measured here: an empty fastify route answers in ~200 µs p50 at concurrency 1 on an idle
 * machine, ~50 µs with the cores kept busy). At nice 19 a spinner yields to any nice-0 thread
 * at once and gets ~1.5% of a core under contention, like booting with idle=poll. Each spinner
 * exits by itself when its parent goes away.
 */
export function startSpinners(count, niceness = 19) {
  hook();
  // process.ppid is a value fixed at start in Node 20, so probe the parent itself.
  const code = 'const p = process.ppid; for (let i = 1; ; i++) { if ((i & 0xffffff) === 0) { try { process.kill(p, 0); } catch { process.exit(0); } } }';
  const out = [];
  for (let i = 0; i < count; i++) {
    const proc = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
    const child = { name: `keep-awake ${i}`, proc, pid: proc.pid, tail: [], exited: undefined };
    child.exitPromise = new Promise((resolve) => proc.on('exit', (code_, signal) => {
      child.exited = { code: code_, signal };
      live.delete(child);
      resolve(child.exited);
    }));
    live.add(child);
    try {
      os.setPriority(proc.pid, niceness);
    } catch {
      // leave it at the default priority; reported by the caller through getPriority
    }
    out.push(child);
  }
  return out;
}
