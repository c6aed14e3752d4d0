import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { AgentError, isAgentError } from '../../errors.js';
import type { ServedModel } from '../../sessions/served-model.js';
import type { HttpContext } from '../context.js';
import { pipelineMetadata } from '../inference.js';
import { tritonConfigJson } from '../../repository/effective-config.js';

interface ModelParams {
  model: string;
  version?: string;
}

/** Both forms of every per-model path: /v2/models/{m}/x and /v2/models/{m}/versions/{v}/x. */
export function modelPaths(suffix: string): string[] {
  return [`/v2/models/:model${suffix}`, `/v2/models/:model/versions/:version${suffix}`];
}

function metadata(ctx: HttpContext, served: ServedModel) {
  const { spec } = served;
  const versions = (ctx.models.status(spec.name)?.versions ?? []).filter((v) => v.state === 'READY').map((v) => String(v.version));
  return {
    name: spec.name,
    versions,
    platform: 'onnxruntime_onnx',
    // What clients send and receive: image inputs and postprocessed outputs are BYTES.
    inputs: spec.clientInputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    outputs: spec.clientOutputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    // Not in the protocol; clients ignore unknown fields. Says where the model really runs.
    execution_provider: served.provider,
    ...(served.fallbacks.length ? { provider_fallbacks: served.fallbacks } : {}),
    ...(served.warnings.length ? { warnings: served.warnings } : {}),
    ...(served.notes.length ? { notes: served.notes } : {}),
  };
}

export const modelRoutes = (ctx: HttpContext): FastifyPluginAsync => async (app) => {
  for (const path of modelPaths('')) {
    app.get<{ Params: ModelParams }>(path, async (req) => {
      const pipe = ctx.models.pipeline(req.params.model);
      if (pipe) return pipelineMetadata(pipe);
      return metadata(ctx, ctx.models.resolve(req.params.model, req.params.version));
    });
  }

  // 200 when ready; 400 with the reason when the model exists but is not ready (Triton's
  // convention: 4xx = false); 404 when there is no such model or version.
  for (const path of modelPaths('/ready')) {
    app.get<{ Params: ModelParams }>(path, async (req, reply: FastifyReply) => {
      const { model, version } = req.params;
      if (ctx.models.pipeline(model)) return { name: model, ready: true };
      try {
        ctx.models.resolve(model, version);
        return { name: model, ready: true };
      } catch (err) {
        if (isAgentError(err) && err.code === 'UNAVAILABLE') {
          return reply.code(400).send({ name: model, ready: false, error: err.message });
        }
        throw err;
      }
    });
  }

  for (const path of modelPaths('/config')) {
    app.get<{ Params: ModelParams }>(path, async (req) => {
      const pipe = ctx.models.pipeline(req.params.model);
      if (pipe) return { name: pipe.name, platform: 'ocr_pipeline', ocr: pipe.config };
      const { config, served } = ctx.models.config(req.params.model, req.params.version);
      return tritonConfigJson(config, { provider: served?.provider });
    });
  }

  app.get('/v2/models/stats', async () => ({
    model_stats: ctx.models.ready().map((m) => m.stats.toTriton(m.spec.name, m.spec.version)),
  }));
  for (const path of modelPaths('/stats')) {
    app.get<{ Params: ModelParams }>(path, async (req) => {
      const { model, version } = req.params;
      const pipe = ctx.models.pipeline(model);
      if (pipe) return { model_stats: [{ name: pipe.name, version: '1', pipeline_stats: pipe.stats }] };
      const served = ctx.models.ready().filter((m) => m.spec.name === model && (version === undefined || String(m.spec.version) === version));
      if (served.length === 0) ctx.models.resolve(model, version); // throws the precise reason
      if (served.length === 0) throw new AgentError('NOT_FOUND', `no statistics for model '${model}'`);
      return {
        model_stats: served.map((m) => {
          const status = ctx.models.status(m.spec.name);
          return {
            ...m.stats.toTriton(m.spec.name, m.spec.version),
            // Agent additions (not in Triton's shape): where it runs, how it loaded, what it costs.
            execution_provider: m.provider,
            load_ms: Math.round(m.loadMs),
            memory: { device: m.memory.device, bytes: m.memory.bytes, measured_bytes: m.memory.measuredBytes ?? null, file_bytes: m.memory.fileBytes },
            cold_starts: status?.coldStarts ?? 0,
            evictions: status?.evictions ?? 0,
            queue_depth: m.queued,
            executing: m.executing,
            ...(m.sequences ? { sequence_stats: m.sequences.snapshot() } : {}),
          };
        }),
      };
    });
  }
};
