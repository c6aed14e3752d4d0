import type { FastifyPluginAsync } from 'fastify';
import type { HttpContext } from '../context.js';

/** Extensions of the protocol this agent implements, as Triton names them. */
export const EXTENSIONS = ['binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'system_shared_memory', 'statistics', 'schedule_policy', 'parameters', 'logging'];

/**
 * Health follows KServe's rule (200 = true, 4xx = false) with small JSON bodies. Node
 * readiness means "takes work" (not draining): a request for a model still LOADING waits for
 * the load, so traffic may come before every model is up, and a model that fails to load never
 * makes a Kubernetes pod unready forever (Triton #7014). Strict readiness (Triton's: also every
 * model of --load-models/--preload READY) is `--strict-readiness`, or `?strict=true` on one
 * probe (a startup probe, the installer's start wait). Per-model: GET /v2/models/{m}/ready.
 */
export const healthRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  app.get('/v2/health/live', async () => ({ live: true }));

  app.get<{ Querystring: { strict?: string } }>('/v2/health/ready', async (req, reply) => {
    if (ctx.node.state !== 'ready') return reply.code(400).send({ ready: false, state: ctx.node.state, reason: ctx.node.reason });
    const strict = ctx.config.strictReadiness || req.query.strict === 'true' || req.query.strict === '1';
    if (!strict) return { ready: true };
    const models = ctx.models.startupReadiness();
    if (models.ready) return { ready: true };
    return reply.code(400).send({ ready: false, state: 'loading', reason: `models not READY yet: ${models.pending.join('; ')}` });
  });

  // Prometheus text format; same auth rule as the API (Triton serves it on a port of its own).
  app.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.contentType()).send(await ctx.metrics.render()));

  app.get('/v2', async () => ({ name: 'gpu-node-agent', version: ctx.agentVersion, extensions: EXTENSIONS }));
};
