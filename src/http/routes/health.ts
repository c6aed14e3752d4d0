import type { FastifyPluginAsync } from 'fastify';
import type { HttpContext } from '../context.js';
import { serverMetadata, serverReadiness } from '../../inference/health.js';

export { EXTENSIONS } from '../../inference/health.js';

/**
 * Health follows KServe's rule (200 = true, 4xx = false) with small JSON bodies; what ready
 * means is inference/health.ts (shared with gRPC): "takes work", or with --strict-readiness
 * (or `?strict=true` on one probe: a startup probe, the installer's start wait) also every
 * model of --load-models/--preload READY. Per-model readiness is GET /v2/models/{m}/ready.
 */
export const healthRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  app.get('/v2/health/live', async () => ({ live: true }));

  app.get<{ Querystring: { strict?: string } }>('/v2/health/ready', async (req, reply) => {
    const r = serverReadiness(ctx, req.query.strict === 'true' || req.query.strict === '1');
    if (r.ready) return { ready: true };
    return reply.code(400).send({ ready: false, state: r.state, reason: r.reason });
  });

  // Prometheus text format; same auth rule as the API (Triton serves it on a port of its own).
  app.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.contentType()).send(await ctx.metrics.render()));

  app.get('/v2', async () => serverMetadata(ctx));
};
