/**
 * Memory of the devices models run on, as a dependency: the host's comes from the OS and this
 * process's RSS; the GPU's from nvidia-smi through the telemetry module (per-process GPU
 * memory). Loads are measured as the delta of `processUsedBytes` around session creation and
 * warm-up (loads are serialised so deltas are attributable); when no delta can be measured,
 * the model file size is used as the estimate.
 */
import os from 'node:os';

export type Device = 'gpu' | 'host';

export interface MemoryProbe {
  /** Total memory of the device, or undefined when it cannot be known. */
  totalBytes(device: Device): number | undefined;
  /** Memory this process holds on the device now, or undefined when it cannot be measured. */
  processUsedBytes(device: Device): number | undefined | Promise<number | undefined>;
}

export const hostMemoryProbe: MemoryProbe = {
  totalBytes: (device) => (device === 'host' ? os.totalmem() : undefined),
  processUsedBytes: (device) => (device === 'host' ? process.memoryUsage().rss : undefined),
};

/** Budget of a device: the configured bytes, or 90% of its total memory ('auto'). */
export function budgetFor(device: Device, configured: number | 'auto', probe: MemoryProbe): number {
  if (configured !== 'auto') return configured;
  const total = probe.totalBytes(device);
  return total === undefined ? Number.POSITIVE_INFINITY : Math.floor(total * 0.9);
}

/** "16GiB", "512M", "1.5GB", "1048576" → bytes (binary units: K = 1024). */
export function parseBytes(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(s);
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}
