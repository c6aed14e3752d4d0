/**
 * Triton's model repository extension: index, load (optionally with a JSON config) and
 * unload. Both block until the model is READY or gone, as Triton's do.
 */
import type { FastifyPluginAsync } from 'fastify';
import { AgentError, invalid } from '../../errors.js';
import { jsonBody } from '../body.js';
import type { HttpContext } from '../context.js';
import { asAgentError, pullParameters } from '../../sources/http-parameters.js';

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The `config` load parameter: a JSON string (Triton) or, for convenience, an object. */
function configParameter(body: Record<string, unknown>): unknown {
  const params = body.parameters;
  if (params === undefined) return undefined;
  if (typeof params !== 'object' || params === null) throw invalid("'parameters' must be an object");
  const p = params as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (key.startsWith('file:')) throw invalid(`load parameter '${key}': uploading model files is not supported; put the model in the repository folder`);
    if (key === 'source' || key === 'version') continue; // pulls: see pullParameters
    if (key !== 'config') throw invalid(`unknown load parameter '${key}'; accepted: 'config', 'source' (a model manifest), 'version' (roll back to a pulled version)`);
  }
  const config = p.config;
  if (config === undefined || typeof config === 'object') return config;
  if (typeof config !== 'string') throw invalid("load parameter 'config' must be a JSON string");
  try {
    return JSON.parse(config);
  } catch (err) {
    throw invalid(`load parameter 'config' is not valid JSON: ${(err as Error).message}`);
  }
}

export const repositoryRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  const checkMode = () => {
    if (ctx.config.modelControlMode === 'none') {
      throw new AgentError('FAILED_PRECONDITION', 'model control mode is none: models cannot be loaded or unloaded through the API (start with --model-control-mode explicit)');
    }
  };

  app.post('/v2/repository/index', async (req) => {
    const body = objectBody(jsonBody(req));
    if (body.ready !== undefined && typeof body.ready !== 'boolean') throw invalid("'ready' must be a boolean");
    const index = await ctx.models.index(body.ready === true);
    return ctx.pulls ? ctx.pulls.decorateIndex(index, body.ready === true) : index;
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (req) => {
    checkMode();
    const body = objectBody(jsonBody(req));
    const pull = pullParameters(req.params.model, body);
    if (pull) {
      if (!ctx.pulls) throw new AgentError('UNIMPLEMENTED', 'this server has no model puller');
      const pulls = ctx.pulls;
      await asAgentError(() => (pull.source ? pulls.pullAndLoad(pull.source, 'api') : pulls.rollback(req.params.model, pull.version, 'api')));
      return {};
    }
    const config = configParameter(body);
    await ctx.models.load(req.params.model, config);
    return {};
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (req) => {
    checkMode();
    objectBody(jsonBody(req));
    await ctx.models.unload(req.params.model);
    return {};
  });
};
