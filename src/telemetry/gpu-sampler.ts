/**
 * Live GPU samples from two long-running nvidia-smi loops:
 *
 *   nvidia-smi --query-gpu=<GPU_QUERY_FIELDS> --format=csv,noheader,nounits -lms <interval>
 *   nvidia-smi --query-compute-apps=pid,used_memory,gpu_uuid --format=csv,noheader,nounits -lms <interval>
 *
 * Each prints one CSV line per GPU (per compute process) every interval; lines are parsed as
 * they arrive and the latest sample per GPU is kept. Nothing here blocks the event loop; the
 * cost is two idle processes and a few short lines per interval.
 *
 * The compute-apps loop prints nothing at all in an iteration with no processes, so its
 * iterations are told apart by time: a line more than half an interval after the previous one
 * starts a new table, and a loop that has been silent for more than 1.5 intervals means "no
 * processes". `refreshProcesses()` asks once (execFile) for an exact, current answer.
 */
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { runNvidiaSmi } from './nvidia-smi.js';
import type { GpuProcess, GpuSample } from './schema.js';
import { SupervisedChild } from './supervised-child.js';
import { decodeThrottleReasons, parseBytes, parseInteger, parseMask, parseNumber, parseString } from './units.js';

/** The `--query-gpu` fields, in order (see `nvidia-smi --help-query-gpu`). */
export const GPU_QUERY_FIELDS = [
  'index',
  'uuid',
  'utilization.gpu',
  'utilization.memory',
  'memory.total',
  'memory.used',
  'memory.free',
  'temperature.gpu',
  'power.draw',
  'clocks.sm',
  'clocks.mem',
  'clocks_throttle_reasons.active',
  'ecc.errors.corrected.volatile.total',
  'ecc.errors.uncorrected.volatile.total',
] as const;
export type GpuQueryField = (typeof GPU_QUERY_FIELDS)[number];

/**
 * Names a driver may know a field by instead. 5xx drivers renamed clocks_throttle_reasons.* to
 * clocks_event_reasons.*; a driver that refuses a name ('Field "x" is not a valid field to
 * query.') gets the next one, and a field with no alternative left is dropped (null in samples).
 */
const FIELD_ALTERNATIVES: Partial<Record<GpuQueryField, string[]>> = {
  'clocks_throttle_reasons.active': ['clocks_event_reasons.active'],
  'power.draw': ['power.draw.average', 'power.draw.instant'],
};

/** How long a compute-apps loop may take to print its first iteration (NVML initialization). */
const STARTUP_ALLOWANCE_MS = 5000;

export const COMPUTE_APPS_FIELDS = ['pid', 'used_memory', 'gpu_uuid'] as const;

export type GpuSampleCore = Omit<GpuSample, 'processes'>;
export interface ComputeApp {
  pid: number;
  gpuUuid: string;
  usedMemoryBytes: number | null;
}

/** One `--query-gpu` CSV line (fields in `fields` order, nounits) → sample; null if it is not one. */
export function parseGpuCsvLine(line: string, fields: readonly string[], sampledAt: number): GpuSampleCore | null {
  const cols = line.split(',').map((c) => c.trim());
  if (cols.length !== fields.length) return null;
  const v = (key: GpuQueryField): string | undefined => {
    const alts = [key, ...(FIELD_ALTERNATIVES[key] ?? [])];
    const i = fields.findIndex((f) => alts.includes(f));
    return i >= 0 ? cols[i] : undefined;
  };
  const index = parseInteger(v('index'));
  const uuid = parseString(v('uuid'));
  if (index === null || index < 0 || !uuid) return null;
  const mask = parseMask(v('clocks_throttle_reasons.active'));
  return {
    index,
    uuid,
    utilizationGpuPct: parseNumber(v('utilization.gpu')),
    utilizationMemoryPct: parseNumber(v('utilization.memory')),
    memoryTotalBytes: parseBytes(v('memory.total')),
    memoryUsedBytes: parseBytes(v('memory.used')),
    memoryFreeBytes: parseBytes(v('memory.free')),
    temperatureC: parseNumber(v('temperature.gpu')),
    powerDrawW: parseNumber(v('power.draw')),
    smClockMHz: parseNumber(v('clocks.sm')),
    memClockMHz: parseNumber(v('clocks.mem')),
    throttleReasonsMask: mask,
    throttleReasons: decodeThrottleReasons(mask),
    eccCorrectedVolatile: parseInteger(v('ecc.errors.corrected.volatile.total')),
    eccUncorrectedVolatile: parseInteger(v('ecc.errors.uncorrected.volatile.total')),
    sampledAt,
  };
}

/** One `--query-compute-apps=pid,used_memory,gpu_uuid` line (nounits: MiB) → app; null if not one. */
export function parseComputeAppLine(line: string): ComputeApp | null {
  const cols = line.split(',').map((c) => c.trim());
  if (cols.length !== COMPUTE_APPS_FIELDS.length) return null;
  const pid = parseInteger(cols[0]);
  const gpuUuid = parseString(cols[2]);
  if (pid === null || pid <= 0 || !gpuUuid) return null;
  return { pid, gpuUuid, usedMemoryBytes: parseBytes(cols[1]) };
}

/** The field nvidia-smi refused, from 'Field "x" is not a valid field to query.' */
export function invalidFieldIn(output: string): string | undefined {
  return /Field "([^"]+)" is not a valid field to query/i.exec(output)?.[1];
}

export interface GpuSamplerOptions {
  nvidiaSmiPath: string;
  intervalMs: number;
  /** Timeout of one-shot queries (refreshProcesses). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  clock?: Clock;
  /** Epoch ms for `sampledAt`. */
  wallNow?: () => number;
  /** Restart delay of a dead loop, doubling per failure (default max(1 s, interval) up to 30 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** Kill and restart a GPU loop silent for this long (default max(10 s, 5 intervals)). */
  stallMs?: number;
  /** Called with every new sample (e.g. to push to /metrics); must not throw. */
  onSample?: (sample: GpuSampleCore) => void;
}

export class GpuSampler {
  private readonly clock: Clock;
  private readonly wallNow: () => number;
  private readonly gpuChild: SupervisedChild;
  private readonly appsChild: SupervisedChild;
  private fields: string[] = [...GPU_QUERY_FIELDS];
  private readonly samples = new Map<string, GpuSampleCore>();
  private lastSampleAt = 0; // monotonic
  private apps: ComputeApp[] = [];
  private appsKnownAt: number | undefined; // monotonic; undefined = never known
  private streamApps: ComputeApp[] = [];
  private streamLastLineAt = -Infinity;
  private cancelAppsTick: (() => void) | undefined;
  private started = false;
  private closed = false;
  private readonly refreshes = new Set<Promise<unknown>>();
  /** GPU sample lines parsed since start. */
  sampleCount = 0;

  constructor(private readonly opts: GpuSamplerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.wallNow = opts.wallNow ?? Date.now;
    const interval = String(Math.max(1, Math.round(opts.intervalMs)));
    // A loop that wrote nothing for this long is hung (nvidia-smi can hang in the driver).
    const stallMs = opts.stallMs ?? Math.max(10_000, opts.intervalMs * 5);
    const common = {
      path: opts.nvidiaSmiPath,
      logger: opts.logger,
      clock: this.clock,
      ...(opts.env ? { env: opts.env } : {}),
      // Never restart faster than the interval: an nvidia-smi that ignores -lms and exits after
      // one report then degrades to polling at about the interval, not to a spawn loop.
      backoff: opts.backoff ?? { initialMs: Math.max(1000, opts.intervalMs), maxMs: Math.max(30_000, opts.intervalMs) },
    };
    this.gpuChild = new SupervisedChild({
      ...common,
      name: 'gpu sampler',
      args: () => [`--query-gpu=${this.fields.join(',')}`, '--format=csv,noheader,nounits', '-lms', interval],
      onLine: (line) => this.onGpuLine(line),
      onExit: ({ output }) => this.onGpuExit(output),
      stallMs,
    });
    this.appsChild = new SupervisedChild({
      ...common,
      name: 'compute-apps sampler',
      args: () => [`--query-compute-apps=${COMPUTE_APPS_FIELDS.join(',')}`, '--format=csv,noheader,nounits', '-lms', interval],
      onLine: (line) => this.onAppsLine(line),
      // Silence is normal here (no processes): no stall watchdog.
      stallMs: 0,
    });
  }

  /** Spawns both loops. Returns at once; samples arrive about one interval later. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.gpuChild.start();
    this.appsChild.start();
    // A first exact process list: the loop's silence can only be read as "no processes" once
    // the loop has surely started (nvidia-smi can take a second or more to initialize NVML).
    void this.refreshProcesses();
    this.armAppsTick();
  }

  private onGpuLine(line: string): boolean {
    const s = parseGpuCsvLine(line, this.fields, this.wallNow());
    if (!s) return false;
    this.samples.set(s.uuid, s);
    this.lastSampleAt = this.clock.now();
    this.sampleCount++;
    try {
      this.opts.onSample?.(s);
    } catch {
      // a consumer's bug must not stop sampling
    }
    return true;
  }

  private onGpuExit(output: string): 'now' | 'backoff' | 'stop' {
    const bad = invalidFieldIn(output);
    if (!bad) return 'backoff';
    const i = this.fields.indexOf(bad);
    if (i < 0) return 'backoff';
    const key = GPU_QUERY_FIELDS.find((k) => k === bad || FIELD_ALTERNATIVES[k]?.includes(bad));
    if (key === 'index' || key === 'uuid' || !key) return 'stop';
    const alts = [key, ...(FIELD_ALTERNATIVES[key] ?? [])];
    const next = alts[alts.indexOf(bad) + 1];
    if (next) this.fields[i] = next;
    else this.fields.splice(i, 1);
    this.opts.logger.warn({ refused: bad, replacement: next ?? null }, 'nvidia-smi refused a query field; retrying without it');
    return 'now';
  }

  private onAppsLine(line: string): boolean {
    const app = parseComputeAppLine(line);
    if (!app) return false;
    const now = this.clock.now();
    if (now - this.streamLastLineAt > this.opts.intervalMs / 2) {
      // First line of a new iteration.
      this.streamApps = [];
      this.apps = this.streamApps;
    }
    this.streamApps.push(app);
    this.streamLastLineAt = now;
    this.appsKnownAt = now;
    return true;
  }

  /** Every interval: a compute-apps loop that stayed silent for a whole iteration saw no processes. */
  private armAppsTick(): void {
    this.cancelAppsTick = this.clock.setTimer(this.opts.intervalMs, () => {
      const now = this.clock.now();
      const quiet = this.opts.intervalMs * 1.5 + 250;
      const since = this.appsChild.runningSince;
      const startedSurely = since > 0 && (this.streamLastLineAt >= since || now - since > Math.max(quiet, STARTUP_ALLOWANCE_MS));
      if (startedSurely && now - this.streamLastLineAt > quiet) {
        // Keep a table from refreshProcesses() younger than one iteration; else: no processes.
        const freshRefresh = this.apps !== this.streamApps && this.appsKnownAt !== undefined && now - this.appsKnownAt <= quiet;
        if (!freshRefresh) {
          this.streamApps = [];
          this.apps = this.streamApps;
          this.appsKnownAt = now;
        }
      }
      this.armAppsTick();
    });
  }

  /** One exact, current compute-apps query (execFile with timeout). Never rejects. */
  refreshProcesses(): Promise<{ ok: true; apps: ComputeApp[] } | { ok: false; reason: string }> {
    const p = this.doRefreshProcesses();
    this.refreshes.add(p);
    void p.finally(() => this.refreshes.delete(p));
    return p;
  }

  private async doRefreshProcesses(): Promise<{ ok: true; apps: ComputeApp[] } | { ok: false; reason: string }> {
    if (this.closed) return { ok: false, reason: 'sampler closed' };
    const res = await runNvidiaSmi(
      this.opts.nvidiaSmiPath,
      [`--query-compute-apps=${COMPUTE_APPS_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
      { timeoutMs: this.opts.timeoutMs ?? 10_000, ...(this.opts.env ? { env: this.opts.env } : {}) },
    );
    if (!res.ok) return { ok: false, reason: res.reason };
    if (this.closed) return { ok: false, reason: 'sampler closed' };
    const apps = res.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map(parseComputeAppLine)
      .filter((a): a is ComputeApp => a !== null);
    this.apps = apps;
    this.appsKnownAt = this.clock.now();
    return { ok: true, apps };
  }

  /** The latest sample of every GPU seen, by index, each with its processes. */
  latest(): GpuSample[] {
    const byGpu = new Map<string, GpuProcess[]>();
    for (const a of this.apps) {
      const list = byGpu.get(a.gpuUuid) ?? [];
      list.push({ pid: a.pid, usedMemoryBytes: a.usedMemoryBytes });
      byGpu.set(a.gpuUuid, list);
    }
    return [...this.samples.values()]
      .sort((a, b) => a.index - b.index)
      .map((s) => ({ ...s, processes: byGpu.get(s.uuid) ?? [] }));
  }

  /** Known compute processes (empty also when unknown: see `processesKnown`). */
  processes(): readonly ComputeApp[] {
    return this.apps;
  }

  /** Whether the process list is current (confirmed within the last few intervals). */
  get processesKnown(): boolean {
    return this.appsKnownAt !== undefined && this.clock.now() - this.appsKnownAt <= this.opts.intervalMs * 3 + 2000;
  }

  /**
   * GPU memory held by `pid` over all GPUs, in bytes: 0 when it holds none, undefined when
   * nvidia-smi's process list is not known (yet) or does not give the amount.
   */
  processMemoryBytes(pid: number): number | undefined {
    if (!this.processesKnown) return undefined;
    let total = 0;
    for (const a of this.apps) {
      if (a.pid !== pid) continue;
      if (a.usedMemoryBytes === null) return undefined;
      total += a.usedMemoryBytes;
    }
    return total;
  }

  /** Why there are no (fresh) samples; undefined while samples flow. */
  reason(): string | undefined {
    const now = this.clock.now();
    if (this.sampleCount === 0) return this.gpuChild.lastError ?? 'waiting for the first nvidia-smi sample';
    const age = now - this.lastSampleAt;
    if (age > this.opts.intervalMs * 3 + 1000) {
      return `no GPU sample for ${Math.round(age)} ms${this.gpuChild.lastError ? ` (${this.gpuChild.lastError})` : ''}`;
    }
    return undefined;
  }

  /** PIDs of the running nvidia-smi loops (for cost measurement and tests). */
  childPids(): { gpu?: number; apps?: number } {
    const out: { gpu?: number; apps?: number } = {};
    if (this.gpuChild.pid !== undefined) out.gpu = this.gpuChild.pid;
    if (this.appsChild.pid !== undefined) out.apps = this.appsChild.pid;
    return out;
  }

  /** How many times each loop was spawned (1 = never restarted). */
  spawnCounts(): { gpu: number; apps: number } {
    return { gpu: this.gpuChild.spawns, apps: this.appsChild.spawns };
  }

  /** The query fields in use (after any fallback). */
  queryFields(): readonly string[] {
    return this.fields;
  }

  /** Stops both loops and waits for them and for any one-shot query in flight (bounded by its timeout). */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelAppsTick?.();
    this.cancelAppsTick = undefined;
    await Promise.all([this.gpuChild.close(), this.appsChild.close(), ...this.refreshes]);
  }
}
