/**
 * The schema-driven config.pbtxt reader on Triton's own configs (NVIDIA's docs and example
 * repository), every scalar form of the text format, and the refusal of fields the agent does
 * not implement by name.
 */
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/repository/model-config.js';
import { parsePbtxtConfig, pbtxtToJson } from '../../src/repository/pbtxt-config.js';
import { tritonConfigJson } from '../../src/repository/effective-config.js';
import { MESSAGES } from '../../src/repository/triton-schema.js';
import { SIMPLE_SEQUENCE_CONFIG } from '../../scripts/sequence-models.mjs';
import { densenetUnbatchedConfig } from '../helpers/triton-configs.js';

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

const DENSENET = densenetUnbatchedConfig('densenet_onnx');

// NVIDIA's simple_sequence example config, as the generator writes it (scripts/sequence-models.mjs).
const SIMPLE_SEQUENCE = SIMPLE_SEQUENCE_CONFIG;

const ENSEMBLE = `name: "ensemble_model"
platform: "ensemble"
max_batch_size: 1
input [ { name: "IMAGE" data_type: TYPE_STRING dims: [ 1 ] } ]
output [ { name: "CLASSIFICATION" data_type: TYPE_FP32 dims: [ 1000 ] } ]
ensemble_scheduling {
  step [
    {
      model_name: "image_preprocess_model"
      model_version: -1
      input_map { key: "INPUT" value: "IMAGE" }
      output_map { key: "OUTPUT" value: "preprocessed_image" }
    },
    {
      model_name: "image_classification_model"
      model_version: -1
      input_map { key: "INPUT" value: "preprocessed_image" }
      output_map { key: "OUTPUT" value: "CLASSIFICATION" }
    }
  ]
}
`;

const WARMUP = `name: "two_inputs"
max_batch_size: 4
model_warmup [
  {
    name: "regular sample"
    batch_size: 2
    count: 3
    inputs {
      key: "INPUT0"
      value: {
        data_type: TYPE_FP32
        dims: [ 16 ]
        random_data: true
      }
    }
    inputs {
      key: "INPUT1"
      value: {
        data_type: TYPE_INT32
        dims: [ 16 ]
        zero_data: true
      }
    }
  },
  {
    name: "from a file"
    batch_size: 1
    inputs [ { key: "INPUT0" value: { data_type: TYPE_FP32 dims: 16 input_data_file: "raw_input0" } },
             { key: "INPUT1" value: { data_type: TYPE_INT32 dims: 16 zero_data: true } } ]
  }
]
`;

const OPTIMIZATION = `name: "opt"
optimization {
  graph : { level : 1 }
  execution_accelerators {
    gpu_execution_accelerator : [ {
      name : "tensorrt"
      parameters { key: "precision_mode" value: "FP16" }
      parameters { key: "max_workspace_size_bytes" value: "1073741824" }
    } ]
    cpu_execution_accelerator : [ { name : "openvino" } ]
  }
  cuda { graphs: true busy_wait_events: false output_copy_stream: true }
  input_pinned_memory { enable: false }
  output_pinned_memory { enable: true }
  gather_kernel_buffer_threshold: 0
  eager_batching: false
  priority: PRIORITY_DEFAULT
}
instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0 ] } ]
parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
parameters [ { key: "execution_mode" value: { string_value: "0" } } ]
version_policy: { specific: { versions: [1, 3] } }
`;

describe('schema of ModelConfig', () => {
  it('every message a field names is in the schema (no dangling references)', () => {
    for (const [name, fields] of Object.entries(MESSAGES)) {
      for (const [field, desc] of Object.entries(fields)) {
        const refs = [desc.type, desc.type.kind === 'map' ? desc.type.value : undefined];
        for (const t of refs) {
          if (t?.kind === 'message') expect(MESSAGES[t.message], `${name}.${field} → ${t.message}`).toBeDefined();
        }
      }
    }
  });
});

describe('config.pbtxt on NVIDIA configs', () => {
  it('densenet_onnx with reshape inside an input and an output parses and validates', () => {
    const cfg = parsePbtxtConfig('densenet_onnx/config.pbtxt', DENSENET);
    expect(cfg.input).toEqual([{ name: 'data_0', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [3, 224, 224], reshape: { shape: [1, 3, 224, 224] } }]);
    expect(cfg.output).toEqual([{ name: 'fc6_1', data_type: 'TYPE_FP32', dims: [1000], reshape: { shape: [1, 1000, 1, 1] }, label_filename: 'densenet_labels.txt' }]);
    expect(cfg.max_batch_size).toBe(0);
  });

  it('simple_sequence: control_input parses in full and the config validates (sequence batching, see sequences/)', () => {
    const { json } = pbtxtToJson(SIMPLE_SEQUENCE);
    expect(json.sequence_batching).toEqual({
      control_input: [
        { name: 'START', control: [{ kind: 'CONTROL_SEQUENCE_START', int32_false_true: [0, 1] }] },
        { name: 'READY', control: [{ kind: 'CONTROL_SEQUENCE_READY', int32_false_true: [0, 1] }] },
      ],
    });
    const cfg = parsePbtxtConfig('simple_sequence/config.pbtxt', SIMPLE_SEQUENCE);
    expect(cfg.sequence_batching?.control_input.map((c) => c.name)).toEqual(['START', 'READY']);
    expect(cfg.sequence_batching?.max_sequence_idle_microseconds).toBe(1_000_000);
  });

  it('an ensemble: input_map/output_map maps parse, ensemble_scheduling is refused by name', () => {
    const { json } = pbtxtToJson(ENSEMBLE);
    expect((json.ensemble_scheduling as any).step[1]).toEqual({
      model_name: 'image_classification_model', model_version: -1,
      input_map: { INPUT: 'preprocessed_image' }, output_map: { OUTPUT: 'CLASSIFICATION' },
    });
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', ENSEMBLE))).toMatch(/^c\.pbtxt line 6: field 'ensemble_scheduling' is not supported by gpu-node-agent \(ensembles are not supported; /);
  });

  it('model_warmup with several samples and inputs (map of messages, both entry forms)', () => {
    const cfg = parsePbtxtConfig('c.pbtxt', WARMUP);
    expect(cfg.model_warmup).toEqual([
      {
        name: 'regular sample', batch_size: 2, count: 3,
        inputs: { INPUT0: { data_type: 'TYPE_FP32', dims: [16], random_data: true }, INPUT1: { data_type: 'TYPE_INT32', dims: [16], zero_data: true } },
      },
      {
        name: 'from a file', batch_size: 1, count: 0,
        inputs: { INPUT0: { data_type: 'TYPE_FP32', dims: [16], input_data_file: 'raw_input0' }, INPUT1: { data_type: 'TYPE_INT32', dims: [16], zero_data: true } },
      },
    ]);
  });

  it('optimization blocks (accelerators with a string map, cuda, pinned memory), instance groups, parameters, version_policy', () => {
    const cfg = parsePbtxtConfig('c.pbtxt', OPTIMIZATION);
    expect(cfg.optimization).toEqual({
      graph: { level: 1 },
      execution_accelerators: {
        gpu_execution_accelerator: [{ name: 'tensorrt', parameters: { precision_mode: 'FP16', max_workspace_size_bytes: '1073741824' } }],
        cpu_execution_accelerator: [{ name: 'openvino', parameters: {} }],
      },
      cuda: { graphs: true, busy_wait_events: false, output_copy_stream: true },
      input_pinned_memory: { enable: false },
      output_pinned_memory: { enable: true },
      gather_kernel_buffer_threshold: 0,
      eager_batching: false,
    });
    expect(cfg.instance_group).toEqual([{ count: 2, kind: 'KIND_GPU', gpus: [0] }]);
    expect(cfg.parameters).toEqual({ intra_op_thread_count: { string_value: '2' }, execution_mode: { string_value: '0' } });
    expect(cfg.version_policy).toEqual({ specific: { versions: [1, 3] } });
  });

  it('round trip: config.pbtxt → effective JSON config keeps every field given and adds the defaults Triton prints', () => {
    const json = tritonConfigJson(parsePbtxtConfig('c.pbtxt', DENSENET), { provider: 'cpu' });
    expect(json).toMatchObject({
      name: 'densenet_onnx', platform: 'onnxruntime_onnx', max_batch_size: 0,
      input: [{ name: 'data_0', format: 'FORMAT_NCHW', dims: [3, 224, 224], reshape: { shape: [1, 3, 224, 224] }, optional: false }],
      output: [{ name: 'fc6_1', dims: [1000], reshape: { shape: [1, 1000, 1, 1] }, label_filename: 'densenet_labels.txt' }],
      instance_group: [{ kind: 'KIND_CPU', count: 1 }],
      version_policy: { latest: { num_versions: 1 } },
    });
    // The effective JSON is itself a valid config again.
    const { instance_group, optimization, ...rest } = json as any;
    expect(() => parseModelConfig('round trip', { ...rest, instance_group: instance_group.map((g: any) => ({ count: g.count, kind: g.kind })), optimization: { graph: optimization.graph } })).not.toThrow();
  });
});

describe('scalar forms of the text format', () => {
  it('hex, octal, exponent, f suffix, negatives, bools in every spelling, adjacent strings, enum numbers', () => {
    const { json } = pbtxtToJson(`
max_batch_size: 0x10
input { name: "a" "b" data_type: 11 dims: [ 010, -1 ] optional: t allow_ragged_batch: False }
dynamic_batching { max_queue_delay_microseconds: 1e3 preserve_ordering: 1 default_queue_policy { timeout_action: 1 } }
`);
    const seq = pbtxtToJson(`sequence_batching { control_input { name: "C" control { kind: CONTROL_SEQUENCE_READY fp32_false_true: [ 0.0, 1.5f ] bool_false_true: [ false, True ] } } }
`);
    expect(json.max_batch_size).toBe(16);
    expect(json.input).toEqual([{ name: 'ab', data_type: 'TYPE_FP32', dims: [8, -1], optional: true, allow_ragged_batch: false }]);
    expect(json.dynamic_batching).toEqual({ max_queue_delay_microseconds: 1000, preserve_ordering: true, default_queue_policy: { timeout_action: 'DELAY' } });
    expect((seq.json.sequence_batching as any).control_input[0].control[0]).toEqual({ kind: 'CONTROL_SEQUENCE_READY', fp32_false_true: [0, 1.5], bool_false_true: [false, true] });
  });

  it('a value of the wrong type names the field, the line and the type it takes', () => {
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'name: "m"\nmax_batch_size: "8"\n'))).toBe("c.pbtxt: line 2: field 'max_batch_size' takes an integer (int32), found \"8\"");
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'input { name: "x" dims: 1.5 }'))).toBe("c.pbtxt: line 1: field 'dims' takes an integer (int64), found 1.5");
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'input { optional: "yes" }'))).toBe("c.pbtxt: line 1: field 'optional' takes true or false, found \"yes\"");
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'input: "x"'))).toBe("c.pbtxt: line 1: field 'input' is a message: write input { ... }, found \"x\"");
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'input { format: 7 }'))).toMatch(/field 'format' takes one of FORMAT_NONE, FORMAT_NHWC, FORMAT_NCHW, found 7/);
  });

  it('two alternatives of a oneof are refused', () => {
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'version_policy { latest { num_versions: 1 } all { } }'))).toMatch(
      /fields 'latest' and 'all' of ModelVersionPolicy are alternatives/,
    );
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'model_warmup { name: "w" inputs { key: "x" value { zero_data: true random_data: true } } }'))).toMatch(
      /fields 'zero_data' and 'random_data' of ModelWarmup\.Input are alternatives/,
    );
  });
});

describe('fields Triton has and the agent does not implement', () => {
  it('are refused by name with what to do instead, in pbtxt and JSON alike', () => {
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'name: "m"\ncc_model_filenames { key: "7.5" value: "model_t4.onnx" }\n'))).toBe(
      "c.pbtxt line 2: field 'cc_model_filenames' is not supported by gpu-node-agent (one ONNX file serves every GPU; name it with default_model_filename)",
    );
    expect(errorOf(() => parseModelConfig('config.json', { input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [1], allow_ragged_batch: true }] }))).toBe(
      "config.json: field 'input[0].allow_ragged_batch' is not supported by gpu-node-agent (ragged batches are not supported: requests batch together only when their shapes match; remove it)",
    );
    expect(errorOf(() => parseModelConfig('config.json', { model_transaction_policy: { decoupled: true } }))).toContain("field 'model_transaction_policy' is not supported by gpu-node-agent (decoupled models");
    expect(errorOf(() => parseModelConfig('config.json', { instance_group: [{ kind: 'KIND_MODEL' }] }))).toContain("field 'instance_group[0].kind' is not supported by gpu-node-agent (KIND_MODEL");
    expect(errorOf(() => parseModelConfig('config.json', { dynamic_batching: { priority_queue_policy: { 1: { max_queue_size: 3 } } }, max_batch_size: 4 }))).toContain(
      "field 'dynamic_batching.priority_queue_policy' is not supported",
    );
  });

  it('left at their defaults they change nothing and are accepted', () => {
    const cfg = parsePbtxtConfig('c.pbtxt', `
input { name: "x" data_type: TYPE_FP32 dims: 1 allow_ragged_batch: false is_shape_tensor: false is_non_linear_format_io: false }
response_cache { enable: false }
model_transaction_policy { decoupled: false }
metric_tags: [ ]
batch_input [ ]
`);
    expect(cfg).toEqual({ input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [1] }] });
  });

  it('a name that is no field of Triton\'s message is still an unknown field (validation names it)', () => {
    expect(errorOf(() => parsePbtxtConfig('c.pbtxt', 'name: "m"\nmax_batch_sizes: 4\n'))).toMatch(/^c\.pbtxt line 2: field '\(root\)': unknown field 'max_batch_sizes'/);
  });
});
