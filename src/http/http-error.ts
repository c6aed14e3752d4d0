/**
 * The one mapping from anything thrown on the HTTP path to an AgentError (status + message).
 * Its own file so that the HTTP front-end processes (src/frontend/) map errors exactly as
 * buildServer does without importing the routes, the sessions or onnxruntime.
 */
import type { FastifyError } from 'fastify';
import { AgentError, isAgentError } from '../errors.js';

/** Map any error to a status and a message a client can act on. */
export function httpError(err: unknown, bodyLimit: number): AgentError {
  if (isAgentError(err)) return err;
  const fe = err as FastifyError;
  if (fe?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new AgentError('PAYLOAD_TOO_LARGE', `the request body is larger than the limit of ${bodyLimit} bytes (--body-limit)`);
  }
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = fe.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : fe.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : fe.statusCode === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT';
    return new AgentError(code, fe.message);
  }
  return new AgentError('INTERNAL', `internal error: ${fe?.message ?? String(err)}`, { cause: err });
}
