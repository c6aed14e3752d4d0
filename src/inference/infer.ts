/**
 * One inference, whatever the transport: (preprocess images) → check against the model →
 * queue on its batcher → (postprocess outputs) → (write shared memory outputs). The HTTP
 * routes and the gRPC service only decode their wire format into an `InferRequest` and
 * encode the outputs back; everything between lives here and imports no transport.
 *
 * Contract of `inferModel`: it takes the target (model, version), a decoder that turns the
 * transport's message into an `InferRequest` once the model is known (pipelines get
 * `undefined`), a cancel signal (the client went away) and an optional deadline; it returns
 * the response head and the outputs, or throws an `AgentError` whose code both transports
 * map through the one table in errors.ts.
 */
import { sequenceParams } from '../sequences/parameters.js';
import { AgentError, invalid } from '../errors.js';
import { applyPostprocess, type Postprocessed } from '../postprocess/apply.js';
import { hasImageInputs, imageBytes, preprocessImages } from '../preprocess/request.js';
import type { ResponseOutput } from '../protocol/encode-response.js';
import type { HostTensor, InferRequest, Parameters, ShmPlace, ShmReader } from '../protocol/tensor.js';
import { prepareRequest, type PreparedOutput } from '../protocol/validate-request.js';
import { classifyOutput } from '../protocol/classification-extension.js';
import type { ServedPipeline } from '../pipeline/served-pipeline.js';
import type { QueuePlace } from '../batching/batcher.js';
import type { ServedModel } from '../sessions/served-model.js';
import type { ModelSpec } from '../sessions/model-spec.js';
import { systemShmFor, writeShmOutputs } from '../shm/index.js';
import type { CancelSignal } from '../util/cancel.js';
import type { ServingContext } from './context.js';

export interface InferenceResult {
  readonly outputs: readonly { readonly tensor: HostTensor; readonly binary: boolean; readonly post: Postprocessed | undefined; readonly shm?: ShmPlace | undefined }[];
  /** This request's share of its batch's compute time, ms (reported for cost accounting). */
  readonly computeMs?: number;
}

/** What a transport encodes: the response head and each output (already in shared memory where asked). */
export interface InferReply {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly id: string | undefined;
  readonly outputs: readonly ResponseOutput[];
  /** A model's (not a pipeline's) share of its batch's compute time, ms: reported for cost accounting. */
  readonly computeMs?: number | undefined;
}

export interface InferTarget {
  readonly model: string;
  /** undefined or '' = the model's policy picks the version. */
  readonly version?: string | undefined;
}

/**
 * Turns the transport's message into a request once the target is known: `spec` is the
 * model's (undefined for a pipeline), `shm` the shared memory registry of this context.
 */
export type RequestDecoder = (spec: ModelSpec | undefined, shm: ShmReader) => InferRequest | Promise<InferRequest>;

export interface InferCall {
  readonly signal: CancelSignal;
  /** A queue place the transport's admission holds for this request (HTTP: admission.ts). */
  readonly place?: QueuePlace | undefined;
  /** Absolute deadline (epoch ms) of the transport (gRPC's deadline); undefined = none. */
  readonly deadline?: number | undefined;
}

function intParameter(params: Parameters, key: string): number | undefined {
  const v = params[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`request parameter '${key}' must be a non-negative integer`);
  return v;
}

/** New inference is refused while the node drains (HTTP 503 + Retry-After 5, gRPC UNAVAILABLE); other calls still answer. */
export function refuseWhileDraining(ctx: ServingContext): void {
  if (ctx.node.state === 'draining') {
    throw new AgentError('UNAVAILABLE', `the node is not taking new requests (${ctx.node.reason || 'draining'})`, { retryAfterSeconds: 5 });
  }
}

/** The request's `timeout` parameter (µs), tightened to the transport's deadline when that is sooner. */
function timeoutOf(params: Parameters, deadline: number | undefined): number | undefined {
  const given = intParameter(params, 'timeout');
  if (deadline === undefined || !Number.isFinite(deadline)) return given;
  const left = Math.max(1, Math.floor((deadline - Date.now()) * 1000));
  return given === undefined ? left : Math.min(given, left);
}

export async function runInference(ctx: ServingContext, served: ServedModel, decoded: InferRequest, signal: CancelSignal, deadline?: number, place?: QueuePlace): Promise<InferenceResult> {
  let request = decoded;
  if (hasImageInputs(served.spec)) {
    const pre = await preprocessImages(decoded, served.spec, ctx.images);
    served.stats.preprocessed(pre.ms);
    request = pre.request;
  }
  const prepared = prepareRequest(request, served.spec);
  let computeMs = 0;
  const result = await served.infer(prepared, {
    onCompute: (ms) => (computeMs = ms),
    signal,
    timeoutMicroseconds: timeoutOf(decoded.parameters, deadline),
    priority: intParameter(decoded.parameters, 'priority'),
    sequence: sequenceParams(decoded.parameters),
    queueFullWaitMs: ctx.config.queueFullDelayMs,
    place,
  });
  return {
    computeMs,
    outputs: prepared.outputs.map((o: PreparedOutput) => {
      const tensor = result.get(o.name)!;
      const spec = served.spec.outputs.find((s) => s.name === o.name);
      const post = spec?.postprocess ? applyPostprocess(tensor, spec.postprocess, served.dictionaries.get(o.name)) : undefined;
      if (o.classification !== undefined && !post) {
        return { tensor: classifyOutput(tensor, o.classification, served.spec.maxBatchSize > 0, served.dictionaries.get(o.name)), binary: o.binary, post };
      }
      return { tensor: post?.tensor ?? tensor, binary: o.binary, post, shm: o.shm };
    }),
  };
}

/**
 * The whole of one V2 inference for either transport: pipeline or model, lazy load, decode,
 * shared memory regions held from the decode to the write of the outputs, run.
 */
export async function inferModel(ctx: ServingContext, target: InferTarget, decode: RequestDecoder, call: InferCall): Promise<InferReply> {
  const version = target.version === '' ? undefined : target.version;
  const shm = systemShmFor(ctx);
  // Fast path: a model READY now with no load in progress (what the two awaits below find too).
  let served = ctx.models.pipeline(target.model) ? undefined : ctx.models.readyNow(target.model, version);
  if (!served) {
    const pipe = await ctx.models.pipelineWhenLoaded(target.model);
    if (pipe) {
      const decoded = await decode(undefined, shm);
      const result = await runPipelineV2(pipe, decoded);
      return { modelName: pipe.name, modelVersion: '1', id: decoded.id, outputs: result.outputs };
    }
    served = await ctx.models.acquire(target.model, version);
  }
  const pending = decode(served.spec, shm);
  const decoded = pending instanceof Promise ? await pending : pending;
  // Shared memory regions are held from here to the write of the outputs (no unregister meanwhile).
  const regions = decoded.shmRegions ?? [];
  regions.forEach((r) => shm.acquire(r));
  let outputs: readonly ResponseOutput[];
  let computeMs: number | undefined;
  try {
    const result = await runInference(ctx, served, decoded, call.signal, call.deadline, call.place);
    computeMs = result.computeMs;
    outputs = regions.length ? writeShmOutputs(shm, result.outputs) : result.outputs;
  } finally {
    regions.forEach((r) => shm.release(r));
  }
  return { modelName: served.spec.name, modelVersion: String(served.spec.version), id: decoded.id, outputs, computeMs };
}

/** The V2 form of a pipeline: input `image` (BYTES, one encoded image per row) → output `lines` (BYTES, one JSON document per image). */
export const PIPELINE_INPUT = 'image';
export const PIPELINE_OUTPUT = 'lines';

export function pipelineMetadata(pipe: ServedPipeline) {
  return {
    name: pipe.name,
    versions: ['1'],
    platform: 'ocr_pipeline',
    inputs: [{ name: PIPELINE_INPUT, datatype: 'BYTES', shape: [-1] }],
    outputs: [{ name: PIPELINE_OUTPUT, datatype: 'BYTES', shape: [-1] }],
    stages: pipe.stageModels,
  };
}

/** Every image of a V2 request through the pipeline; each row's answer is a JSON string. */
export async function runPipelineV2(pipe: ServedPipeline, req: InferRequest): Promise<InferenceResult> {
  const input = req.inputs.find((t) => t.name === PIPELINE_INPUT);
  if (!input || req.inputs.length !== 1) {
    throw invalid(`pipeline '${pipe.name}' takes one input '${PIPELINE_INPUT}' (BYTES, one encoded image per row)`);
  }
  if (input.datatype !== 'BYTES' || input.shape.length < 1 || input.shape.slice(1).some((d) => d !== 1)) {
    throw invalid(`input '${PIPELINE_INPUT}' must be BYTES of shape [n] or [n,1] (one encoded image per row)`);
  }
  const n = input.shape[0]!;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => pipe.run(imageBytes(input, i), i)));
  const wanted = req.outputs?.map((o) => o.name) ?? [PIPELINE_OUTPUT];
  const unknown = wanted.find((w) => w !== PIPELINE_OUTPUT);
  if (unknown) throw invalid(`pipeline '${pipe.name}' has no output '${unknown}'; its output is '${PIPELINE_OUTPUT}'`);
  const binary = req.outputs?.[0]?.binary ?? req.binaryOutputDefault;
  return {
    outputs: [{ tensor: { name: PIPELINE_OUTPUT, datatype: 'BYTES', shape: [n], data: results.map((lines) => JSON.stringify({ lines })) }, binary, post: undefined }],
  };
}
