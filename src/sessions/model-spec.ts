/**
 * A model version's complete, checked description: the config file (possibly empty) merged
 * with what the ONNX file declares, like Triton's auto-complete. Contradictions between the
 * two are errors naming the field and the fix. Everything downstream (validation, batching,
 * execution) reads only the ModelSpec.
 */
import { datatypeFromTriton, tritonTypeOf, type Datatype } from '../execution/datatypes.js';
import type { ProviderName, SessionSettings, TensorSignature } from '../execution/ort-session.js';
import { PROVIDERS } from '../execution/ort-session.js';
import { BATCHING_POLICIES, type BatchingPolicy, type BatchingSettings } from '../batching/policy.js';
import type { ModelConfig, QueuePolicy, TensorConfig } from '../repository/model-config.js';
import { QueuePolicySchema } from '../repository/model-config.js';
import type { Postprocess } from '../postprocess/schema.js';
import { checkPreprocessAgainstInput, type ImagePreprocess } from '../preprocess/schema.js';
import { agentTensorNames, completeSequenceSpec, type SequenceSpec } from '../sequences/spec.js';

export interface TensorSpec {
  readonly name: string;
  readonly datatype: Datatype;
  /** Full shape of the model tensor: batch dim first (-1) when max_batch_size > 0; -1 = variable. */
  readonly shape: readonly number[];
  /** Inputs: clients send encoded images that are decoded into this tensor. */
  readonly preprocess?: ImagePreprocess | undefined;
  /** Outputs: turned into labels or text before they are returned. */
  readonly postprocess?: Postprocess | undefined;
  /** Triton's `reshape`: the model's own dims (without the batch dim), when they differ from `shape`'s. */
  readonly reshape?: readonly number[] | undefined;
  /** Inputs: a request may leave it out (Triton's `optional`). */
  readonly optional?: boolean | undefined;
  /** Outputs: the labels file of the classification extension (Triton's `label_filename`). */
  readonly labelFilename?: string | undefined;
  /** Inputs: FORMAT_NCHW / FORMAT_NHWC as the config says (reported, not acted on). */
  readonly format?: string | undefined;
}

export interface ModelSpec {
  readonly name: string;
  readonly version: number;
  readonly maxBatchSize: number;
  /** The model's own tensors (what onnxruntime runs). */
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** What clients send and receive: image inputs are BYTES, postprocessed outputs are BYTES. */
  readonly clientInputs: readonly TensorSpec[];
  readonly clientOutputs: readonly TensorSpec[];
  readonly batching: BatchingSettings;
  readonly queuePolicy: QueuePolicy;
  readonly priorityLevels: number;
  readonly defaultPriorityLevel: number;
  readonly instances: number;
  readonly session: SessionSettings;
  readonly warmup: boolean;
  /** The completed config, as `GET /v2/models/{m}/config` returns it. */
  readonly config: ModelConfig;
  /** Sequence (stateful) models: controls, implicit state, constants (see sequences/). `inputs`/`outputs` then hold the client's tensors only. */
  readonly sequence?: SequenceSpec | undefined;
}

export interface ModelDefaults {
  readonly session: SessionSettings;
  /** max_batch_size given to a batchable model whose config does not set one. */
  readonly defaultMaxBatchSize: number;
  /** --strict-gpu: KIND_GPU without a usable GPU fails the load instead of falling back. */
  readonly strictGpu?: boolean;
  /** The dynamic batching policy of models whose config sets no `batching_policy` parameter. */
  readonly batchingPolicy?: BatchingPolicy;
}

/** The per-model session settings: agent defaults overridden by the config's `parameters`. */
export function sessionSettingsFor(config: ModelConfig, defaults: SessionSettings, source: string): SessionSettings {
  const p = config.parameters ?? {};
  const get = (k: string) => p[k]?.string_value;
  const num = (k: string, fallback: number) => {
    const v = get(k);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v)) throw new Error(`${source}: parameter '${k}' must be a non-negative integer, got '${v}'`);
    return Number(v);
  };
  const bool = (k: string, fallback: boolean) => {
    const v = get(k);
    if (v === undefined) return fallback;
    if (v !== '0' && v !== '1' && v !== 'true' && v !== 'false') throw new Error(`${source}: parameter '${k}' must be "1" or "0", got '${v}'`);
    return v === '1' || v === 'true';
  };
  let providers = defaults.providers;
  const ep = get('execution_providers');
  if (ep !== undefined) {
    const list = ep.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    const bad = list.filter((x) => !PROVIDERS.includes(x as ProviderName));
    if (bad.length || list.length === 0) {
      throw new Error(`${source}: parameter 'execution_providers' has ${bad.length ? `unknown provider(s) ${bad.join(', ')}` : 'no providers'}; use a list of ${PROVIDERS.join(', ')}`);
    }
    providers = list as ProviderName[];
  }
  const kind = config.instance_group?.[0]?.kind;
  if (kind === 'KIND_CPU') providers = ['cpu'];
  if (kind === 'KIND_GPU' && !providers.includes('cuda')) providers = ['cuda', ...providers];
  const mode = get('execution_mode');
  if (mode !== undefined && mode !== '0' && mode !== '1') throw new Error(`${source}: parameter 'execution_mode' must be "0" (sequential) or "1" (parallel)`);
  const thread = get('session_thread');
  if (thread !== undefined && thread !== 'worker' && thread !== 'main' && thread !== 'auto') {
    throw new Error(`${source}: parameter 'session_thread' must be "auto", "worker" or "main", got '${thread}'`);
  }
  const level = config.optimization?.graph?.level;
  return {
    providers,
    cudaDeviceId: num('cuda_device_id', config.instance_group?.[0]?.gpus?.[0] ?? defaults.cudaDeviceId),
    intraOpThreads: num('intra_op_thread_count', defaults.intraOpThreads),
    interOpThreads: num('inter_op_thread_count', defaults.interOpThreads),
    executionMode: mode === undefined ? defaults.executionMode : mode === '1' ? 'parallel' : 'sequential',
    enableCpuMemArena: bool('enable_mem_arena', defaults.enableCpuMemArena),
    enableMemPattern: bool('enable_mem_pattern', defaults.enableMemPattern),
    thread: (thread as 'worker' | 'main' | 'auto' | undefined) ?? defaults.thread,
    allowSpinning: bool('session.intra_op.allow_spinning', defaults.allowSpinning),
    // Triton: -1 = basic only, 1 = all (default), 0/2 map to extended here.
    graphOptimizationLevel: level === undefined ? defaults.graphOptimizationLevel : level === -1 ? 'basic' : level === 1 ? 'all' : 'extended',
  };
}

function batchingPolicyOf(config: ModelConfig, defaults: ModelDefaults, source: string): BatchingPolicy {
  const v = config.parameters?.batching_policy?.string_value;
  if (v === undefined) return defaults.batchingPolicy ?? 'work_conserving';
  if (!BATCHING_POLICIES.includes(v as BatchingPolicy)) {
    throw new Error(`${source}: parameter 'batching_policy' must be ${BATCHING_POLICIES.map((p) => `"${p}"`).join(' or ')}, got '${v}'`);
  }
  return v as BatchingPolicy;
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(',')}]`;
}

/** Merge config tensors with the model's, checking names, types and dims. */
function completeTensors(
  kind: 'input' | 'output',
  configured: readonly TensorConfig[] | undefined,
  declared: readonly TensorSignature[],
  maxBatchSize: number,
  source: string,
): TensorSpec[] {
  const byName = new Map(declared.map((d) => [d.name, d]));
  for (const c of configured ?? []) {
    if (!byName.has(c.name)) {
      throw new Error(`${source}: ${kind} '${c.name}' is not in the model (its ${kind}s: ${declared.map((d) => d.name).join(', ')}); fix the name or remove it`);
    }
  }
  const configuredByName = new Map((configured ?? []).map((c) => [c.name, c]));
  return declared.map((d) => {
    if (!d.datatype) {
      throw new Error(`${source}: model ${kind} '${d.name}' has type '${d.ortType}', which this agent cannot serve`);
    }
    const modelShape = maxBatchSize > 0 ? d.shape.slice(1) : d.shape;
    const c = configuredByName.get(d.name);
    let dims = modelShape;
    let reshape: number[] | undefined;
    if (c) {
      const dt = datatypeFromTriton(c.data_type)!;
      if (dt !== d.datatype) {
        throw new Error(`${source}: ${kind} '${d.name}' data_type is ${c.data_type} but the model has ${tritonTypeOf(d.datatype)}; set data_type: ${tritonTypeOf(d.datatype)}`);
      }
      // With `reshape`, the model file has the reshape's dims and clients use `dims`.
      const own = c.reshape ? c.reshape.shape : c.dims;
      const ownName = c.reshape ? 'reshape' : 'dims';
      // Rank 0 in the model file means "unknown rank" for some exporters; trust the config then.
      if (modelShape.length && own.length !== modelShape.length) {
        throw new Error(`${source}: ${kind} '${d.name}' ${ownName} ${shapeText(own)} have rank ${own.length} but the model has ${shapeText(modelShape)}` +
          (maxBatchSize > 0 ? ' (with max_batch_size > 0, they exclude the batch dimension)' : '') +
          (c.reshape ? '' : `; give the model's shape as reshape { shape: ${shapeText(modelShape)} } to keep dims ${shapeText(c.dims)} for clients`));
      }
      const merged = own.map((cd, i) => {
        const md = modelShape[i] ?? -1;
        if (cd !== -1 && md !== -1 && cd !== md) {
          throw new Error(`${source}: ${kind} '${d.name}' ${ownName} ${shapeText(own)} contradict the model's ${shapeText(modelShape)}; use ${shapeText(modelShape)}`);
        }
        return cd === -1 ? md : cd;
      });
      if (c.reshape) {
        reshape = merged;
        dims = [...c.dims];
        const count = (xs: readonly number[]) => (xs.some((x) => x === -1) ? undefined : xs.reduce((a, b) => a * b, 1));
        const a = count(dims);
        const b = count(reshape);
        if (a !== undefined && b !== undefined && a !== b) {
          throw new Error(`${source}: ${kind} '${d.name}' dims ${shapeText(dims)} have ${a} elements but reshape ${shapeText(reshape)} has ${b}; they must hold the same elements`);
        }
        if ([dims, reshape].some((xs) => xs.filter((x) => x === -1).length > 1)) {
          throw new Error(`${source}: ${kind} '${d.name}': with reshape, dims and reshape may each have at most one variable (-1) dimension`);
        }
      } else {
        dims = merged;
      }
    }
    if (c?.preprocess) {
      const problems = checkPreprocessAgainstInput(c.preprocess, { name: d.name, datatype: d.datatype, dims });
      if (problems.length) throw new Error(`${source}: ${problems.join('; ')}`);
    }
    return {
      name: d.name,
      datatype: d.datatype,
      shape: maxBatchSize > 0 ? [-1, ...dims] : [...dims],
      preprocess: c?.preprocess,
      postprocess: c?.postprocess && c.postprocess.type !== 'none' ? c.postprocess : undefined,
      ...(reshape ? { reshape } : {}),
      ...(c?.optional ? { optional: true } : {}),
      ...(c?.label_filename ? { labelFilename: c.label_filename } : {}),
      ...(c?.format ? { format: c.format } : {}),
    };
  });
}

/** The tensors as clients see them: images and postprocessed outputs are BYTES, one per row. */
function clientView(tensors: readonly TensorSpec[], maxBatchSize: number): TensorSpec[] {
  return tensors.map((t) => {
    const rowShape = t.postprocess?.type === 'classification' ? [t.postprocess.top_k] : [1];
    if (!t.preprocess && !t.postprocess) return t;
    return { name: t.name, datatype: 'BYTES', shape: maxBatchSize > 0 ? [-1, ...rowShape] : rowShape };
  });
}

/** Sessions to create: the instance groups' counts added up (Triton's default: one). */
export function instanceCount(config: ModelConfig): number {
  return config.instance_group?.reduce((n, g) => n + g.count, 0) || 1;
}

/** True when every input and output of the model has a variable first dimension. */
export function hasBatchDimension(sig: { inputs: readonly TensorSignature[]; outputs: readonly TensorSignature[] }): boolean {
  const all = [...sig.inputs, ...sig.outputs];
  return all.length > 0 && all.every((t) => t.shape.length > 0 && t.shape[0] === -1);
}

export function completeModelSpec(
  name: string,
  version: number,
  config: ModelConfig,
  sig: { inputs: readonly TensorSignature[]; outputs: readonly TensorSignature[] },
  session: SessionSettings,
  defaults: ModelDefaults,
  source: string,
): ModelSpec {
  const declared = sig;
  // A sequence model's controls, states and constants are the agent's: clients see the rest.
  if (config.sequence_batching) {
    const agent = agentTensorNames(config);
    sig = { inputs: sig.inputs.filter((t) => !agent.inputs.has(t.name)), outputs: sig.outputs.filter((t) => !agent.outputs.has(t.name)) };
  }
  const batchable = hasBatchDimension(sig);
  let maxBatchSize = config.max_batch_size;
  const autoBatch = maxBatchSize === undefined;
  if (maxBatchSize === undefined) maxBatchSize = batchable ? defaults.defaultMaxBatchSize : 0;
  if (maxBatchSize > 0 && !batchable) {
    const fixed = [...sig.inputs, ...sig.outputs].find((t) => t.shape[0] !== -1);
    throw new Error(`${source}: max_batch_size is ${maxBatchSize} but model tensor '${fixed?.name}' has shape ${shapeText(fixed?.shape ?? [])} with no variable first (batch) dimension; set max_batch_size: 0`);
  }
  for (const p of config.dynamic_batching?.preferred_batch_size ?? []) {
    if (p > maxBatchSize) {
      throw new Error(`${source}: preferred batch size ${p} is larger than max_batch_size ${maxBatchSize}${autoBatch ? ' (completed from --default-max-batch-size)' : ''}; lower it or set max_batch_size`);
    }
  }
  const inputs = completeTensors('input', config.input, sig.inputs, maxBatchSize, source);
  const outputs = completeTensors('output', config.output, sig.outputs, maxBatchSize, source);
  // Like Triton's onnxruntime auto-complete: a batchable model without a config batches dynamically.
  const db = config.dynamic_batching ?? (autoBatch && maxBatchSize > 1 && !config.sequence_batching ? { preferred_batch_size: [], max_queue_delay_microseconds: 0, preserve_ordering: false, priority_levels: 0, default_priority_level: 0, default_queue_policy: QueuePolicySchema.parse({}) } : undefined);
  const instances = instanceCount(config);
  const sequence = config.sequence_batching ? completeSequenceSpec(config, config.sequence_batching, declared, maxBatchSize, instances, source) : undefined;
  const toConfigTensor = (t: TensorSpec) => ({
    name: t.name,
    data_type: tritonTypeOf(t.datatype),
    dims: maxBatchSize > 0 ? t.shape.slice(1) : [...t.shape],
    ...(t.format ? { format: t.format as 'FORMAT_NONE' } : {}),
    ...(t.reshape ? { reshape: { shape: [...t.reshape] } } : {}),
    ...(t.optional ? { optional: true } : {}),
    ...(t.labelFilename ? { label_filename: t.labelFilename } : {}),
    ...(t.preprocess ? { preprocess: t.preprocess } : {}),
    ...(t.postprocess ? { postprocess: t.postprocess } : {}),
  });
  const complete: ModelConfig = {
    ...config,
    name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    max_batch_size: maxBatchSize,
    input: inputs.map(toConfigTensor),
    output: outputs.map(toConfigTensor),
    instance_group: config.instance_group ?? [{ count: 1, kind: 'KIND_AUTO' }],
    ...(db ? { dynamic_batching: db } : {}),
  };
  return {
    name,
    version,
    maxBatchSize,
    inputs,
    outputs,
    clientInputs: clientView(inputs, maxBatchSize),
    clientOutputs: clientView(outputs, maxBatchSize),
    batching: {
      dynamic: db !== undefined,
      maxBatchSize,
      preferredBatchSizes: db?.preferred_batch_size ?? [],
      maxQueueDelayMs: (db?.max_queue_delay_microseconds ?? 0) / 1000,
      policy: batchingPolicyOf(config, defaults, source),
    },
    queuePolicy: db?.default_queue_policy ?? QueuePolicySchema.parse({}),
    priorityLevels: db?.priority_levels ?? 0,
    defaultPriorityLevel: db?.default_priority_level ?? 0,
    instances,
    session,
    warmup: config.parameters?.warmup?.string_value !== '0',
    config: complete,
    ...(sequence ? { sequence } : {}),
  };
}
