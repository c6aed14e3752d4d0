/** Telemetry: GPU inventory and samples (nvidia-smi), host facts (systeminformation). */
export { Telemetry, DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS, type TelemetryOptions } from './telemetry.js';
export { measureSamplingCost, procCpuMs, type SamplingCost } from './measure-cost.js';
export { queryGpuInventory, parseNvidiaSmiXml, normalizeNvidiaSmiLog } from './gpu-inventory.js';
export { GpuSampler, GPU_QUERY_FIELDS, parseGpuCsvLine, parseComputeAppLine, type ComputeApp, type GpuSampleCore } from './gpu-sampler.js';
export { HostCollector, type HostSource } from './host.js';
export {
  GpuInfoSchema,
  GpuInventorySchema,
  GpuProcessSchema,
  GpuSampleSchema,
  HostInfoSchema,
  TelemetrySnapshotSchema,
  type GpuInfo,
  type GpuInventory,
  type GpuProcess,
  type GpuSample,
  type HostInfo,
  type TelemetrySnapshot,
} from './schema.js';
