/**
 * Prometheus metrics (prom-client), with Triton's names where Triton has one, so existing
 * dashboards work. Model counters are read from each model's statistics when scraped (no
 * work on the request path); the batch-size histogram is observed where a batch completes.
 * A reload continues the statistics of the version it replaces, so every counter of a series
 * only resets when the series goes away (unload: `forget`).
 * Every instrument is declared here.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import * as ort from 'onnxruntime-node';
import type { ModelManager } from '../sessions/model-manager.js';
import { AGENT_VERSION } from '../version.js';
import { registerMemoryMetrics } from './memory.js';
import { registerRoutingMetrics, type RoutingMetrics } from './routing.js';

/** What the metrics need from the GPU/host telemetry (see telemetry/). */
export interface MetricsTelemetry {
  gpuSamples(): readonly {
    uuid: string;
    utilizationGpu?: number | undefined;
    memoryTotalBytes?: number | undefined;
    memoryUsedBytes?: number | undefined;
    powerDrawWatts?: number | undefined;
    powerLimitWatts?: number | undefined;
    temperatureC?: number | undefined;
    /** Uncorrected / corrected ECC errors since the driver loaded (nvidia-smi's volatile counts). */
    eccUncorrectedVolatile?: number | undefined;
    eccCorrectedVolatile?: number | undefined;
  }[];
  host(): { cpuUtilization?: number | undefined; memoryTotalBytes?: number | undefined; memoryUsedBytes?: number | undefined } | undefined;
}

export interface MetricsSources {
  readonly models: ModelManager;
  telemetry?: MetricsTelemetry | undefined;
  /** 1 when the coordinator link is connected and registered, 0 otherwise; undefined = no coordinator. */
  coordinatorConnected?: (() => number | undefined) | undefined;
  /** The node's state (ready, cordoned, draining), for gpu_agent_node_state (routing.ts). */
  nodeState?: (() => string) | undefined;
}

const MODEL = ['model', 'version'] as const;
const GPU = ['gpu_uuid'] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly batchSize: Histogram<'model' | 'version'>;
  /** Router, alerting and error-reply metrics (routing.ts). */
  readonly routing: RoutingMetrics;

  constructor(sources: MetricsSources) {
    const r = this.registry;
    this.routing = registerRoutingMetrics(r, { models: sources.models, nodeState: sources.nodeState });
    const models = () => sources.models.ready();
    const counterFrom = (name: string, help: string, value: (m: ReturnType<typeof models>[number]) => number) =>
      new Counter({
        name, help, labelNames: MODEL, registers: [r],
        collect() {
          this.reset();
          for (const m of models()) this.inc({ model: m.spec.name, version: String(m.spec.version) }, value(m));
        },
      });
    counterFrom('nv_inference_request_success', 'Number of successful inference requests, all batch sizes', (m) => m.stats.success.count);
    new Counter({
      name: 'nv_inference_request_failure', help: 'Number of failed inference requests, all batch sizes', labelNames: [...MODEL, 'reason'], registers: [r],
      collect() {
        this.reset();
        for (const m of models()) {
          for (const [reason, n] of Object.entries(m.stats.failures)) this.inc({ model: m.spec.name, version: String(m.spec.version), reason }, n);
        }
      },
    });
    counterFrom('nv_inference_count', 'Number of inferences performed (rows; a batch of n counts n)', (m) => m.stats.inferenceCount);
    counterFrom('nv_inference_exec_count', 'Number of model executions (batches) performed', (m) => m.stats.executionCount);
    const us = (d: { ns: number }) => Math.round(d.ns / 1000);
    counterFrom('nv_inference_request_duration_us', 'Cumulative inference request duration in microseconds', (m) => us(m.stats.success) + us(m.stats.fail));
    counterFrom('nv_inference_queue_duration_us', 'Cumulative inference queuing duration in microseconds', (m) => us(m.stats.queue));
    counterFrom('nv_inference_compute_input_duration_us', 'Cumulative compute input duration in microseconds', (m) => us(m.stats.computeInput));
    counterFrom('nv_inference_compute_infer_duration_us', 'Cumulative compute inference duration in microseconds', (m) => us(m.stats.computeInfer));
    counterFrom('nv_inference_compute_output_duration_us', 'Cumulative inference compute output duration in microseconds', (m) => us(m.stats.computeOutput));
    // The agent's own names follow Prometheus' conventions (base units, _total on counters; promtool check metrics).
    counterFrom('gpu_agent_preprocess_duration_seconds_total', 'Cumulative image decoding and preprocessing duration in seconds (image inputs)', (m) => m.stats.preprocess.ns / 1e9);
    counterFrom('gpu_agent_preprocess_requests_total', 'Requests whose images were decoded and preprocessed', (m) => m.stats.preprocess.count);
    const gaugeFrom = (name: string, help: string, value: (m: ReturnType<typeof models>[number]) => number, extra: string[] = []) =>
      new Gauge({
        name, help, labelNames: [...MODEL, ...extra], registers: [r],
        collect() {
          this.reset();
          for (const m of models()) this.set({ model: m.spec.name, version: String(m.spec.version), ...(extra.length ? { device: m.memory.device } : {}) }, value(m));
        },
      });
    gaugeFrom('nv_inference_pending_request_count', 'Instantaneous number of pending requests awaiting execution', (m) => m.queued);
    gaugeFrom('gpu_agent_model_executing_batches', 'Batches running now', (m) => m.executing);
    gaugeFrom('gpu_agent_sequences_live', 'Live sequences of a sequence (stateful) model', (m) => m.sequences?.live ?? 0);
    counterFrom('gpu_agent_sequence_starts_total', 'Sequences started (sequence_start requests admitted)', (m) => m.sequences?.counters.started ?? 0);
    counterFrom('gpu_agent_sequence_ends_total', 'Sequences ended by sequence_end, drain or unload', (m) => m.sequences?.counters.ended ?? 0);
    counterFrom('gpu_agent_sequence_timeouts_total', 'Sequences ended after max_sequence_idle_microseconds without a request', (m) => m.sequences?.counters.expired ?? 0);
    gaugeFrom('gpu_agent_model_load_duration_seconds', 'Load-to-READY time of the loaded model (sessions, warm-up)', (m) => m.loadMs / 1000);
    gaugeFrom('gpu_agent_model_memory_bytes', 'Memory charged to the model against its device budget', (m) => m.memory.bytes, ['device']);
    new Gauge({
      name: 'gpu_agent_model_cold_starts', help: 'Loads triggered by a request (lazy loading), per model', labelNames: ['model'], registers: [r],
      collect() {
        this.reset();
        for (const m of models()) this.set({ model: m.spec.name }, sources.models.status(m.spec.name)?.coldStarts ?? 0);
      },
    });
    new Gauge({
      name: 'gpu_agent_memory_budget_bytes', help: 'Memory budget per device', labelNames: ['device'], registers: [r],
      collect() {
        this.reset();
        for (const d of sources.models.memoryReport()) if (Number.isFinite(d.budgetBytes)) this.set({ device: d.device }, d.budgetBytes);
      },
    });
    this.batchSize = new Histogram({
      name: 'gpu_agent_batch_size', help: 'Rows per model execution (dynamic batch size)', labelNames: MODEL, registers: [r],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    });
    const gpuGauge = (name: string, help: string, value: (s: ReturnType<MetricsTelemetry['gpuSamples']>[number]) => number | undefined) =>
      new Gauge({
        name, help, labelNames: GPU, registers: [r],
        collect() {
          this.reset();
          for (const s of sources.telemetry?.gpuSamples() ?? []) {
            const v = value(s);
            if (v !== undefined) this.set({ gpu_uuid: s.uuid }, v);
          }
        },
      });
    gpuGauge('nv_gpu_utilization', 'GPU utilization rate [0.0 - 1.0)', (s) => (s.utilizationGpu === undefined ? undefined : s.utilizationGpu / 100));
    gpuGauge('nv_gpu_memory_total_bytes', 'GPU total memory, in bytes', (s) => s.memoryTotalBytes);
    gpuGauge('nv_gpu_memory_used_bytes', 'GPU used memory, in bytes', (s) => s.memoryUsedBytes);
    gpuGauge('nv_gpu_power_usage', 'GPU power usage in watts', (s) => s.powerDrawWatts);
    gpuGauge('nv_gpu_power_limit', 'GPU power management limit in watts', (s) => s.powerLimitWatts);
    gpuGauge('gpu_agent_gpu_temperature_celsius', 'GPU temperature', (s) => s.temperatureC);
    gpuGauge('gpu_agent_gpu_ecc_uncorrected_errors', 'Uncorrected ECC errors since the driver loaded (volatile; absent without ECC)', (s) => s.eccUncorrectedVolatile);
    gpuGauge('gpu_agent_gpu_ecc_corrected_errors', 'Corrected ECC errors since the driver loaded (volatile; absent without ECC)', (s) => s.eccCorrectedVolatile);
    const hostGauge = (name: string, help: string, value: (h: NonNullable<ReturnType<MetricsTelemetry['host']>>) => number | undefined) =>
      new Gauge({
        name, help, registers: [r],
        collect() {
          const h = sources.telemetry?.host();
          const v = h && value(h);
          if (v !== undefined) this.set(v);
        },
      });
    hostGauge('nv_cpu_utilization', 'CPU utilization rate [0.0 - 1.0]', (h) => (h.cpuUtilization === undefined ? undefined : h.cpuUtilization / 100));
    hostGauge('nv_cpu_memory_total_bytes', 'CPU total memory (RAM), in bytes', (h) => h.memoryTotalBytes);
    hostGauge('nv_cpu_memory_used_bytes', 'CPU used memory (RAM), in bytes', (h) => h.memoryUsedBytes);
    new Gauge({
      name: 'gpu_agent_coordinator_connected', help: '1 when registered with the coordinator, 0 when not (absent without a coordinator)', registers: [r],
      collect() {
        const v = sources.coordinatorConnected?.();
        if (v !== undefined) this.set(v);
      },
    });
    new Gauge({ name: 'gpu_agent_build_info', help: 'Agent build information', labelNames: ['version', 'node', 'onnxruntime'], registers: [r] })
      .set({ version: AGENT_VERSION, node: process.version, onnxruntime: ort.env.versions.common }, 1);
    registerMemoryMetrics(r);
  }

  /**
   * A model version went away (unloaded, evicted, failed): its series go too, so that a later
   * load starts every counter of it at 0 together (the model counters come from its new
   * statistics; the histogram is the only one kept here).
   */
  forget(model: string, version: number): void {
    this.batchSize.remove({ model, version: String(version) });
    this.routing.forget(model, version);
  }

  /** Called where a batch completes. */
  observeBatch(model: string, version: number, rows: number): void {
    this.batchSize.observe({ model, version: String(version) }, rows);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
