/**
 * POST /v2/models/{m}[/versions/{v}]/infer: admit from the headers (admission.ts), decode
 * (JSON or binary) and encode the reply; the inference itself is inference/infer.ts. A
 * signal of the client's connection follows the request into the queue, so a client that
 * hangs up is dropped before it runs.
 */
import type { FastifyPluginAsync } from 'fastify';
import { sendInferReply } from '../infer-reply.js';
import { invalid } from '../../errors.js';
import { decodeInferRequest, parseHeaderLength } from '../../protocol/decode-request.js';
import { decodeRawRequest } from '../../protocol/validate-request.js';
import { clientGone, inferModel, PIPELINE_INPUT } from '../inference.js';
import { admissionHook, placeOf } from '../admission.js';
import { decodedBody, isCompressed, rawBody } from '../body.js';
import type { InferRequest, ShmReader } from '../../protocol/tensor.js';
import type { ModelSpec } from '../../sessions/model-spec.js';
import type { HttpContext } from '../context.js';
import { modelPaths } from './models.js';

export { COMPUTE_TIME_HEADER } from '../infer-reply.js';

export const inferRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  const onRequest = admissionHook(ctx);
  for (const path of modelPaths('/infer')) {
    app.post<{ Params: { model: string; version?: string } }>(path, { onRequest }, async (req, reply) => {
      // Admission ran from the headers (admission.ts); a request admitted before a drain began
      // is finished (http/shutdown.ts), so draining is not checked again here.
      const headerLength = parseHeaderLength(req.headers['inference-header-content-length']);
      const { model, version } = req.params;
      const decode = (body: Buffer, spec: ModelSpec | undefined, shm: ShmReader): InferRequest => {
        if (!spec) {
          if (headerLength === 0) throw invalid(`pipeline '${model}' needs a JSON header naming its input '${PIPELINE_INPUT}'`);
          return decodeInferRequest(body, headerLength);
        }
        return headerLength === 0 ? decodeRawRequest(body, spec) : decodeInferRequest(body, headerLength, shm);
      };
      // An uncompressed body (nearly all) is decoded synchronously: no promise per request.
      const answer = await inferModel(ctx, { model, version }, isCompressed(req)
        ? async (spec, shm) => decode(await decodedBody(req, ctx.config.bodyLimit), spec, shm)
        : (spec, shm) => decode(rawBody(req), spec, shm), { signal: clientGone(reply.raw), place: placeOf(req) });
      return sendInferReply(reply, answer);
    });
  }
};
