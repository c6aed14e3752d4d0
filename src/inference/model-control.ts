/**
 * Triton's model repository extension, one implementation for HTTP and gRPC: index, load
 * (optionally with a JSON config and `file:<path>` uploads) and unload. Both block until the
 * model is READY or gone, as Triton's do. Transports hand over the load parameters as a plain
 * object: `config` a JSON string (or an object), `file:<path>` the file in base64.
 */
import { AgentError, invalid, isAgentError, messageOf, TRITON_MESSAGES } from '../errors.js';
import { stageUpload, uploadedFiles } from '../repository/upload.js';
import { asAgentError, pullParameters } from '../sources/http-parameters.js';
import type { ServingContext } from './context.js';

/** Loading and unloading through the API needs --model-control-mode explicit. */
export function checkControlMode(ctx: ServingContext): void {
  if (ctx.config.modelControlMode !== 'explicit') {
    throw new AgentError('FAILED_PRECONDITION', `model control mode is ${ctx.config.modelControlMode}: models cannot be loaded or unloaded through the API (${ctx.config.modelControlMode === 'poll' ? 'the repository is polled: change its folders instead, or ' : ''}start with --model-control-mode explicit)`);
  }
}

/** The load parameters: `config` (a JSON string, as Triton sends it, or an object) and Triton's `file:<path>` uploads. */
function loadParameters(params: Record<string, unknown> | undefined, maxBytes: number): { config: unknown; configText: string | undefined; files: Map<string, Buffer> } {
  if (params === undefined) return { config: undefined, configText: undefined, files: new Map() };
  for (const key of Object.keys(params)) {
    if (key === 'source' || key === 'version') continue; // pulls: see sources/http-parameters.ts
    if (key !== 'config' && !key.startsWith('file:')) throw invalid(`unknown load parameter '${key}'; accepted: 'config', 'file:<path>' uploads, 'source' (a model manifest), 'version' (roll back to a pulled version)`);
  }
  const files = uploadedFiles(params, maxBytes);
  const config = params.config;
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

/** The index; pulled versions carry their provenance, versions being pulled their progress. */
export async function repositoryIndex(ctx: ServingContext, readyOnly: boolean) {
  const index = await ctx.models.index(readyOnly);
  return ctx.pulls ? ctx.pulls.decorateIndex(index, readyOnly) : index;
}

/** A refused load request: clients (NVIDIA's model-control example) look for "failed to load" in any load error. */
export function loadRefusal(name: string, err: unknown): AgentError {
  return new AgentError(isAgentError(err) ? err.code : 'INVALID_ARGUMENT', TRITON_MESSAGES.failedToLoad(name, messageOf(err)));
}

/** Load (or reload) a model; every failure's message starts with Triton's "failed to load". */
export async function loadModel(ctx: ServingContext, name: string, parameters: Record<string, unknown> | undefined): Promise<void> {
  checkControlMode(ctx);
  // `source` (pull a manifest's version) or `version` (roll back to a pulled one): sources/.
  const pull = pullParameters(name, { parameters });
  if (pull) {
    if (!ctx.pulls) throw new AgentError('UNIMPLEMENTED', 'this server has no model puller');
    const pulls = ctx.pulls;
    await asAgentError(() => (pull.source ? pulls.pullAndLoad(pull.source, 'api') : pulls.rollback(name, pull.version, 'api')));
    return;
  }
  let params: ReturnType<typeof loadParameters>;
  try {
    params = loadParameters(parameters, ctx.config.bodyLimit);
  } catch (err) {
    throw loadRefusal(name, err);
  }
  if (params.files.size === 0) {
    await ctx.models.load(name, params.config);
    return;
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
}

export async function unloadModel(ctx: ServingContext, name: string): Promise<void> {
  checkControlMode(ctx);
  await ctx.models.unload(name);
}
