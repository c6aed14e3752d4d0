import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODEL_PARAMETERS, parseModelConfig, type ModelConfig } from '../../src/repository/model-config.js';
import { parsePbtxtConfig } from '../../src/repository/pbtxt-config.js';
import { ModelRepository, type RepositoryModel } from '../../src/repository/repository.js';

/** The error message of `fn`, which must throw. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a rejection');
}

const FULL_JSON = {
  name: 'resnet50',
  platform: 'onnxruntime_onnx',
  backend: 'onnxruntime',
  max_batch_size: 8,
  input: [{ name: 'input', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [3, 224, 224] }],
  output: [{ name: 'output', data_type: 'TYPE_FP32', dims: [-1, 1000], label_filename: 'labels.txt' }],
  dynamic_batching: {
    preferred_batch_size: [4, 8],
    max_queue_delay_microseconds: 100,
    preserve_ordering: true,
    priority_levels: 2,
    default_priority_level: 1,
    default_queue_policy: {
      timeout_action: 'DELAY',
      default_timeout_microseconds: 1000000,
      allow_timeout_override: true,
      max_queue_size: 64,
    },
  },
  instance_group: [{ name: 'g', count: 2, kind: 'KIND_GPU', gpus: [0, 1] }],
  parameters: {
    intra_op_thread_count: { string_value: '4' },
    enable_mem_arena: { string_value: '1' },
  },
  version_policy: { latest: { num_versions: 2 } },
  default_model_filename: 'resnet.onnx',
  optimization: { graph: { level: 1 } },
};

const FULL_PBTXT = `# ResNet-50 exported to ONNX
name: "resnet50"
platform: "onnxruntime_onnx"
backend: "onnxruntime"
max_batch_size: 8
input [
  {
    name: "input"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ -1, 1000 ]
    label_filename: "labels.txt"
  }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  preserve_ordering: true
  priority_levels: 2
  default_priority_level: 1
  default_queue_policy {
    timeout_action: DELAY
    default_timeout_microseconds: 1000000
    allow_timeout_override: true
    max_queue_size: 64
  }
}
instance_group [ { name: "g", count: 2, kind: KIND_GPU, gpus: [ 0, 1 ] } ]
parameters { key: "intra_op_thread_count" value: { string_value: "4" } }
parameters { key: "enable_mem_arena" value: { string_value: "1" } }
version_policy: { latest: { num_versions: 2 } }
default_model_filename: "resnet.onnx"
optimization { graph { level: 1 } }
`;

describe('parseModelConfig (JSON form)', () => {
  it('accepts a full Triton config unchanged', () => {
    expect(parseModelConfig('config.json', FULL_JSON)).toEqual(FULL_JSON);
  });

  it("accepts Triton's int64-as-string fields", () => {
    const cfg = parseModelConfig('config.json', {
      max_batch_size: '8',
      input: [{ name: 'x', data_type: 'TYPE_INT64', dims: ['-1', '16'] }],
      dynamic_batching: {
        preferred_batch_size: ['2', 4],
        max_queue_delay_microseconds: '500',
        default_queue_policy: { default_timeout_microseconds: '2000000', max_queue_size: '10' },
      },
      instance_group: [{ count: '3', gpus: ['1'] }],
      version_policy: { specific: { versions: ['1', '3'] } },
    });
    expect(cfg.max_batch_size).toBe(8);
    expect(cfg.input![0]!.dims).toEqual([-1, 16]);
    expect(cfg.dynamic_batching!.preferred_batch_size).toEqual([2, 4]);
    expect(cfg.dynamic_batching!.max_queue_delay_microseconds).toBe(500);
    expect(cfg.dynamic_batching!.default_queue_policy.default_timeout_microseconds).toBe(2000000);
    expect(cfg.dynamic_batching!.default_queue_policy.max_queue_size).toBe(10);
    expect(cfg.instance_group).toEqual([{ count: 3, kind: 'KIND_AUTO', gpus: [1] }]);
    expect(cfg.version_policy).toEqual({ specific: { versions: [1, 3] } });
  });

  it('an empty config is valid and stays empty', () => {
    expect(parseModelConfig('x', {})).toEqual({});
  });

  it('fills defaults inside the sections that are given', () => {
    const cfg = parseModelConfig('config.json', {
      max_batch_size: 4,
      dynamic_batching: {},
      instance_group: [{}],
      version_policy: { latest: {} },
    });
    expect(cfg.dynamic_batching).toEqual({
      preferred_batch_size: [],
      max_queue_delay_microseconds: 0,
      preserve_ordering: false,
      priority_levels: 0,
      default_priority_level: 0,
      default_queue_policy: {
        timeout_action: 'REJECT',
        default_timeout_microseconds: 0,
        allow_timeout_override: false,
        max_queue_size: 0,
      },
    });
    expect(cfg.instance_group).toEqual([{ count: 1, kind: 'KIND_AUTO' }]);
    expect(cfg.version_policy).toEqual({ latest: { num_versions: 1 } });
  });

  it('accepts the all and specific version policies', () => {
    expect(parseModelConfig('c', { version_policy: { all: {} } }).version_policy).toEqual({ all: {} });
    expect(parseModelConfig('c', { version_policy: { specific: { versions: [2] } } }).version_policy).toEqual({
      specific: { versions: [2] },
    });
  });

  it('accepts every known model parameter', () => {
    const parameters = Object.fromEntries(Object.keys(MODEL_PARAMETERS).map((k) => [k, { string_value: '1' }]));
    expect(parseModelConfig('c', { parameters }).parameters).toEqual(parameters);
  });

  it('refuses an unknown field, naming it and saying to remove it', () => {
    expect(errorOf(() => parseModelConfig('m/config.json', { max_batch_sizes: 4 }))).toMatch(
      /^m\/config\.json: field '\(root\)': unknown field 'max_batch_sizes'; remove it/,
    );
    expect(errorOf(() => parseModelConfig('c', { input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [1], dim: [1] }] }))).toContain(
      "c: field 'input[0]': unknown field 'dim'; remove it",
    );
    expect(errorOf(() => parseModelConfig('c', { a: 1, b: 2 }))).toContain("unknown fields 'a', 'b'; remove them");
    expect(errorOf(() => parseModelConfig('c', { dynamic_batching: { max_queue_delay: 5 } }))).toContain(
      "field 'dynamic_batching': unknown field 'max_queue_delay'",
    );
  });

  it('refuses a wrong data_type, listing the valid ones', () => {
    const msg = errorOf(() => parseModelConfig('c', { output: [{ name: 'y', data_type: 'TYPE_FLOAT', dims: [1] }] }));
    expect(msg).toContain("c: field 'output[0].data_type': data_type must be one of TYPE_BOOL,");
    expect(msg).toContain('TYPE_STRING');
    expect(errorOf(() => parseModelConfig('c', { output: [{ name: 'y', data_type: 'TYPE_BF16', dims: [1] }] }))).toContain(
      'data_type must be one of',
    );
  });

  it('refuses dims that are neither -1 nor positive', () => {
    expect(errorOf(() => parseModelConfig('c', { input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [3, 0] }] }))).toContain(
      "field 'input[0].dims[1]': a dimension is -1 (variable) or a positive size",
    );
    expect(errorOf(() => parseModelConfig('c', { input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [-2] }] }))).toContain(
      "field 'input[0].dims[0]'",
    );
  });

  it('refuses dynamic_batching with max_batch_size 0', () => {
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: 0, dynamic_batching: {} }))).toBe(
      "c: field 'dynamic_batching': dynamic_batching needs max_batch_size ≥ 1; set max_batch_size or remove dynamic_batching",
    );
  });

  it('refuses a preferred batch size above max_batch_size', () => {
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: 8, dynamic_batching: { preferred_batch_size: [4, 16] } }))).toBe(
      "c: field 'dynamic_batching.preferred_batch_size': preferred batch size 16 is larger than max_batch_size 8; lower it or raise max_batch_size",
    );
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: 8, dynamic_batching: { preferred_batch_size: [0] } }))).toContain(
      "field 'dynamic_batching.preferred_batch_size[0]'",
    );
  });

  it('refuses default_priority_level above priority_levels', () => {
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: 2, dynamic_batching: { priority_levels: 2, default_priority_level: 3 } }))).toContain(
      "field 'dynamic_batching.default_priority_level': default_priority_level 3 exceeds priority_levels 2",
    );
  });

  it('refuses an unknown parameter key, listing the known ones', () => {
    const msg = errorOf(() => parseModelConfig('c', { parameters: { gpu_mem_limit: { string_value: '1' } } }));
    expect(msg).toContain("c: field 'parameters.gpu_mem_limit': unknown parameter 'gpu_mem_limit'; known: execution_providers,");
    expect(errorOf(() => parseModelConfig('c', { parameters: { warmup: '1' } }))).toContain("field 'parameters.warmup'");
  });

  it('refuses a platform or backend that is not ONNX Runtime', () => {
    expect(errorOf(() => parseModelConfig('c', { platform: 'tensorrt_plan' }))).toBe(
      "c: field 'platform': platform must be 'onnxruntime_onnx' (an ONNX model) or 'ocr_pipeline' (a pipeline of models)",
    );
    expect(errorOf(() => parseModelConfig('c', { backend: 'python' }))).toBe("c: field 'backend': backend must be 'onnxruntime'");
  });

  it('refuses other malformed values', () => {
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: -1 }))).toContain("field 'max_batch_size'");
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: '8x' }))).toContain("field 'max_batch_size'");
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: 1.5 }))).toContain("field 'max_batch_size'");
    expect(errorOf(() => parseModelConfig('c', { default_model_filename: '../x.onnx' }))).toContain('a file name, not a path');
    expect(errorOf(() => parseModelConfig('c', { instance_group: [{ count: 0 }] }))).toContain("field 'instance_group[0].count'");
    expect(errorOf(() => parseModelConfig('c', { instance_group: [{ kind: 'KIND_MODEL' }] }))).toContain("field 'instance_group[0].kind'");
    expect(errorOf(() => parseModelConfig('c', { version_policy: { latest: {}, all: {} } }))).toContain("field 'version_policy'");
    expect(errorOf(() => parseModelConfig('c', { input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [1], is_shape_tensor: true }] }))).toContain(
      "c: field 'input[0].is_shape_tensor' is not supported by gpu-node-agent (a TensorRT feature",
    );
  });

  it('refuses duplicate tensor names', () => {
    const t = { name: 'x', data_type: 'TYPE_FP32', dims: [1] };
    expect(errorOf(() => parseModelConfig('c', { input: [t, t] }))).toBe("c: field 'input[1].name': duplicate input name 'x'");
  });
});

describe('parsePbtxtConfig', () => {
  it('gives the same config as the JSON form', () => {
    expect(parsePbtxtConfig('config.pbtxt', FULL_PBTXT)).toEqual(parseModelConfig('config.json', FULL_JSON));
  });

  it('single values of repeated fields become lists', () => {
    const cfg = parsePbtxtConfig('config.pbtxt', `
max_batch_size: 4
input { name: "x" data_type: TYPE_INT64 dims: 16 }
input { name: "y" data_type: TYPE_STRING dims: [ ] }
dynamic_batching { preferred_batch_size: 2 }
version_policy { specific { versions: 3 versions: 5 } }
`);
    expect(cfg.input).toEqual([
      { name: 'x', data_type: 'TYPE_INT64', dims: [16] },
      { name: 'y', data_type: 'TYPE_STRING', dims: [] },
    ]);
    expect(cfg.dynamic_batching!.preferred_batch_size).toEqual([2]);
    expect(cfg.version_policy).toEqual({ specific: { versions: [3, 5] } });
  });

  it('an empty file is an empty config', () => {
    expect(parsePbtxtConfig('config.pbtxt', '# nothing\n')).toEqual({});
  });

  it('validation errors carry the file, the line and the field path', () => {
    const text = FULL_PBTXT.replace('data_type: TYPE_FP32\n    format', 'data_type: TYPE_FLOAT\n    format');
    expect(errorOf(() => parsePbtxtConfig('m/config.pbtxt', text))).toMatch(
      /^m\/config\.pbtxt line 9: field 'input\[0\]\.data_type': data_type must be one of /,
    );
    const pref = FULL_PBTXT.replace('preferred_batch_size: [ 4, 8 ]', 'preferred_batch_size: [ 4, 16 ]');
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', pref))).toBe(
      "config.pbtxt line 23: field 'dynamic_batching.preferred_batch_size': preferred batch size 16 is larger than max_batch_size 8; lower it or raise max_batch_size",
    );
    const policy = FULL_PBTXT.replace('timeout_action: DELAY', 'timeout_action: DROP');
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', policy))).toContain(
      "config.pbtxt line 29: field 'dynamic_batching.default_queue_policy.timeout_action'",
    );
    const dim = FULL_PBTXT.replace('dims: [ -1, 1000 ]', 'dims: [ -1, 0 ]');
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', dim))).toBe(
      "config.pbtxt line 18: field 'output[0].dims[1]': a dimension is -1 (variable) or a positive size",
    );
  });

  it('points at the line of the second element of a repeated message', () => {
    const text = `input { name: "a" data_type: TYPE_FP32 dims: 1 }
input {
  name: "b"
  data_type: TYPE_FLOAT
  dims: 1
}
`;
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', text))).toMatch(/^config\.pbtxt line 4: field 'input\[1\]\.data_type'/);
  });

  it('an unknown field names its line and says to remove it', () => {
    const text = `name: "m"\nmax_batch_size: 2\nmax_batch_sizes: 4\n`;
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', text))).toMatch(
      /^config\.pbtxt line 3: field '\(root\)': unknown field 'max_batch_sizes'; remove it/,
    );
    const nested = `input [\n  {\n    name: "x"\n    data_type: TYPE_FP32\n    dims: [ 1 ]\n    dim: [ 1 ]\n  }\n]\n`;
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', nested))).toMatch(
      /^config\.pbtxt line 6: field 'input\[0\]': unknown field 'dim'; remove it/,
    );
  });

  it('an unknown parameter names the line of its own entry', () => {
    const text = `parameters { key: "intra_op_thread_count" value: { string_value: "4" } }
parameters { key: "enable_mem_arena" value: { string_value: "1" } }
parameters { key: "gpu_mem_limit" value: { string_value: "1" } }
`;
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', text))).toMatch(
      /^config\.pbtxt line 3: field 'parameters\.gpu_mem_limit': unknown parameter 'gpu_mem_limit'/,
    );
    const value = `parameters { key: "warmup" value: { string_value: "1" } }
parameters {
  key: "enable_mem_arena"
  value: { string_values: "1" }
}
`;
    const msg = errorOf(() => parsePbtxtConfig('config.pbtxt', value));
    expect(msg).toContain("config.pbtxt line 4: field 'parameters.enable_mem_arena': unknown field 'string_values'; remove it");
    expect(msg).toContain("config.pbtxt line 4: field 'parameters.enable_mem_arena.string_value': ");
  });

  it('refuses a single-valued field given twice, with both lines', () => {
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', 'name: "m"\nmax_batch_size: 4\n\nmax_batch_size: 8\n'))).toBe(
      "config.pbtxt: field 'max_batch_size' is given 2 times (lines 2, 4); it takes one value",
    );
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', 'dynamic_batching {\n  max_queue_delay_microseconds: 1\n  max_queue_delay_microseconds: 2\n}\n'))).toContain(
      "field 'max_queue_delay_microseconds' is given 2 times (lines 2, 3)",
    );
  });

  it('refuses malformed parameters entries', () => {
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', 'name: "m"\nparameters { key: "warmup" }\n'))).toBe(
      "config.pbtxt: line 2: field 'parameters' entries are written { key: \"...\" value: { string_value: \"...\" } }",
    );
  });

  it('reports syntax errors with the file, line and column', () => {
    expect(errorOf(() => parsePbtxtConfig('config.pbtxt', 'name: "m"\nmax_batch_size 4\n'))).toBe(
      "config.pbtxt: line 2, column 16: expected ':' or '{' after field name 'max_batch_size', found '4'",
    );
  });
});

describe('ModelRepository', () => {
  let root: string;
  let repo: ModelRepository;

  const mk = (...parts: string[]) => fs.mkdirSync(path.join(root, ...parts), { recursive: true });
  const write = (file: string, text: string) => fs.writeFileSync(path.join(root, file), text);

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-repo-'));
    for (const v of ['1', '2', '9', '10', '0', 'abc', '.git']) mk('alpha', v);
    write('alpha/3', 'a file, not a version folder');
    write('alpha/config.pbtxt', 'name: "alpha"\nmax_batch_size: 4\nversion_policy { all { } }\n');
    mk('both', '1');
    write('both/config.pbtxt', '');
    write('both/config.json', '{}');
    mk('renamed', '1');
    write('renamed/config.json', '{"name": "other"}');
    mk('plain', '1');
    mk('badjson');
    write('badjson/config.json', '{"max_batch_size": ');
    mk('invalid');
    write('invalid/config.json', '{"max_batch_size": -3}');
    mk('.hidden', '1');
    mk('bad name', '1');
    mk('_underscore', '1');
    write('file.onnx', 'not a folder');
    repo = new ModelRepository(root);
  });

  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('lists model folders with valid names, sorted, ignoring hidden entries and files', async () => {
    const models = await repo.list();
    expect(models.map((m) => m.name)).toEqual(['alpha', 'badjson', 'both', 'invalid', 'plain', 'renamed']);
    expect(models[0]!.dir).toBe(path.join(root, 'alpha'));
  });

  it('versions are numeric folders > 0, sorted numerically (10 after 9)', async () => {
    const alpha = await repo.find('alpha');
    expect(alpha?.versions).toEqual([1, 2, 9, 10]);
    expect((await repo.find('badjson'))?.versions).toEqual([]);
  });

  it('find() refuses invalid names, paths and missing or non-folder entries', async () => {
    expect(await repo.find('nope')).toBeUndefined();
    expect(await repo.find('file.onnx')).toBeUndefined();
    expect(await repo.find('../alpha')).toBeUndefined();
    expect(await repo.find('.hidden')).toBeUndefined();
    expect(await repo.find('')).toBeUndefined();
  });

  it('has() is true only for a folder of a valid name', () => {
    expect(repo.has('alpha')).toBe(true);
    expect(repo.has('nope')).toBe(false);
    expect(repo.has('file.onnx')).toBe(false);
    expect(repo.has('.hidden')).toBe(false);
    expect(repo.has('bad name')).toBe(false);
    expect(repo.has('alpha/1')).toBe(false);
    expect(repo.has('..')).toBe(false);
  });

  it('reads config.pbtxt', async () => {
    const alpha = (await repo.find('alpha'))!;
    const { config, source } = await repo.readConfig(alpha);
    expect(source).toBe(path.join(root, 'alpha', 'config.pbtxt'));
    expect(config).toEqual({ name: 'alpha', max_batch_size: 4, version_policy: { all: {} } });
  });

  it('a model without a config file gets an empty config and no source', async () => {
    const { config, source } = await repo.readConfig((await repo.find('plain'))!);
    expect(config).toEqual({});
    expect(source).toBeUndefined();
  });

  it('refuses both config.pbtxt and config.json', async () => {
    const msg = await rejection(repo.readConfig((await repo.find('both'))!));
    expect(msg).toBe(`${path.join(root, 'both')} has both config.pbtxt and config.json; keep one of them`);
  });

  it('refuses a config name that differs from the folder', async () => {
    const msg = await rejection(repo.readConfig((await repo.find('renamed'))!));
    expect(msg).toBe(
      `${path.join(root, 'renamed', 'config.json')}: field 'name' is 'other' but the model folder is 'renamed'; make them equal or remove 'name'`,
    );
  });

  it('reports invalid JSON and invalid configs with the file', async () => {
    const file = path.join(root, 'badjson', 'config.json');
    expect(await rejection(repo.readConfig((await repo.find('badjson'))!))).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON: `),
    );
    expect(await rejection(repo.readConfig((await repo.find('invalid'))!))).toContain(
      `${path.join(root, 'invalid', 'config.json')}: field 'max_batch_size'`,
    );
  });

  it('list() fails with a hint when the root cannot be read', async () => {
    const msg = await rejection(new ModelRepository(path.join(root, 'missing')).list());
    expect(msg).toContain(`cannot read the model repository ${path.join(root, 'missing')}`);
    expect(msg).toContain('set --models');
  });

  describe('servedVersions', () => {
    const model: RepositoryModel = { name: 'm', dir: '/r/m', versions: [1, 2, 9, 10] };
    const served = (version_policy?: unknown) =>
      ModelRepository.servedVersions(model, parseModelConfig('c', version_policy === undefined ? {} : { version_policy }));

    it('defaults to the latest version', () => {
      expect(served()).toEqual([10]);
      expect(served({ latest: {} })).toEqual([10]);
    });

    it('latest N', () => {
      expect(served({ latest: { num_versions: 2 } })).toEqual([9, 10]);
      expect(served({ latest: { num_versions: 10 } })).toEqual([1, 2, 9, 10]);
    });

    it('all', () => {
      expect(served({ all: {} })).toEqual([1, 2, 9, 10]);
    });

    it('specific: only those present', () => {
      expect(served({ specific: { versions: [10, 3, 1] } })).toEqual([10, 1]);
      expect(served({ specific: { versions: [4] } })).toEqual([]);
    });

    it('no versions serves nothing', () => {
      expect(ModelRepository.servedVersions({ ...model, versions: [] }, {} as ModelConfig)).toEqual([]);
    });
  });

  it('modelFile uses default_model_filename or model.onnx', () => {
    const model: RepositoryModel = { name: 'm', dir: path.join(root, 'm'), versions: [1] };
    expect(ModelRepository.modelFile(model, 3, {} as ModelConfig)).toBe(path.join(root, 'm', '3', 'model.onnx'));
    expect(ModelRepository.modelFile(model, 3, { default_model_filename: 'x.onnx' } as ModelConfig)).toBe(
      path.join(root, 'm', '3', 'x.onnx'),
    );
  });
});
