/**
 * Triton's model repository extension: index, load (optionally with a JSON config) and
 * unload. Both block until the model is READY or gone, as Triton's do.
 */
import type { FastifyPluginAsync } from 'fastify';
import { AgentError, invalid, isAgentError, messageOf, TRITON_MESSAGES } from '../../errors.js';
import { stageUpload, uploadedFiles } from '../../repository/upload.js';
import { jsonBody } from '../body.js';
import type { HttpContext } from '../context.js';

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The load parameters: `config` (a JSON string, as Triton sends it, or an object) and Triton's `file:<path>` uploads. */
function loadParameters(body: Record<string, unknown>, maxBytes: number): { config: unknown; configText: string | undefined; files: Map<string, Buffer> } {
  const params = body.parameters;
  if (params === undefined) return { config: undefined, configText: undefined, files: new Map() };
  if (typeof params !== 'object' || params === null) throw invalid("'parameters' must be an object");
  const p = params as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (key !== 'config' && !key.startsWith('file:')) throw invalid(`unknown load parameter '${key}'; accepted: 'config' and 'file:<path>' uploads`);
  }
  const files = uploadedFiles(p, maxBytes);
  const config = p.config;
  if (config === undefined || typeof config === 'object') {
    return { config, configText: config === undefined ? undefined : JSON.stringify(config), files };
  }
  if (typeof config !== 'string') throw invalid("load parameter 'config' must be a JSON string");
  try {
    return { config: JSON.parse(config), configText: config, files };
  } catch (err) {
    throw invalid(`load parameter 'config' is not valid JSON: ${(err as Error).message}`);
  }
}

export const repositoryRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  const checkMode = () => {
    if (ctx.config.modelControlMode !== 'explicit') {
      throw new AgentError('FAILED_PRECONDITION', `model control mode is ${ctx.config.modelControlMode}: models cannot be loaded or unloaded through the API (${ctx.config.modelControlMode === 'poll' ? 'the repository is polled: change its folders instead, or ' : ''}start with --model-control-mode explicit)`);
    }
  };

  app.post('/v2/repository/index', async (req) => {
    const body = objectBody(jsonBody(req));
    if (body.ready !== undefined && typeof body.ready !== 'boolean') throw invalid("'ready' must be a boolean");
    return ctx.models.index(body.ready === true);
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/load', async (req) => {
    checkMode();
    const name = req.params.model;
    let params: ReturnType<typeof loadParameters>;
    try {
      params = loadParameters(objectBody(jsonBody(req)), ctx.config.bodyLimit);
    } catch (err) {
      // Clients (NVIDIA's model-control example) look for "failed to load" in any load error.
      throw new AgentError(isAgentError(err) ? err.code : 'INVALID_ARGUMENT', TRITON_MESSAGES.failedToLoad(name, messageOf(err)));
    }
    if (params.files.size === 0) {
      await ctx.models.load(name, params.config);
      return {};
    }
    // Files uploaded: they and the config become the model's folder (see repository/upload.ts).
    if (params.configText === undefined) {
      throw invalid(TRITON_MESSAGES.failedToLoad(name, "uploading files needs the 'config' load parameter too (the model's JSON config)"));
    }
    const staged = await stageUpload(ctx.repository.root, name, { config: params.configText, files: params.files }).catch((err: unknown) => {
      throw new AgentError(isAgentError(err) ? err.code : 'INTERNAL', TRITON_MESSAGES.failedToLoad(name, messageOf(err)));
    });
    await staged.commit();
    try {
      await ctx.models.load(name);
    } catch (err) {
      await staged.rollback();
      throw err;
    }
    await staged.finish();
    return {};
  });

  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (req) => {
    checkMode();
    objectBody(jsonBody(req));
    await ctx.models.unload(req.params.model);
    return {};
  });
};
