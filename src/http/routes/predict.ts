/**
 * POST /v1/models/{m}/predict: a convenience for people with curl and an image. The body is
 * the image itself (`Content-Type: image/*` or application/octet-stream) or a multipart upload
 * (`-F image=@page.png`); the answer is the postprocessed JSON: labels for a classifier, text
 * for a recogniser, lines for an OCR pipeline, raw outputs otherwise. /v2 stays pure V2.
 */
import type { FastifyPluginAsync } from 'fastify';
import { AgentError, invalid } from '../../errors.js';
import { jsonDataOf } from '../../protocol/encode-response.js';
import { decodedBody } from '../body.js';
import type { HttpContext } from '../context.js';
import { clientGone, runInference } from '../inference.js';
import { uploadedFile } from '../multipart.js';

function imageFrom(body: Buffer, contentType: string): Buffer {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'multipart/form-data') return uploadedFile(body, contentType);
  if (type.startsWith('image/') || type === 'application/octet-stream' || type === '') return body;
  throw new AgentError('UNSUPPORTED_MEDIA_TYPE', `Content-Type '${type}' is not an image; send the image with Content-Type image/png (or image/jpeg, ...), or as multipart -F image=@file`);
}

export const predictRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  app.post<{ Params: { model: string } }>('/v1/models/:model/predict', async (req, reply) => {
    const image = imageFrom(await decodedBody(req, ctx.config.bodyLimit), req.headers['content-type'] ?? '');
    const name = req.params.model;
    const pipe = await ctx.models.pipelineWhenLoaded(name);
    if (pipe) {
      const lines = await pipe.run(image, 0);
      return { model: name, text: lines.map((l) => l.text).join('\n'), lines };
    }
    const served = await ctx.models.acquire(name);
    const imageInputs = served.spec.inputs.filter((i) => i.preprocess);
    if (imageInputs.length !== 1 || served.spec.inputs.length !== 1) {
      throw invalid(`model '${name}' does not take a single image input (declare one input with "preprocess" in its config); use POST /v2/models/${name}/infer`);
    }
    const input = imageInputs[0]!;
    const result = await runInference(ctx, served, {
      id: undefined,
      parameters: {},
      inputs: [{ name: input.name, datatype: 'BYTES', shape: served.spec.maxBatchSize > 0 ? [1] : [1], data: [''], raw: [image] }],
      outputs: undefined,
      binaryOutputDefault: false,
    }, clientGone(reply.raw));
    const outputs: Record<string, unknown> = {};
    for (const o of result.outputs) {
      if (o.post?.type === 'classification') outputs[o.tensor.name] = { predictions: o.post.rows[0] };
      else if (o.post?.type === 'ctc') outputs[o.tensor.name] = o.post.rows[0];
      else outputs[o.tensor.name] = { datatype: o.tensor.datatype, shape: o.tensor.shape, data: JSON.parse(jsonDataOf(o.tensor.datatype, o.tensor.data)) };
    }
    const only = result.outputs.length === 1 ? outputs[result.outputs[0]!.tensor.name] : undefined;
    return { model: name, version: String(served.spec.version), ...(only && typeof only === 'object' && !('shape' in only) ? only : {}), outputs };
  });
};
