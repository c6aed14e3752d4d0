/**
 * Triton's model repository extension over HTTP: the JSON bodies of index, load and unload;
 * the operations themselves are inference/model-control.ts (shared with gRPC).
 */
import type { FastifyPluginAsync } from 'fastify';
import { invalid } from '../../errors.js';
import { checkControlMode, loadModel, loadRefusal, repositoryIndex, unloadModel } from '../../inference/model-control.js';
import { jsonBody } from '../body.js';
import type { HttpContext } from '../context.js';

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

export const repositoryRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  app.post('/v2/repository/index', async (req) => {
    const body = objectBody(jsonBody(req));
    if (body.ready !== undefined && typeof body.ready !== 'boolean') throw invalid("'ready' must be a boolean");
    return repositoryIndex(ctx, body.ready === true);
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (req) => {
    const name = req.params.model;
    checkControlMode(ctx);
    let parameters: Record<string, unknown> | undefined;
    try {
      const params = objectBody(jsonBody(req)).parameters;
      if (params !== undefined && (typeof params !== 'object' || params === null)) throw invalid("'parameters' must be an object");
      parameters = params as Record<string, unknown> | undefined;
    } catch (err) {
      throw loadRefusal(name, err);
    }
    await loadModel(ctx, name, parameters);
    return {};
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (req) => {
    objectBody(jsonBody(req));
    await unloadModel(ctx, req.params.model);
    return {};
  });
};
