/**
 * The HTTP server: fastify with the Open Inference Protocol routes. `buildServer` never
 * listens, so tests can bind port 0 and the agent decides when. Every error leaves through
 * one handler as `{"error": "..."}` with the status of its code (see errors.ts).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { httpError } from './http-error.js';
import { checkToken } from '../inference/auth.js';
import type { Logger } from '../util/logger.js';
import type { HttpContext } from './context.js';
import { healthRoutes } from './routes/health.js';
import { inferRoutes } from './routes/infer.js';
import { modelRoutes } from './routes/models.js';
import { predictRoutes } from './routes/predict.js';
import { repositoryRoutes } from './routes/repository.js';
import { loggingRoutes } from './routes/logging.js';
import { sharedMemoryRoutes } from './routes/shared-memory.js';
import { installDrainControl } from './shutdown.js';
import { lazyChildLoggerFactory } from './lazy-logger.js';
import { limitConnections, timeoutOptions } from './timeouts.js';

/** Endpoints open without a token: probes must work before anyone has one. */
const PUBLIC_PATHS = new Set(['/v2/health/live', '/v2/health/ready']);

let requestCounter = 0;

/** The token check is shared with gRPC (inference/auth.ts). */
export { tokenMatches } from '../inference/auth.js';

/** The error mapping lives in http-error.ts (the front-end processes import it without the routes). */
export { httpError } from './http-error.js';

export async function buildServer(ctx: HttpContext, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request lines cost throughput; they are logged at debug level by the hook below.
    logController: new LogController({ disableRequestLogging: true }),
    // req.log is made only when a request writes a line (lazy-logger.ts).
    childLoggerFactory: lazyChildLoggerFactory as unknown as FastifyServerOptions['childLoggerFactory'],
    bodyLimit: ctx.config.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => `r${(++requestCounter).toString(36)}`,
    // Draining and closing are ours (shutdown.ts): the agent's own 503, and no connection cut
    // while a request may be on it.
    return503OnClosing: false,
    forceCloseConnections: false,
    ...timeoutOptions(ctx.config),
  });
  limitConnections(app.server, ctx.config.maxConnections, logger);
  const drain = installDrainControl(app, ctx.node);
  ctx.metrics.routing.inFlightFrom(() => drain.inFlight);

  // Raw bytes for every content type, including none (see body.ts).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  if (ctx.config.apiToken) {
    const token = ctx.config.apiToken;
    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0]!;
      if (PUBLIC_PATHS.has(path) || (ctx.config.publicMetrics && path === '/metrics')) return;
      try {
        checkToken(req.headers.authorization, token, 'Authorization');
      } catch (err) {
        reply.header('WWW-Authenticate', 'Bearer');
        throw err;
      }
    });
  }

  if (logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', async (req, reply) => {
      req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
    });
  }

  app.setErrorHandler((err, req, reply) => {
    const e = httpError(err, ctx.config.bodyLimit);
    if (e.status >= 500 && e.code !== 'UNAVAILABLE') req.log.error({ err, code: e.code }, e.message);
    else req.log.debug({ code: e.code, status: e.status }, e.message);
    ctx.metrics.routing.countError(e.status);
    if (e.retryAfterSeconds !== undefined) reply.header('Retry-After', String(e.retryAfterSeconds));
    void reply.code(e.status).type('application/json').send({ error: e.message });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}; see README "HTTP API"` });
  });

  await app.register(healthRoutes(ctx));
  await app.register(modelRoutes(ctx));
  await app.register(inferRoutes(ctx));
  await app.register(repositoryRoutes(ctx));
  await app.register(predictRoutes(ctx));
  await app.register(sharedMemoryRoutes(ctx));
  await app.register(loggingRoutes(ctx, logger));
  return app;
}
