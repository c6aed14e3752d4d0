/**
 * POST /v2/models/{m}[/versions/{v}]/infer: decode (JSON or binary), check against the
 * model, queue on its batcher, encode the reply. A signal of the client's connection follows
 * the request into the queue, so a client that hangs up is dropped before it runs.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import { AgentError, invalid } from '../../errors.js';
import { decodeInferRequest, parseHeaderLength } from '../../protocol/decode-request.js';
import { encodeInferResponse } from '../../protocol/encode-response.js';
import type { Parameters } from '../../protocol/tensor.js';
import { decodeRawRequest, prepareRequest } from '../../protocol/validate-request.js';
import { decodedBody } from '../body.js';
import type { HttpContext } from '../context.js';
import { modelPaths } from './models.js';

function intParameter(params: Parameters, key: string): number | undefined {
  const v = params[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`request parameter '${key}' must be a non-negative integer`);
  return v;
}

/**
 * A signal that fires when the client closes the connection before its response is written.
 * (fastify's `request.signal` listens to the request stream's 'close', which has already
 * fired once the body is read, so it never aborts for a disconnect after that.)
 */
function clientGone(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

export const inferRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  for (const path of modelPaths('/infer')) {
    app.post<{ Params: { model: string; version?: string } }>(path, async (req, reply) => {
      if (ctx.node.state === 'draining') {
        throw new AgentError('UNAVAILABLE', `the node is not taking new requests (${ctx.node.reason})`, { retryAfterSeconds: 5 });
      }
      const served = await ctx.models.acquire(req.params.model, req.params.version);
      const headerLength = parseHeaderLength(req.headers['inference-header-content-length']);
      const body = await decodedBody(req, ctx.config.bodyLimit);
      const decoded = headerLength === 0 ? decodeRawRequest(body, served.spec) : decodeInferRequest(body, headerLength);
      const prepared = prepareRequest(decoded, served.spec);
      const result = await served.infer(prepared, {
        signal: clientGone(reply.raw),
        timeoutMicroseconds: intParameter(decoded.parameters, 'timeout'),
        priority: intParameter(decoded.parameters, 'priority'),
      });
      const encoded = encodeInferResponse(
        { model_name: served.spec.name, model_version: String(served.spec.version), ...(decoded.id !== undefined ? { id: decoded.id } : {}) },
        prepared.outputs.map((o) => ({ tensor: result.get(o.name)!, binary: o.binary })),
      );
      if (encoded.headerLength !== undefined) reply.header('Inference-Header-Content-Length', String(encoded.headerLength));
      return reply.type(encoded.contentType).send(encoded.body);
    });
  }
};
