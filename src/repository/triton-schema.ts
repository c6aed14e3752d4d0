/**
 * The shape of Triton's `ModelConfig` message (model_config.proto, package `inference`),
 * written in this project from the published field names, numbers and types. The text-format
 * reader (pbtxt-config.ts) is driven by it: it knows which fields are messages, which are
 * repeated, which are maps and which enum names exist, so any valid Triton config parses.
 * Whether the agent *implements* a field is a separate question (see unsupported.ts).
 *
 * The agent's own extensions (`preprocess`, `postprocess` on tensors, `ocr` on the model)
 * are typed `extension`: free-form, converted without a schema.
 */

export type ScalarType = 'string' | 'bool' | 'int32' | 'int64' | 'uint32' | 'uint64' | 'float' | 'double';

export type FieldType =
  | { readonly kind: 'scalar'; readonly scalar: ScalarType }
  | { readonly kind: 'enum'; readonly enum: string }
  | { readonly kind: 'message'; readonly message: string }
  | { readonly kind: 'map'; readonly key: ScalarType; readonly value: FieldType }
  | { readonly kind: 'extension' };

export interface FieldDesc {
  readonly number: number;
  readonly type: FieldType;
  readonly repeated: boolean;
}

const s = (scalar: ScalarType): FieldType => ({ kind: 'scalar', scalar });
const en = (name: string): FieldType => ({ kind: 'enum', enum: name });
const msg = (name: string): FieldType => ({ kind: 'message', message: name });
const one = (number: number, type: FieldType): FieldDesc => ({ number, type, repeated: false });
const rep = (number: number, type: FieldType): FieldDesc => ({ number, type, repeated: true });
const map = (number: number, key: ScalarType, value: FieldType): FieldDesc => ({ number, type: { kind: 'map', key, value }, repeated: false });
const ext: FieldDesc = { number: 0, type: { kind: 'extension' }, repeated: false };

/** Enum name → number, per enum (names as they are written in config files). */
export const ENUMS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  DataType: {
    TYPE_INVALID: 0, TYPE_BOOL: 1, TYPE_UINT8: 2, TYPE_UINT16: 3, TYPE_UINT32: 4, TYPE_UINT64: 5,
    TYPE_INT8: 6, TYPE_INT16: 7, TYPE_INT32: 8, TYPE_INT64: 9, TYPE_FP16: 10, TYPE_FP32: 11,
    TYPE_FP64: 12, TYPE_STRING: 13, TYPE_BF16: 14,
  },
  'ModelInstanceGroup.Kind': { KIND_AUTO: 0, KIND_GPU: 1, KIND_CPU: 2, KIND_MODEL: 3 },
  'ModelInstanceGroup.SecondaryDevice.SecondaryDeviceKind': { KIND_NVDLA: 0 },
  'ModelInput.Format': { FORMAT_NONE: 0, FORMAT_NHWC: 1, FORMAT_NCHW: 2 },
  'BatchInput.Kind': {
    BATCH_ELEMENT_COUNT: 0, BATCH_ACCUMULATED_ELEMENT_COUNT: 1, BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO: 2,
    BATCH_MAX_ELEMENT_COUNT_AS_SHAPE: 3, BATCH_ITEM_SHAPE: 4, BATCH_ITEM_SHAPE_FLATTEN: 5,
  },
  'BatchOutput.Kind': { BATCH_SCATTER_WITH_INPUT_SHAPE: 0 },
  'ModelOptimizationPolicy.ModelPriority': { PRIORITY_DEFAULT: 0, PRIORITY_MAX: 1, PRIORITY_MIN: 2 },
  'ModelQueuePolicy.TimeoutAction': { REJECT: 0, DELAY: 1 },
  'ModelSequenceBatching.Control.Kind': {
    CONTROL_SEQUENCE_START: 0, CONTROL_SEQUENCE_READY: 1, CONTROL_SEQUENCE_END: 2, CONTROL_SEQUENCE_CORRID: 3,
  },
};

/** Message name → its fields. `ModelConfig` is the root. */
export const MESSAGES: Readonly<Record<string, Readonly<Record<string, FieldDesc>>>> = {
  ModelConfig: {
    name: one(1, s('string')),
    platform: one(2, s('string')),
    backend: one(17, s('string')),
    runtime: one(25, s('string')),
    version_policy: one(3, msg('ModelVersionPolicy')),
    max_batch_size: one(4, s('int32')),
    input: rep(5, msg('ModelInput')),
    output: rep(6, msg('ModelOutput')),
    batch_input: rep(20, msg('BatchInput')),
    batch_output: rep(21, msg('BatchOutput')),
    optimization: one(12, msg('ModelOptimizationPolicy')),
    dynamic_batching: one(11, msg('ModelDynamicBatching')),
    sequence_batching: one(13, msg('ModelSequenceBatching')),
    ensemble_scheduling: one(15, msg('ModelEnsembling')),
    instance_group: rep(7, msg('ModelInstanceGroup')),
    default_model_filename: one(8, s('string')),
    cc_model_filenames: map(9, 'string', s('string')),
    metric_tags: map(10, 'string', s('string')),
    parameters: map(14, 'string', msg('ModelParameter')),
    model_warmup: rep(16, msg('ModelWarmup')),
    model_operations: one(18, msg('ModelOperations')),
    model_transaction_policy: one(19, msg('ModelTransactionPolicy')),
    model_repository_agents: one(23, msg('ModelRepositoryAgents')),
    response_cache: one(24, msg('ModelResponseCache')),
    model_metrics: one(26, msg('ModelMetrics')),
    ocr: ext,
  },
  ModelRateLimiter: {
    resources: rep(1, msg('ModelRateLimiter.Resource')),
    priority: one(2, s('uint32')),
  },
  'ModelRateLimiter.Resource': {
    name: one(1, s('string')),
    global: one(2, s('bool')),
    count: one(3, s('uint32')),
  },
  ModelInstanceGroup: {
    name: one(1, s('string')),
    kind: one(4, en('ModelInstanceGroup.Kind')),
    count: one(2, s('int32')),
    rate_limiter: one(6, msg('ModelRateLimiter')),
    gpus: rep(3, s('int32')),
    secondary_devices: rep(8, msg('ModelInstanceGroup.SecondaryDevice')),
    profile: rep(5, s('string')),
    passive: one(7, s('bool')),
    host_policy: one(9, s('string')),
  },
  'ModelInstanceGroup.SecondaryDevice': {
    kind: one(1, en('ModelInstanceGroup.SecondaryDevice.SecondaryDeviceKind')),
    device_id: one(2, s('int64')),
  },
  ModelTensorReshape: {
    shape: rep(1, s('int64')),
  },
  ModelInput: {
    name: one(1, s('string')),
    data_type: one(2, en('DataType')),
    format: one(3, en('ModelInput.Format')),
    dims: rep(4, s('int64')),
    reshape: one(5, msg('ModelTensorReshape')),
    is_shape_tensor: one(6, s('bool')),
    allow_ragged_batch: one(7, s('bool')),
    optional: one(8, s('bool')),
    is_non_linear_format_io: one(9, s('bool')),
    preprocess: ext,
  },
  ModelOutput: {
    name: one(1, s('string')),
    data_type: one(2, en('DataType')),
    dims: rep(3, s('int64')),
    reshape: one(5, msg('ModelTensorReshape')),
    label_filename: one(4, s('string')),
    is_shape_tensor: one(6, s('bool')),
    is_non_linear_format_io: one(7, s('bool')),
    postprocess: ext,
  },
  BatchInput: {
    kind: one(1, en('BatchInput.Kind')),
    target_name: rep(2, s('string')),
    data_type: one(3, en('DataType')),
    source_input: rep(4, s('string')),
  },
  BatchOutput: {
    target_name: rep(1, s('string')),
    kind: one(2, en('BatchOutput.Kind')),
    source_input: rep(3, s('string')),
  },
  ModelVersionPolicy: {
    latest: one(1, msg('ModelVersionPolicy.Latest')),
    all: one(2, msg('ModelVersionPolicy.All')),
    specific: one(3, msg('ModelVersionPolicy.Specific')),
  },
  'ModelVersionPolicy.Latest': { num_versions: one(1, s('uint32')) },
  'ModelVersionPolicy.All': {},
  'ModelVersionPolicy.Specific': { versions: rep(1, s('int64')) },
  ModelOptimizationPolicy: {
    graph: one(1, msg('ModelOptimizationPolicy.Graph')),
    priority: one(2, en('ModelOptimizationPolicy.ModelPriority')),
    cuda: one(3, msg('ModelOptimizationPolicy.Cuda')),
    execution_accelerators: one(4, msg('ModelOptimizationPolicy.ExecutionAccelerators')),
    input_pinned_memory: one(5, msg('ModelOptimizationPolicy.PinnedMemoryBuffer')),
    output_pinned_memory: one(6, msg('ModelOptimizationPolicy.PinnedMemoryBuffer')),
    gather_kernel_buffer_threshold: one(7, s('uint32')),
    eager_batching: one(8, s('bool')),
  },
  'ModelOptimizationPolicy.Graph': { level: one(1, s('int32')) },
  'ModelOptimizationPolicy.Cuda': {
    graphs: one(1, s('bool')),
    busy_wait_events: one(2, s('bool')),
    graph_spec: rep(3, msg('ModelOptimizationPolicy.Cuda.GraphSpec')),
    output_copy_stream: one(4, s('bool')),
  },
  'ModelOptimizationPolicy.Cuda.GraphSpec': {
    batch_size: one(1, s('int32')),
    input: map(2, 'string', msg('ModelOptimizationPolicy.Cuda.GraphSpec.Shape')),
    graph_lower_bound: one(3, msg('ModelOptimizationPolicy.Cuda.GraphSpec.LowerBound')),
  },
  'ModelOptimizationPolicy.Cuda.GraphSpec.Shape': { dim: rep(1, s('int64')) },
  'ModelOptimizationPolicy.Cuda.GraphSpec.LowerBound': {
    batch_size: one(1, s('int32')),
    input: map(2, 'string', msg('ModelOptimizationPolicy.Cuda.GraphSpec.Shape')),
  },
  'ModelOptimizationPolicy.ExecutionAccelerators': {
    gpu_execution_accelerator: rep(1, msg('ModelOptimizationPolicy.ExecutionAccelerators.Accelerator')),
    cpu_execution_accelerator: rep(2, msg('ModelOptimizationPolicy.ExecutionAccelerators.Accelerator')),
  },
  'ModelOptimizationPolicy.ExecutionAccelerators.Accelerator': {
    name: one(1, s('string')),
    parameters: map(2, 'string', s('string')),
  },
  'ModelOptimizationPolicy.PinnedMemoryBuffer': { enable: one(1, s('bool')) },
  ModelQueuePolicy: {
    timeout_action: one(1, en('ModelQueuePolicy.TimeoutAction')),
    default_timeout_microseconds: one(2, s('uint64')),
    allow_timeout_override: one(3, s('bool')),
    max_queue_size: one(4, s('uint32')),
  },
  ModelDynamicBatching: {
    preferred_batch_size: rep(1, s('int32')),
    max_queue_delay_microseconds: one(2, s('uint64')),
    preserve_ordering: one(3, s('bool')),
    priority_levels: one(4, s('uint64')),
    default_priority_level: one(5, s('uint64')),
    default_queue_policy: one(6, msg('ModelQueuePolicy')),
    priority_queue_policy: map(7, 'uint64', msg('ModelQueuePolicy')),
  },
  ModelSequenceBatching: {
    direct: one(3, msg('ModelSequenceBatching.StrategyDirect')),
    oldest: one(4, msg('ModelSequenceBatching.StrategyOldest')),
    max_sequence_idle_microseconds: one(1, s('uint64')),
    control_input: rep(2, msg('ModelSequenceBatching.ControlInput')),
    state: rep(5, msg('ModelSequenceBatching.State')),
    iterative_sequence: one(6, s('bool')),
  },
  'ModelSequenceBatching.Control': {
    kind: one(1, en('ModelSequenceBatching.Control.Kind')),
    int32_false_true: rep(2, s('int32')),
    fp32_false_true: rep(3, s('float')),
    bool_false_true: rep(5, s('bool')),
    data_type: one(4, en('DataType')),
  },
  'ModelSequenceBatching.ControlInput': {
    name: one(1, s('string')),
    control: rep(2, msg('ModelSequenceBatching.Control')),
  },
  'ModelSequenceBatching.InitialState': {
    data_type: one(1, en('DataType')),
    dims: rep(2, s('int64')),
    zero_data: one(3, s('bool')),
    data_file: one(4, s('string')),
    name: one(5, s('string')),
  },
  'ModelSequenceBatching.State': {
    input_name: one(1, s('string')),
    output_name: one(2, s('string')),
    data_type: one(3, en('DataType')),
    dims: rep(4, s('int64')),
    initial_state: rep(5, msg('ModelSequenceBatching.InitialState')),
    use_same_buffer_for_input_output: one(6, s('bool')),
    use_growable_memory: one(7, s('bool')),
  },
  'ModelSequenceBatching.StrategyDirect': {
    max_queue_delay_microseconds: one(1, s('uint64')),
    minimum_slot_utilization: one(2, s('float')),
  },
  'ModelSequenceBatching.StrategyOldest': {
    max_candidate_sequences: one(1, s('int32')),
    preferred_batch_size: rep(2, s('int32')),
    max_queue_delay_microseconds: one(3, s('uint64')),
    preserve_ordering: one(4, s('bool')),
  },
  ModelEnsembling: {
    step: rep(1, msg('ModelEnsembling.Step')),
    max_inflight_responses: one(2, s('uint32')),
  },
  'ModelEnsembling.Step': {
    model_name: one(1, s('string')),
    model_version: one(2, s('int64')),
    input_map: map(3, 'string', s('string')),
    output_map: map(4, 'string', s('string')),
    model_namespace: one(5, s('string')),
  },
  ModelParameter: { string_value: one(1, s('string')) },
  ModelWarmup: {
    name: one(1, s('string')),
    batch_size: one(2, s('uint32')),
    inputs: map(3, 'string', msg('ModelWarmup.Input')),
    count: one(4, s('uint32')),
  },
  'ModelWarmup.Input': {
    data_type: one(1, en('DataType')),
    dims: rep(2, s('int64')),
    zero_data: one(3, s('bool')),
    random_data: one(4, s('bool')),
    input_data_file: one(5, s('string')),
  },
  ModelOperations: { op_library_filename: rep(1, s('string')) },
  ModelTransactionPolicy: { decoupled: one(1, s('bool')) },
  ModelRepositoryAgents: { agents: rep(1, msg('ModelRepositoryAgents.Agent')) },
  'ModelRepositoryAgents.Agent': {
    name: one(1, s('string')),
    parameters: map(2, 'string', s('string')),
  },
  ModelResponseCache: { enable: one(1, s('bool')) },
  ModelMetrics: { metric_control: rep(1, msg('ModelMetrics.MetricControl')) },
  'ModelMetrics.MetricControl': {
    metric_identifier: one(1, msg('ModelMetrics.MetricControl.MetricIdentifier')),
    histogram_options: one(2, msg('ModelMetrics.MetricControl.HistogramOptions')),
  },
  'ModelMetrics.MetricControl.MetricIdentifier': { family: one(1, s('string')) },
  'ModelMetrics.MetricControl.HistogramOptions': { buckets: rep(1, s('double')) },
};

/** Fields of a `oneof`: at most one of them may be set in a message. */
export const ONEOFS: Readonly<Record<string, readonly (readonly string[])[]>> = {
  ModelConfig: [['dynamic_batching', 'sequence_batching', 'ensemble_scheduling']],
  ModelVersionPolicy: [['latest', 'all', 'specific']],
  ModelSequenceBatching: [['direct', 'oldest']],
  'ModelSequenceBatching.InitialState': [['zero_data', 'data_file']],
  'ModelWarmup.Input': [['zero_data', 'random_data', 'input_data_file']],
};

/** The short name of a message for error texts: `ModelWarmup.Input` → `ModelWarmup.Input`. */
export function fieldsOf(message: string): Readonly<Record<string, FieldDesc>> {
  const m = MESSAGES[message];
  if (!m) throw new Error(`triton-schema: no message ${message} (this is a bug)`);
  return m;
}
