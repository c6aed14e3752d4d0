/**
 * Wire shapes of the node's telemetry (zod 4), for the coordinator protocol and /metrics.
 *
 * Conventions: sizes are bytes, power W, temperature °C, clocks MHz, percentages 0..100, times
 * are epoch milliseconds. A value nvidia-smi cannot give ("N/A", "[Not Supported]", a missing
 * element) is `null`, never 0 and never a string: a dashboard must be able to tell "idle" from
 * "unknown".
 */
import { z } from 'zod';

const num = z.number().finite().nullable();
const int = z.number().int().nullable();

/** Static description of one GPU, from `nvidia-smi -q -x` at start. */
export const GpuInfoSchema = z.object({
  /** nvidia-smi's enumeration index (the order of `-q`, the `index` of `--query-gpu`). */
  index: z.number().int().nonnegative(),
  uuid: z.string(),
  name: z.string(),
  /** e.g. "00000000:18:00.0" (the `<gpu id>` attribute / `<pci><pci_bus_id>`). */
  pciBusId: z.string(),
  /** /dev/nvidiaN; not the index. */
  minorNumber: int,
  architecture: z.string().nullable(),
  memoryTotalBytes: num,
  /** The enforced limit (`current_power_limit`, or `power_limit`/`enforced_power_limit` on older drivers). */
  powerLimitW: num,
  powerDefaultLimitW: num,
  /** "Default" | "Exclusive_Process" | "Prohibited" | ... as nvidia-smi writes it. */
  computeMode: z.string().nullable(),
  persistenceMode: z.boolean().nullable(),
  eccEnabled: z.boolean().nullable(),
  eccPendingEnabled: z.boolean().nullable(),
  migEnabled: z.boolean().nullable(),
  migPendingEnabled: z.boolean().nullable(),
  /** Number of MIG devices listed under `<mig_devices>` (0 when MIG is off). */
  migDeviceCount: z.number().int().nonnegative(),
  maxSmClockMHz: num,
  maxMemClockMHz: num,
});
export type GpuInfo = z.infer<typeof GpuInfoSchema>;

export const GpuInventorySchema = z.object({
  gpus: z.array(GpuInfoSchema),
  /** Why `gpus` is empty (or incomplete); absent when all is well. */
  reason: z.string().optional(),
  driverVersion: z.string().optional(),
  cudaVersion: z.string().optional(),
});
export type GpuInventory = z.infer<typeof GpuInventorySchema>;

export const GpuProcessSchema = z.object({
  pid: z.number().int(),
  usedMemoryBytes: num,
});
export type GpuProcess = z.infer<typeof GpuProcessSchema>;

/** One live reading of one GPU (from the long-running `--query-gpu ... -lms` child). */
export const GpuSampleSchema = z.object({
  index: z.number().int().nonnegative(),
  uuid: z.string(),
  utilizationGpuPct: num,
  utilizationMemoryPct: num,
  memoryTotalBytes: num,
  memoryUsedBytes: num,
  memoryFreeBytes: num,
  temperatureC: num,
  powerDrawW: num,
  smClockMHz: num,
  memClockMHz: num,
  /** NVML's clocks event (throttle) reasons bitmask; 0 = not throttled (0x1 alone = idle). */
  throttleReasonsMask: int,
  /** The bits of the mask by name, e.g. ["sw_power_cap"]. */
  throttleReasons: z.array(z.string()),
  eccCorrectedVolatile: int,
  eccUncorrectedVolatile: int,
  /** Compute processes on this GPU (may lag the sample by up to one interval). */
  processes: z.array(GpuProcessSchema),
  /** When this line arrived from nvidia-smi (epoch ms). */
  sampledAt: z.number(),
});
export type GpuSample = z.infer<typeof GpuSampleSchema>;

export const HostInfoSchema = z.object({
  hostname: z.string(),
  cpu: z.object({
    manufacturer: z.string(),
    brand: z.string(),
    /** "manufacturer brand", e.g. "Intel Xeon Platinum 8480+". */
    model: z.string(),
    /** Logical cores. */
    cores: z.number().int().nonnegative(),
    physicalCores: z.number().int().nonnegative(),
    speedGHz: num,
  }),
  /** All-core busy % over the last refresh interval; null until two readings exist. */
  loadPct: num,
  loadAvg: z.tuple([z.number(), z.number(), z.number()]),
  memory: z.object({
    totalBytes: z.number().nonnegative(),
    /** total − available (what applications hold; page cache excluded). */
    usedBytes: z.number().nonnegative(),
    availableBytes: z.number().nonnegative(),
  }),
  disks: z.array(
    z.object({
      fs: z.string(),
      type: z.string(),
      mount: z.string(),
      sizeBytes: z.number().nonnegative(),
      usedBytes: z.number().nonnegative(),
      availableBytes: z.number().nonnegative(),
    }),
  ),
  network: z.array(
    z.object({
      iface: z.string(),
      ip4: z.array(z.string()),
      ip6: z.array(z.string()),
      mac: z.string(),
      internal: z.boolean(),
    }),
  ),
  os: z.object({
    platform: z.string(),
    distro: z.string(),
    release: z.string(),
    kernel: z.string(),
    arch: z.string(),
  }),
  uptimeS: z.number().nonnegative(),
  refreshedAt: z.number(),
});
export type HostInfo = z.infer<typeof HostInfoSchema>;

export const TelemetrySnapshotSchema = z.object({
  /** When this snapshot was assembled (epoch ms). */
  sampledAt: z.number(),
  gpus: z.array(GpuSampleSchema),
  /** Why `gpus` is empty or stale (no nvidia-smi, sampler restarting, ...); absent when fine. */
  gpuReason: z.string().optional(),
  host: HostInfoSchema.nullable(),
});
export type TelemetrySnapshot = z.infer<typeof TelemetrySnapshotSchema>;
