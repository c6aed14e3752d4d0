/**
 * What telemetry costs in CPU time.
 *
 *   measureSamplingCost({ nvidiaSmiPath, intervalMs, logger }, 20_000)
 *
 * 1. Baseline: the agent's own CPU time (`process.cpuUsage()`, user+system, all threads) over
 *    `durationMs` with telemetry off.
 * 2. Telemetry is started and the first GPU sample awaited (start-up, i.e. `nvidia-smi -q -x`
 *    and the static host facts, is reported apart as `startupCpuMs`).
 * 3. Steady state: the agent's CPU time over `durationMs` with sampling on, and the CPU time
 *    the nvidia-smi loops themselves used (utime+stime from /proc/<pid>/stat, Linux only).
 * `agentCpuMs` = on − baseline, so it is what telemetry adds to the agent process.
 *
 * Run as a script (after `npm run build`):
 *   node dist/src/telemetry/measure-cost.js [--nvidia-smi PATH] [--interval MS] [--duration MS]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { Telemetry, type TelemetryOptions } from './telemetry.js';

export interface SamplingCost {
  /** CPU ms the agent process spent on telemetry during the window (on − baseline). */
  agentCpuMs: number;
  /** CPU ms of the nvidia-smi loop processes during the window (null where /proc is absent). */
  childCpuMs: number | null;
  /** GPU sample lines received during the window (one per GPU per interval). */
  samples: number;
  durationMs: number;
  intervalMs: number;
  baselineCpuMs: number;
  onCpuMs: number;
  startupCpuMs: number;
  /** Child restarts during the window would lose their CPU time: reported so it can be seen. */
  childRestarts: number;
  gpus: number;
  reason?: string;
}

const USER_HZ = 100; // /proc/<pid>/stat is in USER_HZ ticks, fixed at 100 in Linux's user ABI

/** utime+stime of a process in ms, from /proc/<pid>/stat; undefined if unreadable. */
export function procCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return ((utime + stime) * 1000) / USER_HZ;
  } catch {
    return undefined;
  }
}

function cpuMs(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function measureSamplingCost(opts: Partial<TelemetryOptions> & Pick<TelemetryOptions, 'logger'>, durationMs: number): Promise<SamplingCost> {
  // 1. baseline
  let t0 = process.cpuUsage();
  await sleep(durationMs);
  const baselineCpuMs = cpuMs(t0);

  // 2. start-up
  t0 = process.cpuUsage();
  const telemetry = new Telemetry(opts);
  try {
    await telemetry.start();
    const deadline = Date.now() + Math.max(5000, telemetry.intervalMs * 3);
    while (telemetry.inventory().gpus.length > 0 && telemetry.stats().gpuSamples === 0 && Date.now() < deadline) await sleep(20);
    const startupCpuMs = cpuMs(t0);

    // 3. steady state
    const pids = telemetry.childPids();
    const childBefore = pids.map((p) => procCpuMs(p));
    const samplesBefore = telemetry.stats().gpuSamples;
    const spawnsBefore = telemetry.stats().spawns;
    t0 = process.cpuUsage();
    await sleep(durationMs);
    const onCpuMs = cpuMs(t0);
    const childAfter = pids.map((p) => procCpuMs(p));
    const spawnsAfter = telemetry.stats().spawns;
    let childCpuMs: number | null = pids.length === 0 ? 0 : null;
    if (pids.length > 0 && childBefore.every((c) => c !== undefined)) {
      childCpuMs = pids.reduce((sum, _p, i) => sum + ((childAfter[i] ?? childBefore[i]!) - childBefore[i]!), 0);
    }
    const reason = telemetry.latest().gpuReason ?? telemetry.inventory().reason;
    const out: SamplingCost = {
      agentCpuMs: Math.max(0, onCpuMs - baselineCpuMs),
      childCpuMs,
      samples: telemetry.stats().gpuSamples - samplesBefore,
      durationMs,
      intervalMs: telemetry.intervalMs,
      baselineCpuMs,
      onCpuMs,
      startupCpuMs,
      childRestarts: spawnsAfter.gpu + spawnsAfter.apps - spawnsBefore.gpu - spawnsBefore.apps,
      gpus: telemetry.inventory().gpus.length,
    };
    if (reason) out.reason = reason;
    return out;
  } finally {
    await telemetry.close();
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const nvidiaSmiPath = arg('--nvidia-smi') ?? 'nvidia-smi';
  const intervalMs = Number(arg('--interval') ?? 2000);
  const durationMs = Number(arg('--duration') ?? 20_000);
  measureSamplingCost({ nvidiaSmiPath, intervalMs, logger }, durationMs).then(
    (r) => {
      console.log(JSON.stringify({ nvidiaSmiPath, ...r }, null, 2));
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
