/**
 * POST /v2/models/{m}[/versions/{v}]/infer: admit from the headers (admission.ts), decode (JSON or binary), check against the
 * model, queue on its batcher, encode the reply. A signal of the client's connection follows
 * the request into the queue, so a client that hangs up is dropped before it runs.
 */
import type { FastifyPluginAsync } from 'fastify';
import { invalid } from '../../errors.js';
import { decodeInferRequest, parseHeaderLength } from '../../protocol/decode-request.js';
import { encodeInferResponse } from '../../protocol/encode-response.js';
import { decodeRawRequest } from '../../protocol/validate-request.js';
import { clientGone, PIPELINE_INPUT, runInference, runPipelineV2 } from '../inference.js';
import { admissionHook } from '../admission.js';
import { decodedBody } from '../body.js';
import type { HttpContext } from '../context.js';
import { modelPaths } from './models.js';
import { systemShmFor, writeShmOutputs } from '../../shm/index.js';

export const inferRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  const onRequest = admissionHook(ctx);
  for (const path of modelPaths('/infer')) {
    app.post<{ Params: { model: string; version?: string } }>(path, { onRequest }, async (req, reply) => {
      const headerLength = parseHeaderLength(req.headers['inference-header-content-length']);
      const pipe = await ctx.models.pipelineWhenLoaded(req.params.model);
      if (pipe) {
        if (headerLength === 0) throw invalid(`pipeline '${pipe.name}' needs a JSON header naming its input '${PIPELINE_INPUT}'`);
        const decoded = decodeInferRequest(await decodedBody(req, ctx.config.bodyLimit), headerLength);
        const encoded = encodeInferResponse(
          { model_name: pipe.name, model_version: '1', ...(decoded.id !== undefined ? { id: decoded.id } : {}) },
          (await runPipelineV2(pipe, decoded)).outputs,
        );
        if (encoded.headerLength !== undefined) reply.header('Inference-Header-Content-Length', String(encoded.headerLength));
        return reply.type(encoded.contentType).send(encoded.body);
      }
      const served = await ctx.models.acquire(req.params.model, req.params.version);
      const body = await decodedBody(req, ctx.config.bodyLimit);
      const shm = systemShmFor(ctx);
      const decoded = headerLength === 0 ? decodeRawRequest(body, served.spec) : decodeInferRequest(body, headerLength, shm);
      // Shared memory regions are held from here to the write of the outputs (no unregister meanwhile).
      const regions = decoded.shmRegions ?? [];
      regions.forEach((r) => shm.acquire(r));
      let outputs;
      try {
        const result = await runInference(ctx, served, decoded, clientGone(reply.raw));
        outputs = regions.length ? writeShmOutputs(shm, result.outputs) : result.outputs;
      } finally {
        regions.forEach((r) => shm.release(r));
      }
      const encoded = encodeInferResponse(
        { model_name: served.spec.name, model_version: String(served.spec.version), ...(decoded.id !== undefined ? { id: decoded.id } : {}) },
        outputs,
      );
      if (encoded.headerLength !== undefined) reply.header('Inference-Header-Content-Length', String(encoded.headerLength));
      return reply.type(encoded.contentType).send(encoded.body);
    });
  }
};
