/**
 * One inference, shared by the V2 route and the /v1 predict route: (preprocess images) →
 * check against the model → queue on its batcher → (postprocess outputs). A signal of the
 * client's connection follows the request into the queue, so a client that hangs up is
 * dropped before it runs.
 */
import type { ServerResponse } from 'node:http';
import { invalid } from '../errors.js';
import { applyPostprocess, type Postprocessed } from '../postprocess/apply.js';
import { hasImageInputs, preprocessImages } from '../preprocess/request.js';
import type { HostTensor, InferRequest, Parameters } from '../protocol/tensor.js';
import { prepareRequest, type PreparedOutput } from '../protocol/validate-request.js';
import type { ServedModel } from '../sessions/served-model.js';
import type { HttpContext } from './context.js';

export interface InferenceResult {
  readonly outputs: readonly { readonly tensor: HostTensor; readonly binary: boolean; readonly post: Postprocessed | undefined }[];
}

/**
 * A signal that fires when the client closes the connection before its response is written.
 * (fastify's `request.signal` listens to the request stream's 'close', which has already
 * fired once the body is read, so it never aborts for a disconnect after that.)
 */
export function clientGone(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

function intParameter(params: Parameters, key: string): number | undefined {
  const v = params[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`request parameter '${key}' must be a non-negative integer`);
  return v;
}

export async function runInference(ctx: HttpContext, served: ServedModel, decoded: InferRequest, signal: AbortSignal): Promise<InferenceResult> {
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
  });
  return {
    outputs: prepared.outputs.map((o: PreparedOutput) => {
      const tensor = result.get(o.name)!;
      const spec = served.spec.outputs.find((s) => s.name === o.name);
      const post = spec?.postprocess ? applyPostprocess(tensor, spec.postprocess, served.dictionaries.get(o.name)) : undefined;
      return { tensor: post?.tensor ?? tensor, binary: o.binary, post };
    }),
  };
}
