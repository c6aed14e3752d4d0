/**
 * Admission before the body: an inference request that would be refused anyway is refused
 * from its headers (route params + Content-Length), in an `onRequest` hook, before fastify
 * reads, decompresses or decodes its body. Under overload a refusal then costs a routing
 * step and a short reply instead of a full decode (the bench's overload scenario measures it).
 *
 * Refused here, with the same codes and messages as later in the pipeline:
 * - (draining is refused before this, by the drain control's own onRequest hook (shutdown.ts):
 *   a request it accepted is finished, so it is not refused here in a later tick);
 * - the model is unknown: neither loaded, nor in the repository, nor a pipeline (404);
 * - the model's queue is full (max_queue_size) and stays full for --queue-full-delay-ms
 *   (429, Retry-After 1);
 * - Content-Length is above --body-limit (413).
 * Everything else (a model not loaded yet that a lazy load will bring, a version not ready)
 * goes on to the route, which decides as before. The batcher still enforces max_queue_size
 * when the request reaches it.
 *
 * A request for a model with a bounded queue (max_queue_size) is admitted with a place HELD
 * in that queue (batching/batcher.ts QueuePlace), which it takes over when it enqueues after
 * its body is read and decoded; held places count as queued. Without holding, a burst passes
 * admission while the queue still has room, and every request beyond the room is read and
 * decoded only to wait again at the queue or be refused there (measured under the overload
 * scenario: 40,836 such second waits in 12 s). The place goes back if the request ends
 * without reaching the queue (a bad body, a client gone: the response's 'close').
 *
 * A request that finds the queue full waits up to --queue-full-delay-ms (default 50) for a
 * place, handed over in arrival order as batches leave the queue, before it is refused:
 * clients that retry at once, ignoring Retry-After, would otherwise keep the event loop busy
 * refusing them and starve the very batches that drain the queue (the overload scenario: 256
 * closed-loop clients against max_queue_size 8). Waiting costs a timer; its body stays unread.
 *
 * A refused body is left unread. Node discards what the client sends of it and keeps the
 * connection when the body is small (≤ KEEP_ALIVE_BODY_BYTES: reading and dropping it costs
 * less than a new connection); a larger one gets `Connection: close`, so the agent does not
 * read megabytes only to drop them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { QueuePlace } from '../batching/batcher.js';
import { AgentError, TRITON_MESSAGES } from '../errors.js';
import type { ServedModel } from '../sessions/served-model.js';
import type { HttpContext } from './context.js';
import { onClose } from './response-close.js';

/** Bodies up to this size are drained by Node after a refusal, and the connection is kept. */
export const KEEP_ALIVE_BODY_BYTES = 64 * 1024;

interface ModelRoute {
  Params: { model: string; version?: string };
}

function contentLength(req: FastifyRequest): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * Throws the refusal for a request that cannot be served, judged from its headers alone.
 * Returns the served model when its queue is bounded (the caller holds a place in it), else
 * undefined: go on.
 */
export function admitFromHeaders(ctx: HttpContext, model: string, length: number | undefined): ServedModel | undefined {
  // Draining is refused before this, by the drain control's onRequest hook (shutdown.ts).
  if (length !== undefined && length > ctx.config.bodyLimit) {
    throw new AgentError('PAYLOAD_TOO_LARGE', `the request body is larger than the limit of ${ctx.config.bodyLimit} bytes (--body-limit)`);
  }
  if (ctx.models.pipeline(model)) return undefined;
  if (!ctx.models.known(model)) {
    if (!ctx.repository.has(model)) throw new AgentError('NOT_FOUND', TRITON_MESSAGES.unknownModel(model, `unknown model '${model}': it is not in the model repository`));
    return undefined;
  }
  let served;
  try {
    served = ctx.models.resolve(model);
  } catch {
    return undefined; // not ready: the route gives the precise answer (or lazy-loads)
  }
  return served.spec.queuePolicy.max_queue_size > 0 ? served : undefined;
}

/** Places held by admission, per request, until the route passes them on (placeOf). */
const places = new WeakMap<FastifyRequest, QueuePlace>();

/** The queue place admission holds for this request, if any: pass it to inferModel. */
export function placeOf(req: FastifyRequest): QueuePlace | undefined {
  return places.get(req);
}

/** The 429 of a full queue, counted like the batcher's own (failure_reasons.REJECTED). */
export function queueFull(served: ServedModel): AgentError {
  served.stats.requestFailed(0, 'REJECTED');
  return new AgentError('QUEUE_FULL', `the model's queue is full (max_queue_size ${served.spec.queuePolicy.max_queue_size}); retry later`, {
    retryAfterSeconds: 1,
  });
}

/**
 * The `onRequest` hook of the inference routes. Callback style, not async: an admitted request
 * (nearly all) costs no promise; only a full queue waits (for a place, see holdPlace).
 */
export function admissionHook(ctx: HttpContext) {
  return (req: FastifyRequest<ModelRoute>, reply: FastifyReply, done: (err?: Error) => void): void => {
    const length = contentLength(req);
    const refuse = (err: Error): void => {
      // Without a length (chunked) the size is unknown: do not read it either.
      if (length === undefined ? req.headers['transfer-encoding'] !== undefined : length > KEEP_ALIVE_BODY_BYTES) {
        reply.header('Connection', 'close');
      }
      done(err);
    };
    let bounded: ServedModel | undefined;
    try {
      bounded = admitFromHeaders(ctx, req.params.model, length);
    } catch (err) {
      refuse(err as Error);
      return;
    }
    if (!bounded) {
      done();
      return;
    }
    const served = bounded;
    const keep = (place: QueuePlace): void => {
      places.set(req, place);
      // Whatever happens to the request, its place goes back when the response closes (a no-op
      // once the request took it over in the queue; at once if the client is already gone).
      onClose(reply.raw, () => place.release());
    };
    const now = served.placeNow();
    if (now !== 'wait') {
      if (now) keep(now);
      done();
      return;
    }
    served.holdPlace(ctx.config.queueFullDelayMs).then(
      (place) => {
        if (place === 'full') return refuse(queueFull(served));
        if (place) keep(place);
        done();
      },
      (err: unknown) => refuse(err as Error),
    );
  };
}
