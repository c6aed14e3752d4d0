/**
 * Host facts (CPU, load, memory, disks, network, OS, uptime), cached and refreshed on a timer.
 *
 * What comes from where, and why (systeminformation 5.33 on Linux, read from its source):
 * - CPU model and OS (distro, release, kernel): `si.cpu()` and `si.osInfo()`, **once** at start.
 *   Both spawn helpers (osInfo runs `execSync('hostname -f')`), so they are not repeated.
 * - Memory: `si.mem()` every refresh (an async read of /proc/meminfo). Not cgroup-aware: in a
 *   container it is the host's memory.
 * - Disks: `si.fsSize()`, every `diskRefreshMs` (default 60 s): it runs `execSync('cat
 *   /proc/mounts')` (a blocking shell spawn, a few ms) before its async `df`, so not every 2 s.
 * - Load: computed here from `os.cpus()` deltas, the same arithmetic as `si.currentLoad()`,
 *   which also runs `execSync('cat /proc/stat | grep cpu')` on every call (a blocking spawn
 *   just for steal/guest time).
 * - Network: `os.networkInterfaces()` (names, addresses, MAC; no I/O). `si.networkInterfaces()`
 *   runs several `execSync`s per interface on Linux.
 * - Uptime, hostname, load averages: `os`.
 * Refreshes never overlap, and every systeminformation call is bounded by a timeout.
 */
import os from 'node:os';
import si from 'systeminformation';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { HostInfo } from './schema.js';

/** The systeminformation calls used (injectable for tests). */
export interface HostSource {
  cpu(): Promise<{ manufacturer: string; brand: string; cores: number; physicalCores: number; speed: number }>;
  osInfo(): Promise<{ platform: string; distro: string; release: string; kernel: string; arch: string; hostname: string }>;
  mem(): Promise<{ total: number; available: number; free: number }>;
  fsSize(): Promise<{ fs: string; type: string; size: number; used: number; available: number; mount: string }[]>;
}

export const systeminformationSource: HostSource = {
  cpu: () => si.cpu(),
  osInfo: () => si.osInfo(),
  mem: () => si.mem(),
  fsSize: () => si.fsSize(),
};

const PSEUDO_FS = new Set(['tmpfs', 'devtmpfs', 'ramfs', 'squashfs', 'efivarfs', 'devfs', 'autofs', 'proc', 'sysfs']);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      timer.unref?.();
    }),
  ]).finally(() => clearTimeout(timer));
}

interface CpuTimes {
  idle: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

export interface HostCollectorOptions {
  intervalMs: number;
  logger: Logger;
  clock?: Clock;
  wallNow?: () => number;
  source?: HostSource;
  /** How often disk sizes are refreshed (default 60 000 ms, and never more often than intervalMs). */
  diskRefreshMs?: number;
  /** Bound on each systeminformation call (default 10 000 ms). */
  timeoutMs?: number;
}

export class HostCollector {
  private readonly clock: Clock;
  private readonly wallNow: () => number;
  private readonly source: HostSource;
  private staticInfo: { cpu: HostInfo['cpu']; os: HostInfo['os']; hostname: string } | undefined;
  private disks: HostInfo['disks'] = [];
  private disksAt = -Infinity;
  private prevCpu: CpuTimes | undefined;
  private current: HostInfo | null = null;
  private cancelTimer: (() => void) | undefined;
  private refreshing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: HostCollectorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.wallNow = opts.wallNow ?? Date.now;
    this.source = opts.source ?? systeminformationSource;
  }

  /** Reads the static facts and a first sample, then refreshes every interval. Never rejects. */
  async start(): Promise<void> {
    this.prevCpu = cpuTimes();
    await this.loadStatic();
    await this.refresh();
    this.schedule();
  }

  private async loadStatic(): Promise<void> {
    const timeout = this.opts.timeoutMs ?? 10_000;
    const [cpu, osi] = await Promise.all([
      withTimeout(this.source.cpu(), timeout, 'si.cpu()').catch((err: Error) => {
        this.opts.logger.warn({ err: err.message }, 'host cpu info unavailable');
        return undefined;
      }),
      withTimeout(this.source.osInfo(), timeout, 'si.osInfo()').catch((err: Error) => {
        this.opts.logger.warn({ err: err.message }, 'host os info unavailable');
        return undefined;
      }),
    ]);
    const cpus = os.cpus();
    const manufacturer = cpu?.manufacturer ?? '';
    const brand = cpu?.brand || cpus[0]?.model?.trim() || 'unknown CPU';
    this.staticInfo = {
      cpu: {
        manufacturer,
        brand,
        model: [manufacturer, brand].filter(Boolean).join(' '),
        cores: cpu?.cores || cpus.length,
        physicalCores: cpu?.physicalCores || cpus.length,
        speedGHz: cpu && Number.isFinite(cpu.speed) && cpu.speed > 0 ? cpu.speed : null,
      },
      os: {
        platform: osi?.platform || os.platform(),
        distro: osi?.distro || '',
        release: osi?.release || os.release(),
        kernel: osi?.kernel || os.release(),
        arch: osi?.arch || os.arch(),
      },
      hostname: osi?.hostname || os.hostname(),
    };
  }

  private schedule(): void {
    if (this.closed) return;
    this.cancelTimer = this.clock.setTimer(this.opts.intervalMs, () => {
      this.cancelTimer = undefined;
      void this.refresh().finally(() => this.schedule());
    });
  }

  /** Refreshes the dynamic facts now (concurrent callers share one refresh). Never rejects. */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh()
      .catch((err: Error) => this.opts.logger.warn({ err: err.message }, 'host telemetry refresh failed'))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    if (!this.staticInfo) return;
    const timeout = this.opts.timeoutMs ?? 10_000;
    const diskEvery = Math.max(this.opts.intervalMs, this.opts.diskRefreshMs ?? 60_000);
    const wantDisks = this.clock.now() - this.disksAt >= diskEvery;
    const [mem, fs] = await Promise.all([
      withTimeout(this.source.mem(), timeout, 'si.mem()').catch(() => undefined),
      wantDisks ? withTimeout(this.source.fsSize(), timeout, 'si.fsSize()').catch(() => undefined) : Promise.resolve(undefined),
    ]);
    if (fs) {
      const seen = new Set<string>();
      this.disks = fs
        .filter((d) => d.size > 0 && !PSEUDO_FS.has(d.type) && !seen.has(d.mount) && seen.add(d.mount))
        .map((d) => ({ fs: d.fs, type: d.type, mount: d.mount, sizeBytes: d.size, usedBytes: d.used, availableBytes: d.available }));
    }
    if (wantDisks) this.disksAt = this.clock.now();

    const now = cpuTimes();
    let loadPct: number | null = null;
    if (this.prevCpu && now.total > this.prevCpu.total) {
      const dt = now.total - this.prevCpu.total;
      const busy = dt - (now.idle - this.prevCpu.idle);
      loadPct = Math.min(100, Math.max(0, (busy / dt) * 100));
    }
    this.prevCpu = now;

    const totalMem = mem?.total || os.totalmem();
    const available = mem ? mem.available : os.freemem();
    const la = os.loadavg();
    this.current = {
      hostname: this.staticInfo.hostname,
      cpu: this.staticInfo.cpu,
      loadPct: loadPct === null ? (this.current?.loadPct ?? null) : Math.round(loadPct * 10) / 10,
      loadAvg: [la[0] ?? 0, la[1] ?? 0, la[2] ?? 0],
      memory: { totalBytes: totalMem, usedBytes: Math.max(0, totalMem - available), availableBytes: available },
      disks: this.disks,
      network: networkInterfaces(),
      os: this.staticInfo.os,
      uptimeS: os.uptime(),
      refreshedAt: this.wallNow(),
    };
  }

  latest(): HostInfo | null {
    return this.current;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.refreshing;
  }
}

export function networkInterfaces(): HostInfo['network'] {
  const out: HostInfo['network'] = [];
  for (const [iface, addrs] of Object.entries(os.networkInterfaces())) {
    if (!addrs) continue;
    out.push({
      iface,
      ip4: addrs.filter((a) => a.family === 'IPv4').map((a) => a.address),
      ip6: addrs.filter((a) => a.family === 'IPv6').map((a) => a.address),
      mac: addrs[0]?.mac ?? '',
      internal: addrs.every((a) => a.internal),
    });
  }
  return out;
}
