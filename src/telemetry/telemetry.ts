/**
 * The node's telemetry: GPU inventory at start, live GPU samples from long-running nvidia-smi
 * loops, host facts from systeminformation, all cached. Reading (`inventory()`, `latest()`,
 * `processMemoryBytes()`) is synchronous and free; nothing in the public API throws or
 * rejects. Without an NVIDIA GPU or nvidia-smi the GPU list is empty and `reason` says why;
 * host telemetry works regardless.
 *
 *   const t = new Telemetry({ nvidiaSmiPath: 'nvidia-smi', intervalMs: 2000, logger });
 *   await t.start();          // runs `nvidia-smi -q -x` (bounded by timeoutMs), starts the loops
 *   t.inventory(); t.latest(); t.processMemoryBytes(process.pid);
 *   await t.close();          // stops the loops; no child process is left
 */
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { queryGpuInventory } from './gpu-inventory.js';
import { GpuSampler, type ComputeApp, type GpuSampleCore } from './gpu-sampler.js';
import { HostCollector, type HostSource } from './host.js';
import type { GpuInventory, TelemetrySnapshot } from './schema.js';

export interface TelemetryOptions {
  /** Path or name (PATH lookup) of nvidia-smi. Default 'nvidia-smi'. */
  nvidiaSmiPath?: string;
  /** Sampling interval of GPU and host telemetry. Default 2000 ms. */
  intervalMs?: number;
  /** Bound on every one-shot nvidia-smi run (`-q -x`, process refresh). Default 10 000 ms. */
  timeoutMs?: number;
  logger: Logger;
  /** Timers and monotonic time (default: the system clock). */
  clock?: Clock;
  /** Environment of the nvidia-smi children (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Set false to skip host telemetry (latest().host is then null). Default true. */
  host?: boolean;
  hostSource?: HostSource;
  /** Restart backoff of the nvidia-smi loops. Default 1 s doubling to 30 s. */
  restartBackoff?: { initialMs: number; maxMs: number };
  /** Called with every new GPU sample (e.g. to update /metrics gauges); must not throw. */
  onGpuSample?: (sample: GpuSampleCore) => void;
}

export const DEFAULT_INTERVAL_MS = 2000;
export const DEFAULT_TIMEOUT_MS = 10_000;

export class Telemetry {
  readonly nvidiaSmiPath: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private inv: GpuInventory = { gpus: [], reason: 'telemetry not started' };
  private sampler: GpuSampler | undefined;
  private readonly host: HostCollector | undefined;
  private startPromise: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: TelemetryOptions) {
    this.nvidiaSmiPath = opts.nvidiaSmiPath || 'nvidia-smi';
    this.intervalMs = Math.max(100, Math.round(opts.intervalMs ?? DEFAULT_INTERVAL_MS));
    this.timeoutMs = Math.max(100, Math.round(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS));
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    if (opts.host !== false) {
      this.host = new HostCollector({
        intervalMs: this.intervalMs,
        logger: this.logger,
        clock: this.clock,
        timeoutMs: this.timeoutMs,
        ...(opts.hostSource ? { source: opts.hostSource } : {}),
      });
    }
  }

  /**
   * Takes the GPU inventory (one `nvidia-smi -q -x`, at most timeoutMs) and the first host
   * reading, then starts sampling. Resolves when the inventory is known; the first GPU sample
   * arrives about one interval later. Never rejects. Idempotent.
   */
  start(): Promise<void> {
    this.startPromise ??= this.doStart().catch((err: Error) => {
      this.logger.error({ err: err.message }, 'telemetry start failed');
    });
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    const [inv] = await Promise.all([this.takeInventory(), this.host?.start()]);
    if (this.closed) return;
    this.inv = inv;
    if (inv.gpus.length === 0) {
      this.logger.warn({ nvidiaSmiPath: this.nvidiaSmiPath, reason: inv.reason }, 'no NVIDIA GPU telemetry');
      return;
    }
    this.logger.info(
      { gpus: inv.gpus.map((g) => ({ index: g.index, name: g.name, uuid: g.uuid })), driverVersion: inv.driverVersion, cudaVersion: inv.cudaVersion },
      'GPU inventory',
    );
    this.startSampler();
  }

  private takeInventory(): Promise<GpuInventory> {
    return queryGpuInventory({
      nvidiaSmiPath: this.nvidiaSmiPath,
      timeoutMs: this.timeoutMs,
      ...(this.opts.env ? { env: this.opts.env } : {}),
    });
  }

  private startSampler(): void {
    if (this.sampler || this.closed) return;
    this.sampler = new GpuSampler({
      nvidiaSmiPath: this.nvidiaSmiPath,
      intervalMs: this.intervalMs,
      timeoutMs: this.timeoutMs,
      logger: this.logger,
      clock: this.clock,
      ...(this.opts.env ? { env: this.opts.env } : {}),
      ...(this.opts.restartBackoff ? { backoff: this.opts.restartBackoff } : {}),
      ...(this.opts.onGpuSample ? { onSample: this.opts.onGpuSample } : {}),
    });
    this.sampler.start();
  }

  /**
   * Takes the inventory again (e.g. the driver was not loaded at boot) and starts sampling if
   * GPUs appeared. Never rejects.
   */
  async refreshInventory(): Promise<GpuInventory> {
    if (this.closed) return this.inventory();
    const inv = await this.takeInventory();
    if (this.closed) return this.inventory();
    // A failed re-query does not wipe a good inventory: the GPUs did not go away.
    if (inv.gpus.length > 0 || this.inv.gpus.length === 0) this.inv = inv;
    if (this.inv.gpus.length > 0) this.startSampler();
    return this.inventory();
  }

  /** The GPUs found at start (empty, with `reason`, when there are none or nvidia-smi failed). */
  inventory(): GpuInventory {
    return { ...this.inv, gpus: [...this.inv.gpus] };
  }

  /** The latest sample of every GPU and of the host. Never throws. */
  latest(): TelemetrySnapshot {
    const snapshot: TelemetrySnapshot = {
      sampledAt: Date.now(),
      gpus: this.sampler?.latest() ?? [],
      host: this.host?.latest() ?? null,
    };
    const reason = this.sampler ? this.sampler.reason() : this.inv.reason;
    if (reason) snapshot.gpuReason = reason;
    return snapshot;
  }

  /**
   * GPU memory (bytes, all GPUs) held by `pid` according to the latest compute-apps sample
   * (at most about one interval old): 0 when the process holds none, undefined when unknown
   * (no GPU, sampler not up yet, or nvidia-smi does not report the amount).
   * Note: nvidia-smi reports host PIDs; in a container without `--pid=host` the agent's own
   * `process.pid` never matches (the result is then 0).
   */
  processMemoryBytes(pid: number): number | undefined {
    return this.sampler?.processMemoryBytes(pid);
  }

  /**
   * Like processMemoryBytes, but asks nvidia-smi now (one `--query-compute-apps` run, bounded by
   * timeoutMs): use it right before and right after a model load. Never rejects.
   */
  async queryProcessMemoryBytes(pid: number): Promise<number | undefined> {
    if (!this.sampler) return undefined;
    const res = await this.sampler.refreshProcesses();
    if (!res.ok) {
      this.logger.debug({ reason: res.reason }, 'compute-apps query failed');
      return undefined;
    }
    return this.sampler.processMemoryBytes(pid);
  }

  /** The compute processes on the GPUs, as last seen. */
  processes(): readonly ComputeApp[] {
    return this.sampler?.processes() ?? [];
  }

  /** Total framebuffer memory of all GPUs (bytes), or undefined without GPUs. */
  totalGpuMemoryBytes(): number | undefined {
    const known = this.inv.gpus.map((g) => g.memoryTotalBytes).filter((m): m is number => m !== null);
    return known.length === 0 ? undefined : known.reduce((a, b) => a + b, 0);
  }

  /** PIDs of the nvidia-smi loops now running (for cost measurement and tests). */
  childPids(): number[] {
    const p = this.sampler?.childPids() ?? {};
    return [p.gpu, p.apps].filter((x): x is number => x !== undefined);
  }

  /** GPU sample lines received since start, and spawn counts of the loops (for tests/benchmarks). */
  stats(): { gpuSamples: number; spawns: { gpu: number; apps: number } } {
    return { gpuSamples: this.sampler?.sampleCount ?? 0, spawns: this.sampler?.spawnCounts() ?? { gpu: 0, apps: 0 } };
  }

  /** Stops sampling and waits until no nvidia-smi child is left. Never rejects. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    // A start() in flight finishes its inventory first; it then starts nothing (closed).
    await this.startPromise;
    await Promise.all([this.sampler?.close(), this.host?.close()]).catch((err: Error) => {
      this.logger.warn({ err: err.message }, 'telemetry close failed');
    });
  }
}
