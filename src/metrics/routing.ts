/**
 * The metrics routers, autoscalers and alert rules need beyond Triton's names (see
 * docs/kubernetes.md):
 *
 * - node totals without labels, `gpu_agent_pending_requests` and `gpu_agent_running_requests`:
 *   llm-d's metrics extractor reads ONE series of the family it is given (the first when the
 *   series carry no timestamps), so a per-model family such as Triton's
 *   `nv_inference_pending_request_count` tells it about one model only, and an empty family (no
 *   model loaded) is an extraction error. Triton's `nv_inference_exec_count` is a counter of
 *   batches, not a running gauge;
 * - per model: requests inside running batches, the queue limit (`max_queue_size`, 0 =
 *   unbounded) and the state of every tracked version (`gpu_agent_model_state`, one series per
 *   version, 1 for its current state), plus an info gauge of what is loaded and where;
 * - the node's state (ready / cordoned / draining) and the memory each device's models use;
 * - `gpu_agent_inference_in_flight`: inference requests accepted (headers parsed) and not
 *   answered yet, in every phase (body, decode, queue, run): what a drain waits for;
 * - `gpu_agent_http_errors_total{code}`: error replies by status, counted where errors leave
 *   the HTTP server (nothing is counted on the success path);
 * - `gpu_agent_request_duration_seconds`: a latency histogram of successful requests per model
 *   (the p99 alert); the one metric observed on the request path (one histogram observe).
 *
 * Every value is read from memory when scraped: no process spawn, file read or NVML call.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ModelManager } from '../sessions/model-manager.js';

export interface RoutingSources {
  readonly models: ModelManager;
  /** The node's state as health checks report it; undefined = not wired (the gauge is absent). */
  nodeState?: (() => string) | undefined;
}

const NODE_STATES = ['ready', 'cordoned', 'draining'] as const;
const MODEL_STATES = ['LOADING', 'READY', 'UNLOADING', 'UNAVAILABLE'] as const;

export interface RoutingMetrics {
  /** Count one error reply with HTTP status `status` (called by the server's error handler). */
  countError(status: number): void;
  /** One successful request of a model took `ms` (queue + compute; the p99 alert reads it). */
  observeRequest(model: string, version: number, ms: number): void;
  /** The version is unloaded: its latency series goes away (as the batch-size histogram's does). */
  forget(model: string, version: number): void;
  /** Where `gpu_agent_inference_in_flight` reads from: the HTTP server's drain control, once it exists. */
  inFlightFrom(read: () => number): void;
}

export function registerRoutingMetrics(r: Registry, sources: RoutingSources): RoutingMetrics {
  const models = () => sources.models.ready();
  let inFlight: (() => number) | undefined;
  new Gauge({
    name: 'gpu_agent_inference_in_flight', help: 'Inference requests accepted (headers read) and not answered yet, in any phase: what a drain waits for', registers: [r],
    collect() {
      this.set(inFlight?.() ?? 0);
    },
  });
  new Gauge({
    name: 'gpu_agent_pending_requests', help: 'Requests queued on this node, all models (waiting, not yet running)', registers: [r],
    collect() {
      let n = 0;
      for (const m of models()) n += m.queued;
      this.set(n);
    },
  });
  new Gauge({
    name: 'gpu_agent_running_requests', help: 'Requests inside the batches running now on this node, all models', registers: [r],
    collect() {
      let n = 0;
      for (const m of models()) n += m.running;
      this.set(n);
    },
  });
  new Gauge({
    name: 'gpu_agent_model_running_requests', help: 'Requests inside the batches running now, per model', labelNames: ['model', 'version'], registers: [r],
    collect() {
      this.reset();
      for (const m of models()) this.set({ model: m.spec.name, version: String(m.spec.version) }, m.running);
    },
  });
  new Gauge({
    name: 'gpu_agent_model_max_queue_size', help: "The model's max_queue_size (0 = unbounded): requests beyond it get 429", labelNames: ['model', 'version'], registers: [r],
    collect() {
      this.reset();
      for (const m of models()) this.set({ model: m.spec.name, version: String(m.spec.version) }, m.spec.queuePolicy.max_queue_size);
    },
  });
  new Gauge({
    name: 'gpu_agent_model_state', help: 'State of each tracked model version: 1 for its current state, 0 for the others', labelNames: ['model', 'version', 'state'], registers: [r],
    collect() {
      this.reset();
      for (const v of sources.models.versionStates()) {
        // A model that failed as a whole has no version: the label is empty (absent to Prometheus).
        for (const s of MODEL_STATES) this.set({ model: v.name, version: v.version === undefined ? '' : String(v.version), state: s }, v.state === s ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'gpu_agent_model_info', help: 'Loaded (READY) models: 1 per model version, with its execution provider and device', labelNames: ['model', 'version', 'provider', 'device'], registers: [r],
    collect() {
      this.reset();
      for (const m of models()) this.set({ model: m.spec.name, version: String(m.spec.version), provider: m.provider, device: m.memory.device }, 1);
    },
  });
  new Gauge({
    name: 'gpu_agent_memory_used_bytes', help: 'Memory charged to the loaded models per device (compare gpu_agent_memory_budget_bytes)', labelNames: ['device'], registers: [r],
    collect() {
      this.reset();
      for (const d of sources.models.memoryReport()) this.set({ device: d.device }, d.usedBytes);
    },
  });
  if (sources.nodeState) {
    const nodeState = sources.nodeState;
    new Gauge({
      name: 'gpu_agent_node_state', help: 'Node state: 1 for the current one of ready, cordoned, draining', labelNames: ['state'], registers: [r],
      collect() {
        const now = nodeState();
        for (const s of NODE_STATES) this.set({ state: s }, now === s ? 1 : 0);
      },
    });
  }
  const errors = new Counter({ name: 'gpu_agent_http_errors_total', help: 'Error replies by HTTP status code (429 = queue full, 503 = unavailable or draining)', labelNames: ['code'], registers: [r] });
  const latency = new Histogram({
    name: 'gpu_agent_request_duration_seconds', help: 'Duration of successful inference requests, queueing included, per model', labelNames: ['model', 'version'], registers: [r],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  return {
    countError(status: number): void {
      errors.inc({ code: String(status) });
    },
    observeRequest(model: string, version: number, ms: number): void {
      latency.observe({ model, version: String(version) }, ms / 1000);
    },
    forget(model: string, version: number): void {
      latency.remove({ model, version: String(version) });
    },
    inFlightFrom(read: () => number): void {
      inFlight = read;
    },
  };
}
