/**
 * The primary's half of a front end's request: an inference runs through the same admission,
 * decode and transport-free core as the single-process route (routes/infer.ts); any other
 * route is answered by the primary's own fastify app through `inject`, so every endpoint keeps
 * its exact behaviour (auth, errors, headers) without a second implementation.
 */
import type { FastifyInstance } from 'fastify';
import type { QueuePlace } from '../batching/batcher.js';
import { AgentError, isAgentError } from '../errors.js';
import { admitFromHeaders, queueFull } from '../http/admission.js';
import { httpError } from '../http/http-error.js';
import type { HttpContext } from '../http/context.js';
import { inferModel, PIPELINE_INPUT, type InferReply } from '../inference/infer.js';
import { decodeInferRequest, parseHeaderLength } from '../protocol/decode-request.js';
import { decodeRawRequest } from '../protocol/validate-request.js';
import type { FastifyRequest } from 'fastify';
import { decodedBody } from '../http/body.js';
import type { CancelSignal } from '../util/cancel.js';
import { wireOutputs, type HttpMessage, type InferMessage, type WireError } from './messages.js';

/** An inference from a front end, answered as the route would (minus HTTP, which the front end does). */
export async function serveRemoteInfer(ctx: HttpContext, msg: InferMessage, signal: CancelSignal): Promise<InferReply> {
  // Admission from the headers (the front end checked --body-limit and draining itself).
  // A bounded queue: hold a place as the route's admission does (given back below if unused).
  const bounded = admitFromHeaders(ctx, msg.model, undefined);
  const held = bounded ? await bounded.holdPlace(ctx.config.queueFullDelayMs) : undefined;
  if (held === 'full') throw queueFull(bounded!);
  const place = held && !signal.aborted ? held : (held?.release(), undefined);
  try {
    return await inferHere(ctx, msg, signal, place);
  } finally {
    place?.release(); // a no-op once the request took it over in the queue
  }
}

async function inferHere(ctx: HttpContext, msg: InferMessage, signal: CancelSignal, place: QueuePlace | undefined): Promise<InferReply> {
  const decoded = msg.request;
  const headerLength = decoded ? undefined : parseHeaderLength(msg.headerLength);
  const body = msg.body ?? new Uint8Array(0);
  const answer = await inferModel(ctx, { model: msg.model, version: msg.version }, async (spec, shm) => {
    if (decoded) return decoded;
    // decodedBody reads only `body` and the Content-Encoding header: the route's own code, on the forwarded bytes.
    const forwarded = { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength), headers: { 'content-encoding': msg.encoding } };
    const bytes = await decodedBody(forwarded as unknown as FastifyRequest, ctx.config.bodyLimit);
    if (!spec) {
      if (headerLength === 0) throw new AgentError('INVALID_ARGUMENT', `pipeline '${msg.model}' needs a JSON header naming its input '${PIPELINE_INPUT}'`);
      return decodeInferRequest(bytes, headerLength);
    }
    return headerLength === 0 ? decodeRawRequest(bytes, spec) : decodeInferRequest(bytes, headerLength, shm);
  }, { signal, place });
  return { ...answer, outputs: wireOutputs(answer.outputs) };
}

export function wireError(err: unknown, bodyLimit: number): WireError {
  const e = isAgentError(err) ? err : httpError(err, bodyLimit);
  return { code: e.code, message: e.message, ...(e.retryAfterSeconds !== undefined ? { retryAfterSeconds: e.retryAfterSeconds } : {}) };
}

/** Headers that describe the hop, not the message: never copied across it. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date', 'upgrade']);

export function endToEndHeaders(headers: Record<string, unknown>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_HEADERS.has(k.toLowerCase())) continue;
    out[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}

/** Any non-inference route: the primary's app answers it as if the request had come on its socket. */
export async function serveRemoteHttp(app: FastifyInstance, msg: HttpMessage): Promise<{ status: number; headers: Record<string, string | string[]>; body: Uint8Array }> {
  const res = await app.inject({
    method: msg.method as 'GET',
    url: msg.url,
    headers: endToEndHeaders(msg.headers) as Record<string, string>,
    ...(msg.body && msg.body.byteLength ? { payload: Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength) } : {}),
  });
  return { status: res.statusCode, headers: endToEndHeaders(res.headers), body: res.rawPayload };
}
