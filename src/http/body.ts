/**
 * Request bodies. Every route receives the raw bytes (tritonclient sends binary requests with
 * no Content-Type, and load/unload with an empty body), then parses what it expects itself.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { FastifyRequest } from 'fastify';
import { AgentError, invalid } from '../errors.js';

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);

const EMPTY = Buffer.alloc(0);

export function rawBody(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : EMPTY;
}

/** Whether the body has a Content-Encoding to undo (else `rawBody` is what `decodedBody` gives). */
export function isCompressed(req: FastifyRequest): boolean {
  const encoding = req.headers['content-encoding'];
  return !!encoding && encoding !== 'identity';
}

/** The body, decompressed per Content-Encoding (gzip and deflate, as tritonclient can send). */
export async function decodedBody(req: FastifyRequest, limit: number): Promise<Buffer> {
  const body = rawBody(req);
  const encoding = req.headers['content-encoding'];
  if (!encoding || encoding === 'identity') return body;
  const opts = { maxOutputLength: limit };
  try {
    if (encoding === 'gzip') return await gunzip(body, opts);
    if (encoding === 'deflate') return await inflate(body, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new AgentError('PAYLOAD_TOO_LARGE', `the decompressed body is larger than the limit of ${limit} bytes (--body-limit)`);
    }
    throw invalid(`the body is not valid ${encoding} data: ${(err as Error).message}`);
  }
  throw new AgentError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding '${encoding}' is not supported; use gzip, deflate or none`);
}

/** A JSON body, or undefined when the body is empty. */
export function jsonBody(req: FastifyRequest): unknown {
  const body = rawBody(req);
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw invalid(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}
