/**
 * Sending an inference answer over HTTP: V2 JSON or binary, with its compute time (the
 * `x-compute-time-us` header and the `compute_time_us` parameter, for cost accounting) and the
 * binary header length. Shared by the inference route and the --http-processes front ends;
 * imports nothing of the inference core, so front ends stay free of onnxruntime.
 */
import type { FastifyReply } from 'fastify';
import { COMPUTE_TIME_HEADER, COMPUTE_TIME_PARAMETER } from '../protocol/compute-time.js';
import { encodeInferResponse } from '../protocol/encode-response.js';

export { COMPUTE_TIME_HEADER } from '../protocol/compute-time.js';

/** What an inference answer needs to go out as V2 JSON or binary (the route's and a front end's). */
export interface EncodableReply {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly id: string | undefined;
  readonly outputs: Parameters<typeof encodeInferResponse>[1];
  /** A model's (not a pipeline's) share of its batch's compute time, ms: reported for cost accounting. */
  readonly computeMs?: number | undefined;
}

/** Encode an answer and send it, with its compute time (header + V2 parameter) and binary header length. */
export function sendInferReply(reply: FastifyReply, answer: EncodableReply): FastifyReply {
  const computeUs = answer.computeMs === undefined ? undefined : Math.round(answer.computeMs * 1000);
  const encoded = encodeInferResponse(
    {
      model_name: answer.modelName, model_version: answer.modelVersion, ...(answer.id !== undefined ? { id: answer.id } : {}),
      ...(computeUs !== undefined ? { parameters: { [COMPUTE_TIME_PARAMETER]: computeUs } } : {}),
    },
    answer.outputs,
  );
  if (computeUs !== undefined) reply.header(COMPUTE_TIME_HEADER, String(computeUs));
  if (encoded.headerLength !== undefined) reply.header('Inference-Header-Content-Length', String(encoded.headerLength));
  return reply.type(encoded.contentType).send(encoded.body);
}

