/**
 * The model config in Triton's JSON form, as `GET /v2/models/{m}/config` returns it: every
 * field Triton would print, with its default when the config file left it out (format
 * FORMAT_NONE, optional false, label_filename "", the default version policy, the instance
 * group's resolved kind, optimization defaults, empty maps and lists), plus the fields the
 * agent completed from the model file. The agent's own extensions (preprocess, postprocess,
 * ocr) stay where the config put them.
 */
import type { ModelConfig } from './model-config.js';

export interface ConfigContext {
  /** Where the model runs, when it is loaded: resolves KIND_AUTO to KIND_GPU / KIND_CPU, as Triton does. */
  readonly provider?: 'cuda' | 'cpu' | undefined;
}

type Json = Record<string, unknown>;

export function tritonConfigJson(config: ModelConfig, ctx: ConfigContext = {}): Json {
  const c = config as unknown as Json;
  const tensors = (list: unknown, kind: 'input' | 'output') => ((list as Json[] | undefined) ?? []).map((t) => ({
    name: t.name,
    data_type: t.data_type,
    ...(kind === 'input' ? { format: t.format ?? 'FORMAT_NONE' } : {}),
    dims: t.dims ?? [],
    ...(t.reshape ? { reshape: t.reshape } : {}),
    is_shape_tensor: false,
    ...(kind === 'input' ? { allow_ragged_batch: false, optional: t.optional ?? false } : { label_filename: t.label_filename ?? '' }),
    is_non_linear_format_io: false,
    ...(t.preprocess ? { preprocess: t.preprocess } : {}),
    ...(t.postprocess ? { postprocess: t.postprocess } : {}),
  }));
  const resolvedKind = ctx.provider === 'cuda' ? 'KIND_GPU' : ctx.provider === 'cpu' ? 'KIND_CPU' : undefined;
  const groups = ((c.instance_group as Json[] | undefined) ?? [{ count: 1, kind: 'KIND_AUTO' }]).map((g, i) => ({
    name: g.name ?? `${String(c.name ?? 'model')}${i === 0 ? '' : `_${i}`}`,
    kind: g.kind === 'KIND_AUTO' || g.kind === undefined ? resolvedKind ?? 'KIND_AUTO' : g.kind,
    count: g.count ?? 1,
    gpus: g.gpus ?? [],
    secondary_devices: [],
    profile: [],
    passive: false,
    host_policy: '',
  }));
  const opt = (c.optimization as Json | undefined) ?? {};
  const out: Json = {
    name: c.name ?? '',
    platform: c.platform ?? 'onnxruntime_onnx',
    backend: c.backend ?? 'onnxruntime',
    runtime: '',
    version_policy: c.version_policy ?? { latest: { num_versions: 1 } },
    max_batch_size: c.max_batch_size ?? 0,
    input: tensors(c.input, 'input'),
    output: tensors(c.output, 'output'),
    batch_input: [],
    batch_output: [],
    optimization: {
      ...opt,
      priority: 'PRIORITY_DEFAULT',
      input_pinned_memory: opt.input_pinned_memory ?? { enable: true },
      output_pinned_memory: opt.output_pinned_memory ?? { enable: true },
      gather_kernel_buffer_threshold: opt.gather_kernel_buffer_threshold ?? 0,
      eager_batching: opt.eager_batching ?? false,
    },
    ...(c.dynamic_batching ? { dynamic_batching: { ...(c.dynamic_batching as Json), priority_queue_policy: {} } } : {}),
    ...(c.sequence_batching ? { sequence_batching: c.sequence_batching } : {}),
    instance_group: groups,
    default_model_filename: c.default_model_filename ?? 'model.onnx',
    cc_model_filenames: {},
    metric_tags: {},
    parameters: c.parameters ?? {},
    model_warmup: c.model_warmup ?? [],
  };
  if (c.ocr) out.ocr = c.ocr;
  return out;
}
