/**
 * The coordinator's error answers on a fastify app: every error as `{"error": message}` with
 * its own 4xx/5xx status (500 when it has none, logged), and unknown routes as 404 naming the
 * route plus `notFoundHint`. Shared by the main app (http-app.ts) and the gateway processes.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../util/logger.js';

export function installJsonErrors(app: FastifyInstance, log: Logger, what: string, notFoundHint = ''): void {
  app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status === 500) log.error({ err: err.message }, `${what} HTTP error`);
    return reply.code(status).send({ error: err.message ?? 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}${notFoundHint}` }));
}
