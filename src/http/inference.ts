/**
 * The HTTP side of an inference: the signal of the client's connection. The inference
 * itself (preprocess → validate → batcher → postprocess) is transport-free and lives in
 * inference/infer.ts; its names are re-exported here for the routes that import them.
 */
import type { ServerResponse } from 'node:http';
import { CancelSource, type CancelSignal } from '../util/cancel.js';
import { onClose } from './response-close.js';

export { inferModel, PIPELINE_INPUT, runInference } from '../inference/infer.js';

/**
 * A signal that fires when the client closes the connection before its response is written.
 * (fastify's `request.signal` listens to the request stream's 'close', which has already
 * fired once the body is read, so it never aborts for a disconnect after that.)
 */
export function clientGone(res: ServerResponse): CancelSignal {
  const source = new CancelSource();
  onClose(res, () => {
    if (!res.writableFinished) source.cancel();
  });
  return source;
}
