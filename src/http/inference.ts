/**
 * One inference, shared by the V2 route and the /v1 predict route: (preprocess images) →
 * check against the model → queue on its batcher → (postprocess outputs). A signal of the
 * client's connection follows the request into the queue, so a client that hangs up is
 * dropped before it runs.
 */
import type { ServerResponse } from 'node:http';
import { AgentError, invalid } from '../errors.js';
import { applyPostprocess, type Postprocessed } from '../postprocess/apply.js';
import { hasImageInputs, imageBytes, preprocessImages } from '../preprocess/request.js';
import type { HostTensor, InferRequest, Parameters, ShmPlace } from '../protocol/tensor.js';
import { prepareRequest, type PreparedOutput } from '../protocol/validate-request.js';
import { classifyOutput } from '../protocol/classification-extension.js';
import type { ServedPipeline } from '../pipeline/served-pipeline.js';
import type { ServedModel } from '../sessions/served-model.js';
import type { HttpContext } from './context.js';
import { CancelSource, type CancelSignal } from '../util/cancel.js';
import { sequenceParams } from '../sequences/parameters.js';

export interface InferenceResult {
  readonly outputs: readonly { readonly tensor: HostTensor; readonly binary: boolean; readonly post: Postprocessed | undefined; readonly shm?: ShmPlace | undefined }[];
}

/**
 * A signal that fires when the client closes the connection before its response is written.
 * (fastify's `request.signal` listens to the request stream's 'close', which has already
 * fired once the body is read, so it never aborts for a disconnect after that.)
 */
export function clientGone(res: ServerResponse): CancelSignal {
  const source = new CancelSource();
  res.once('close', () => {
    if (!res.writableFinished) source.cancel();
  });
  return source;
}

function intParameter(params: Parameters, key: string): number | undefined {
  const v = params[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`request parameter '${key}' must be a non-negative integer`);
  return v;
}

/** New inference is refused while the node drains (503, retry in 5 s); other endpoints still answer. */
export function refuseWhileDraining(ctx: HttpContext): void {
  if (ctx.node.state === 'draining') {
    throw new AgentError('UNAVAILABLE', `the node is not taking new requests (${ctx.node.reason})`, { retryAfterSeconds: 5 });
  }
}

export async function runInference(ctx: HttpContext, served: ServedModel, decoded: InferRequest, signal: CancelSignal): Promise<InferenceResult> {
  let request = decoded;
  if (hasImageInputs(served.spec)) {
    const pre = await preprocessImages(decoded, served.spec, ctx.images);
    served.stats.preprocessed(pre.ms);
    request = pre.request;
  }
  const prepared = prepareRequest(request, served.spec);
  const result = await served.infer(prepared, {
    signal,
    timeoutMicroseconds: intParameter(decoded.parameters, 'timeout'),
    priority: intParameter(decoded.parameters, 'priority'),
    sequence: sequenceParams(decoded.parameters),
    queueFullWaitMs: ctx.config.queueFullDelayMs,
  });
  return {
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
