import type { FastifyPluginAsync } from 'fastify';
import type { HttpContext } from '../context.js';

/** Extensions of the protocol this agent implements, as Triton names them. */
export const EXTENSIONS = ['binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'system_shared_memory', 'statistics', 'schedule_policy', 'parameters', 'logging'];

/**
 * Health follows KServe's rule (200 = true, 4xx = false) with small JSON bodies. Node
 * readiness means "takes work" (not draining); it never waits for models to load: a loading
 * model must not make a Kubernetes pod unready (see Triton #7014). Per-model readiness is
 * GET /v2/models/{m}/ready.
 */
export const healthRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  app.get('/v2/health/live', async () => ({ live: true }));

  app.get('/v2/health/ready', async (_req, reply) => {
    if (ctx.node.state === 'ready') return { ready: true };
    return reply.code(400).send({ ready: false, state: ctx.node.state, reason: ctx.node.reason });
  });

  // Prometheus text format; same auth rule as the API (Triton serves it on a port of its own).
  app.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.contentType()).send(await ctx.metrics.render()));

  app.get('/v2', async () => ({ name: 'gpu-node-agent', version: ctx.agentVersion, extensions: EXTENSIONS }));
};
