/**
 * Per-model metadata, readiness, configuration and statistics over HTTP; the answers are
 * inference/health.ts (shared with gRPC).
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { HttpContext } from '../context.js';
import { modelConfig, modelMetadata, modelReadiness, modelStatistics } from '../../inference/health.js';
import { provenanceOf } from '../../sources/pull-service.js';

interface ModelParams {
  model: string;
  version?: string;
}

/** Both forms of every per-model path: /v2/models/{m}/x and /v2/models/{m}/versions/{v}/x. */
export function modelPaths(suffix: string): string[] {
  return [`/v2/models/:model${suffix}`, `/v2/models/:model/versions/:version${suffix}`];
}

export const modelRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  for (const path of modelPaths('')) {
    app.get<{ Params: ModelParams }>(path, async (req) => {
      const m = modelMetadata(ctx, req.params.model, req.params.version);
      if (!ctx.pulls || ctx.models.pipeline(req.params.model)) return m;
      // A version pulled from a manifest also says where it came from (HTTP only: gRPC's
      // ModelMetadataResponse has no field for it).
      const served = ctx.models.resolve(req.params.model, req.params.version || undefined);
      const record = await ctx.pulls.puller.records.get(served.spec.name, served.spec.version);
      return record ? { ...m, provenance: provenanceOf(record) } : m;
    });
  }

  // 200 when ready; 400 with the reason when the model exists but is not ready (Triton's
  // convention: 4xx = false); 404 when there is no such model or version.
  for (const path of modelPaths('/ready')) {
    app.get<{ Params: ModelParams }>(path, async (req, reply: FastifyReply) => {
      const { model, version } = req.params;
      const r = modelReadiness(ctx, model, version);
      if (r.ready) return { name: model, ready: true };
      return reply.code(400).send({ name: model, ready: false, error: r.error });
    });
  }

  for (const path of modelPaths('/config')) {
    app.get<{ Params: ModelParams }>(path, async (req) => modelConfig(ctx, req.params.model, req.params.version));
  }

  app.get('/v2/models/stats', async () => modelStatistics(ctx, undefined, undefined, true));
  for (const path of modelPaths('/stats')) {
    app.get<{ Params: ModelParams }>(path, async (req) => modelStatistics(ctx, req.params.model, req.params.version, true));
  }
};
