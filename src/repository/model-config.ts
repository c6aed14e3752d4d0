/**
 * The model configuration: Triton's ModelConfig in its JSON form (snake_case, as Triton's
 * `GET /v2/models/{m}/config` returns it). `config.json` is validated by this schema directly;
 * `config.pbtxt` is converted to the same JSON first (see pbtxt-config.ts). The load API
 * accepts the same JSON. Unknown fields are errors (`.strict()`), so a typo never goes unnoticed.
 */
import { z } from 'zod';
import { TRITON_TYPE_NAMES } from '../execution/datatypes.js';
import { issuePath } from '../util/zod-issues.js';
import { OcrConfigSchema } from '../pipeline/ocr.js';
import { PostprocessSchema } from '../postprocess/schema.js';
import { ImagePreprocessSchema } from '../preprocess/schema.js';
import { checkUnsupported } from './unsupported.js';
import { SequenceBatchingSchema } from '../sequences/config-schema.js';

/** Triton's JSON writes int64 fields as strings; accept both. */
const int = (min = 0) =>
  z.union([z.number(), z.string().regex(/^-?\d+$/, 'must be an integer')])
    .transform((v) => Number(v))
    .pipe(z.number().int().min(min));

const dim = z.union([z.number(), z.string().regex(/^-?\d+$/)]).transform(Number)
  .pipe(z.number().int().refine((d) => d === -1 || d >= 1, 'a dimension is -1 (variable) or a positive size'));

export const TensorConfigSchema = z.object({
  name: z.string().min(1),
  data_type: z.enum(TRITON_TYPE_NAMES as [string, ...string[]], {
    message: `data_type must be one of ${TRITON_TYPE_NAMES.join(', ')}`,
  }),
  dims: z.array(dim),
  format: z.enum(['FORMAT_NONE', 'FORMAT_NCHW', 'FORMAT_NHWC']).optional(),
  /** The shape the model itself has (Triton's ModelTensorReshape): clients use `dims`, onnxruntime gets `reshape`. */
  reshape: z.object({ shape: z.array(z.union([z.number(), z.string().regex(/^-?\d+$/)]).transform(Number)
    .pipe(z.number().int().refine((d) => d === -1 || d >= 0, 'a reshape dimension is -1 (variable) or a size ≥ 0'))) }).strict().optional(),
  optional: z.boolean().optional(),
  label_filename: z.string().optional(),
  is_shape_tensor: z.literal(false, { message: 'shape tensors are not supported' }).optional(),
  /** Inputs only: clients send encoded images (BYTES), decoded into this tensor (see preprocess/). */
  preprocess: ImagePreprocessSchema.optional(),
  /** Outputs only: turn the tensor into labels or text (see postprocess/). */
  postprocess: PostprocessSchema.optional(),
}).strict();

export const QueuePolicySchema = z.object({
  timeout_action: z.enum(['REJECT', 'DELAY']).default('REJECT'),
  default_timeout_microseconds: int().default(0),
  allow_timeout_override: z.boolean().default(false),
  max_queue_size: int().default(0),
}).strict();

export const DynamicBatchingSchema = z.object({
  preferred_batch_size: z.array(int(1)).default([]),
  max_queue_delay_microseconds: int().default(0),
  preserve_ordering: z.boolean().default(false),
  priority_levels: int().default(0),
  default_priority_level: int().default(0),
  default_queue_policy: QueuePolicySchema.default(QueuePolicySchema.parse({})),
}).strict();

export const InstanceGroupSchema = z.object({
  name: z.string().optional(),
  count: int(1).default(1),
  kind: z.enum(['KIND_AUTO', 'KIND_GPU', 'KIND_CPU']).default('KIND_AUTO'),
  gpus: z.array(int()).optional(),
}).strict();

export const VersionPolicySchema = z.union([
  z.object({ latest: z.object({ num_versions: int(1).default(1) }).strict() }).strict(),
  z.object({ all: z.object({}).strict() }).strict(),
  z.object({ specific: z.object({ versions: z.array(int(1)).min(1) }).strict() }).strict(),
]);

/**
 * Per-model onnxruntime settings, with the names Triton's onnxruntime backend uses, plus
 * `execution_providers` (comma-separated, e.g. "cuda,cpu"). Values are strings, as in Triton.
 * Triton's CUDA arena options (gpu_mem_limit, arena_extend_strategy, cudnn_conv_algo_search)
 * are absent on purpose: onnxruntime-node 1.29's binding passes only `deviceId` to the CUDA
 * provider, so accepting them would be a promise we cannot keep.
 */
export const MODEL_PARAMETERS = {
  execution_providers: 'comma-separated provider order, e.g. "cuda,cpu" (overrides --providers)',
  intra_op_thread_count: 'threads inside one operator (0 = onnxruntime default)',
  inter_op_thread_count: 'threads across operators (0 = onnxruntime default)',
  execution_mode: '0 = sequential, 1 = parallel',
  enable_mem_arena: '"1"/"0": CPU memory arena',
  enable_mem_pattern: '"1"/"0": memory pattern optimisation',
  cuda_device_id: 'GPU index for this model (overrides --cuda-device-id)',
  warmup: '"1"/"0": run zero-data warm-up at load (default 1)',
  session_thread: '"auto", "worker" or "main": where the session runs (overrides --session-thread)',
  'session.intra_op.allow_spinning': '"1"/"0": idle onnxruntime pool threads spin-wait (overrides --intra-op-spinning)',
  batching_policy: '"work_conserving" or "triton": dynamic batching policy (overrides --batching-policy)',
  constant_inputs: 'sequence models: inputs the agent feeds with a constant, "name:value,…" (e.g. "sr:16000"); clients do not send them',
  state_batch_axis: 'sequence models: the axis of the state tensors where sequences stack, "1" for all or "name:axis,…" (default 0)',
} as const;

const ParametersSchema = z.record(z.string(), z.object({ string_value: z.string() }).strict())
  .superRefine((params, ctx) => {
    for (const key of Object.keys(params)) {
      if (!(key in MODEL_PARAMETERS)) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `unknown parameter '${key}'; known: ${Object.keys(MODEL_PARAMETERS).join(', ')}`,
        });
      }
    }
  });

const WarmupInputSchema = z.object({
  data_type: z.enum(TRITON_TYPE_NAMES as [string, ...string[]], { message: `data_type must be one of ${TRITON_TYPE_NAMES.join(', ')}` }),
  dims: z.array(z.union([z.number(), z.string().regex(/^-?\d+$/)]).transform(Number).pipe(z.number().int().min(0, 'warm-up dims are sizes ≥ 0 (no -1)'))).default([]),
  zero_data: z.boolean().optional(),
  random_data: z.boolean().optional(),
  /** A file in the model's `warmup/` folder: raw row-major bytes (BYTES: 4-byte length + bytes each). */
  input_data_file: z.string().regex(/^[^/\\]+$/, 'a file name in the warmup/ folder, not a path').optional(),
}).strict().refine((i) => [i.zero_data, i.random_data, i.input_data_file].filter((x) => x !== undefined).length <= 1, 'give one of zero_data, random_data, input_data_file');

/** Triton's ModelWarmup: samples run on every instance before the model is READY. */
export const ModelWarmupSchema = z.object({
  name: z.string().min(1, 'a warm-up sample needs a name'),
  batch_size: int().default(1),
  inputs: z.record(z.string(), WarmupInputSchema).default({}),
  count: int().default(0),
}).strict();

const AcceleratorSchema = z.object({
  name: z.string().min(1),
  parameters: z.record(z.string(), z.string()).default({}),
}).strict();

const OptimizationSchema = z.object({
  graph: z.object({ level: z.number().int().min(-1).max(2) }).strict().optional(),
  cuda: z.object({
    graphs: z.boolean().optional(),
    busy_wait_events: z.boolean().optional(),
    graph_spec: z.array(z.unknown()).optional(),
    output_copy_stream: z.boolean().optional(),
  }).strict().optional(),
  execution_accelerators: z.object({
    gpu_execution_accelerator: z.array(AcceleratorSchema).optional(),
    cpu_execution_accelerator: z.array(AcceleratorSchema).optional(),
  }).strict().optional(),
  input_pinned_memory: z.object({ enable: z.boolean().optional() }).strict().optional(),
  output_pinned_memory: z.object({ enable: z.boolean().optional() }).strict().optional(),
  gather_kernel_buffer_threshold: int().optional(),
  eager_batching: z.boolean().optional(),
}).strict();

export const ModelConfigSchema = z.object({
  name: z.string().optional(),
  platform: z.enum(['onnxruntime_onnx', 'ocr_pipeline'], { message: "platform must be 'onnxruntime_onnx' (an ONNX model) or 'ocr_pipeline' (a pipeline of models)" }).optional(),
  backend: z.enum(['onnxruntime'], { message: "backend must be 'onnxruntime'" }).optional(),
  max_batch_size: int().optional(),
  input: z.array(TensorConfigSchema).optional(),
  output: z.array(TensorConfigSchema).optional(),
  dynamic_batching: DynamicBatchingSchema.optional(),
  /** Stateful models (see sequences/): Triton's ModelSequenceBatching. */
  sequence_batching: SequenceBatchingSchema.optional(),
  instance_group: z.array(InstanceGroupSchema).optional(),
  parameters: ParametersSchema.optional(),
  version_policy: VersionPolicySchema.optional(),
  default_model_filename: z.string().regex(/^[^/\\]+$/, 'a file name, not a path').optional(),
  /** With platform 'ocr_pipeline': the pipeline's stages (see pipeline/ocr.ts). */
  ocr: OcrConfigSchema.optional(),
  optimization: OptimizationSchema.optional(),
  model_warmup: z.array(ModelWarmupSchema).optional(),
}).strict().superRefine((cfg, ctx) => {
  const mbs = cfg.max_batch_size;
  if (cfg.dynamic_batching && mbs === 0) {
    ctx.addIssue({
      code: 'custom', path: ['dynamic_batching'],
      message: 'dynamic_batching needs max_batch_size ≥ 1; set max_batch_size or remove dynamic_batching',
    });
  }
  if (cfg.dynamic_batching && cfg.sequence_batching) {
    ctx.addIssue({ code: 'custom', path: ['sequence_batching'], message: 'give one of dynamic_batching and sequence_batching (a sequence model batches with sequence_batching.oldest or .direct)' });
  }
  const db = cfg.dynamic_batching;
  if (db && mbs !== undefined && mbs > 0) {
    for (const p of db.preferred_batch_size) {
      if (p > mbs) {
        ctx.addIssue({
          code: 'custom', path: ['dynamic_batching', 'preferred_batch_size'],
          message: `preferred batch size ${p} is larger than max_batch_size ${mbs}; lower it or raise max_batch_size`,
        });
      }
    }
  }
  if (db && db.default_priority_level > db.priority_levels) {
    ctx.addIssue({
      code: 'custom', path: ['dynamic_batching', 'default_priority_level'],
      message: `default_priority_level ${db.default_priority_level} exceeds priority_levels ${db.priority_levels}`,
    });
  }
  if (cfg.platform === 'ocr_pipeline' && !cfg.ocr) {
    ctx.addIssue({ code: 'custom', path: ['ocr'], message: "platform 'ocr_pipeline' needs an 'ocr' section (write \"ocr\": {} for the defaults)" });
  }
  if (cfg.ocr && cfg.platform !== 'ocr_pipeline') {
    ctx.addIssue({ code: 'custom', path: ['ocr'], message: "'ocr' is only for platform 'ocr_pipeline'; set the platform or remove it" });
  }
  (cfg.input ?? []).forEach((t, i) => {
    if (t.postprocess) ctx.addIssue({ code: 'custom', path: ['input', i, 'postprocess'], message: 'postprocess belongs on an output; move it there' });
  });
  (cfg.output ?? []).forEach((t, i) => {
    if (t.preprocess) ctx.addIssue({ code: 'custom', path: ['output', i, 'preprocess'], message: 'preprocess belongs on an input; move it there' });
  });
  for (const key of ['input', 'output'] as const) {
    const seen = new Set<string>();
    for (const [i, t] of (cfg[key] ?? []).entries()) {
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [key, i, 'name'], message: `duplicate ${key} name '${t.name}'` });
      seen.add(t.name);
    }
  }
});

export type ModelConfigInput = z.input<typeof ModelConfigSchema>;
export type ModelConfig = z.output<typeof ModelConfigSchema>;
export type TensorConfig = z.output<typeof TensorConfigSchema>;
export type ModelWarmup = z.output<typeof ModelWarmupSchema>;
export type DynamicBatching = z.output<typeof DynamicBatchingSchema>;
export type QueuePolicy = z.output<typeof QueuePolicySchema>;

/** `path: message` lines of a zod error, prefixed with where the config came from. */
export function formatConfigIssues(source: string, error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = issuePath(i.path);
      const msg = i.code === 'unrecognized_keys'
        ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `'${k}'`).join(', ')}; remove ${i.keys.length > 1 ? 'them' : 'it'} (see README "Model repository" for the supported fields)`
        : i.message;
      return `${source}: field '${path}': ${msg}`;
    })
    .join('; ');
}

export function parseModelConfig(source: string, raw: unknown): ModelConfig {
  if (typeof raw === 'object' && raw !== null) raw = structuredClone(raw);
  checkUnsupported(raw, () => source);
  const r = ModelConfigSchema.safeParse(raw);
  if (!r.success) throw new Error(formatConfigIssues(source, r.error));
  return r.data;
}
