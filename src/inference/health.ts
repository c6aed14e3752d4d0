/**
 * Readiness and metadata, one implementation for HTTP and gRPC.
 * - Node readiness means "takes work" (not cordoned, not draining): a request for a model still
 *   LOADING waits for the load, and a model that fails to load never makes a Kubernetes pod
 *   unready forever (Triton #7014). Strict readiness (--strict-readiness) also waits for models.
 * - Model readiness: ready, not ready with the reason (the model exists), or NOT_FOUND.
 */
import { AgentError, isAgentError } from '../errors.js';
import { ModelStats } from '../sessions/model-stats.js';
import type { ServedModel } from '../sessions/served-model.js';
import { tritonConfigJson } from '../repository/effective-config.js';
import type { ServingContext } from './context.js';
import { pipelineMetadata } from './infer.js';

/** Extensions of the protocol this agent implements, as Triton names them. */
export const EXTENSIONS = ['binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'system_shared_memory', 'statistics', 'schedule_policy', 'parameters', 'logging'];

export const SERVER_NAME = 'gpu-node-agent';

/**
 * Node readiness: "takes work" (not cordoned, not draining). Strict (Triton's, --strict-readiness
 * or asked by one probe): also every model of --load-models/--preload READY.
 */
export function serverReadiness(ctx: ServingContext, strictAsked = false): { ready: boolean; state: string; reason: string } {
  if (ctx.node.state !== 'ready') return { ready: false, state: ctx.node.state, reason: ctx.node.reason };
  if (!(ctx.config.strictReadiness || strictAsked)) return { ready: true, state: 'ready', reason: '' };
  const models = ctx.models.startupReadiness();
  if (models.ready) return { ready: true, state: 'ready', reason: '' };
  return { ready: false, state: 'loading', reason: `models not READY yet: ${models.pending.join('; ')}` };
}

export function serverMetadata(ctx: ServingContext) {
  return { name: SERVER_NAME, version: ctx.agentVersion, extensions: EXTENSIONS };
}

/** `{ready: true}`, or `{ready: false, error}` when the model exists but is not ready; NOT_FOUND is thrown. */
export function modelReadiness(ctx: ServingContext, model: string, version?: string): { ready: boolean; error?: string } {
  if (ctx.models.pipeline(model)) return { ready: true };
  try {
    ctx.models.resolve(model, version || undefined);
    return { ready: true };
  } catch (err) {
    if (isAgentError(err) && err.code === 'UNAVAILABLE') return { ready: false, error: err.message };
    throw err;
  }
}

export interface TensorMetadata {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
}

function servedMetadata(ctx: ServingContext, served: ServedModel) {
  const { spec } = served;
  const versions = (ctx.models.status(spec.name)?.versions ?? []).filter((v) => v.state === 'READY').map((v) => String(v.version));
  return {
    name: spec.name,
    versions,
    platform: 'onnxruntime_onnx',
    // What clients send and receive: image inputs and postprocessed outputs are BYTES.
    inputs: spec.clientInputs.map((t): TensorMetadata => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    outputs: spec.clientOutputs.map((t): TensorMetadata => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    // Not in the protocol (HTTP only; clients ignore unknown fields). Says where the model really runs.
    execution_provider: served.provider,
    ...(served.fallbacks.length ? { provider_fallbacks: served.fallbacks } : {}),
    ...(served.warnings.length ? { warnings: served.warnings } : {}),
    ...(served.notes.length ? { notes: served.notes } : {}),
  };
}

/** Model (or pipeline) metadata in the protocol's form, plus the agent's additions. */
export function modelMetadata(ctx: ServingContext, model: string, version?: string) {
  const pipe = ctx.models.pipeline(model);
  if (pipe) return pipelineMetadata(pipe);
  return servedMetadata(ctx, ctx.models.resolve(model, version || undefined));
}

/** The model's configuration in Triton's JSON form (what GET .../config and gRPC ModelConfig answer). */
export function modelConfig(ctx: ServingContext, model: string, version?: string): Record<string, unknown> {
  const pipe = ctx.models.pipeline(model);
  if (pipe) return { name: pipe.name, platform: 'ocr_pipeline', ocr: pipe.config };
  const { config, served } = ctx.models.config(model, version || undefined);
  return tritonConfigJson(config, { provider: served?.provider }) as Record<string, unknown>;
}

/**
 * Triton's statistics: every ready model (no name), or the versions of one model. `extended`
 * adds the agent's own fields (HTTP only: gRPC's message has no place for them).
 */
export function modelStatistics(ctx: ServingContext, model: string | undefined, version: string | undefined, extended: boolean) {
  if (!model) return { model_stats: ctx.models.ready().map((m) => m.stats.toTriton(m.spec.name, m.spec.version)) };
  version = version || undefined;
  const pipe = ctx.models.pipeline(model);
  if (pipe) return { model_stats: [{ name: pipe.name, version: '1', pipeline_stats: pipe.stats }] };
  const served = ctx.models.ready().filter((m) => m.spec.name === model && (version === undefined || String(m.spec.version) === version));
  // Versions being pulled (DOWNLOADING/VERIFYING) answer with their progress, even when the
  // model has no READY version yet (a first pull): a model on its way is not "not found".
  const pulling = (ctx.pulls?.inProgress(model, version) ?? []).filter((p) => !served.some((m) => String(m.spec.version) === p.version));
  if (served.length === 0 && pulling.length === 0) ctx.models.resolve(model, version); // throws the precise reason
  if (served.length === 0 && pulling.length === 0) throw new AgentError('NOT_FOUND', `no statistics for model '${model}'`);
  // No inference yet: Triton's shape with every counter at zero (gRPC gets exactly that).
  const pulled = pulling.map((p) => ({ ...new ModelStats().toTriton(model, Number(p.version)), ...(extended ? { state: p.state, progress: p.progress } : {}) }));
  return {
    model_stats: [...served.map((m) => {
      const base = m.stats.toTriton(m.spec.name, m.spec.version);
      if (!extended) return base;
      const status = ctx.models.status(m.spec.name);
      return {
        ...base,
        // Agent additions (not in Triton's shape): where it runs, how it loaded, what it costs.
        execution_provider: m.provider,
        load_ms: Math.round(m.loadMs),
        memory: { device: m.memory.device, bytes: m.memory.bytes, measured_bytes: m.memory.measuredBytes ?? null, file_bytes: m.memory.fileBytes },
        cold_starts: status?.coldStarts ?? 0,
        evictions: status?.evictions ?? 0,
        queue_depth: m.queued,
        // Places admission holds for requests whose body is still being read (http/admission.ts).
        queue_held: m.heldPlaces,
        executing: m.executing,
        ...(m.sequences ? { sequence_stats: m.sequences.snapshot() } : {}),
      };
    }), ...pulled],
  };
}
