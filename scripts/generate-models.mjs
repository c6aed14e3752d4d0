#!/usr/bin/env node
// Generates the bundled and test ONNX models into a Triton-style model repository:
//   <repoDir>/<name>/1/model.onnx
// Only model.onnx files are written; config.pbtxt / config.json are maintained by hand.
//
// Output is byte-for-byte reproducible: weights come from a seeded PRNG (mulberry32, seed derived
// from the model name), never Math.random, and the encoder is deterministic. A file whose bytes are
// already identical is left untouched, so re-running is cheap and does not bump mtimes.
//
// CLI:  node scripts/generate-models.mjs [repoDir]     (default ./models; bundled models only)
//       node scripts/generate-models.mjs <repoDir> --triton-examples   (NVIDIA's example set, with configs)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, buildModel, initializer, node, valueInfo } from './onnx-builder.mjs';

/**
 * @typedef {{ name: string, file: string, bytes: number, written: boolean }} WriteResult
 *   written=false means the file already had exactly these bytes.
 */

/**
 * mulberry32: tiny, fast 32-bit seeded PRNG; returns floats in [0, 1). src/sessions/warmup.ts
 * keeps its own copy (see the reason there): this file runs before the build.
 */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a 32-bit hash, used to give every model its own stable PRNG seed. */
function seedFromName(name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Write `bytes` to <repoDir>/<name>/1/model.onnx unless the file already holds exactly them. */
function writeModel(repoDir, name, bytes) {
  const file = path.join(repoDir, name, '1', 'model.onnx');
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let same = false;
  try {
    const st = fs.statSync(file);
    same = st.size === data.length && fs.readFileSync(file).equals(data);
  } catch {
    // missing file: write it
  }
  if (!same) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
  }
  return { name, file, bytes: data.length, written: !same };
}

/** Two-input elementwise model: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, shape [batch,16]. */
function addSubModel(graphName, elemType) {
  const dims = ['batch', 16];
  return buildModel({
    graphName,
    inputs: [valueInfo('INPUT0', elemType, dims), valueInfo('INPUT1', elemType, dims)],
    outputs: [valueInfo('OUTPUT0', elemType, dims), valueInfo('OUTPUT1', elemType, dims)],
    nodes: [node('Add', ['INPUT0', 'INPUT1'], ['OUTPUT0']), node('Sub', ['INPUT0', 'INPUT1'], ['OUTPUT1'])],
  });
}

/** INPUT0 -> Identity -> OUTPUT0 with the given element type and dims. */
function identityModel(graphName, elemType, dims) {
  return buildModel({
    graphName,
    inputs: [valueInfo('INPUT0', elemType, dims)],
    outputs: [valueInfo('OUTPUT0', elemType, dims)],
    nodes: [node('Identity', ['INPUT0'], ['OUTPUT0'])],
  });
}

/**
 * identity_bytes is both a bundled model and the `bytes` member of the identity_<dtype> set; both
 * generators write exactly these bytes ([batch,1], the bundled contract) so they never disagree.
 */
function identityBytesModel() {
  return identityModel('identity_bytes', DataType.STRING, ['batch', 1]);
}

/**
 * Float MLP x[batch,width] -> y[batch,width] made of `layers` Linear blocks
 * (MatMul + Add bias), each followed by Relu except the last.
 * Weights and biases ~ U(-1/sqrt(width), 1/sqrt(width)) (PyTorch's nn.Linear default), which keeps
 * activations O(1) and finite at any depth used here.
 * Layer l uses weight set l % distinctLayers, so compute can grow with depth while the file size
 * grows only with distinctLayers (initializers may feed several nodes in ONNX).
 */
function mlpModel(graphName, width, layers, distinctLayers = layers) {
  const rand = mulberry32(seedFromName(graphName));
  const bound = 1 / Math.sqrt(width);
  const uniform = (n) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * bound;
    return a;
  };
  const nodes = [];
  const initializers = [];
  let prev = 'x';
  const distinct = Math.max(1, Math.min(distinctLayers, layers));
  for (let d = 0; d < distinct; d++) {
    initializers.push(initializer(`W${d}`, DataType.FLOAT, [width, width], uniform(width * width)));
    initializers.push(initializer(`B${d}`, DataType.FLOAT, [width], uniform(width)));
  }
  for (let l = 0; l < layers; l++) {
    const last = l === layers - 1;
    const w = `W${l % distinct}`;
    const b = `B${l % distinct}`;
    nodes.push(node('MatMul', [prev, w], [`mm${l}`]));
    const out = last ? 'y' : `lin${l}`;
    nodes.push(node('Add', [`mm${l}`, b], [out]));
    if (!last) nodes.push(node('Relu', [out], [`h${l}`]));
    prev = `h${l}`;
  }
  return buildModel({
    graphName,
    inputs: [valueInfo('x', DataType.FLOAT, ['batch', width])],
    outputs: [valueInfo('y', DataType.FLOAT, ['batch', width])],
    nodes,
    initializers,
  });
}

/**
 * Bundled models:
 *   add_sub        FLOAT INPUT0,INPUT1 [batch,16] -> OUTPUT0 = sum, OUTPUT1 = difference
 *   simple         same as add_sub in INT32 (mirrors Triton's "simple" example model)
 *   identity_bytes STRING INPUT0 [batch,1] -> OUTPUT0
 *   fixed_scale    FLOAT X [2,8] (fixed shape, no batch dim) -> Y = X * 2
 *   mlp            FLOAT x [batch,256] -> y [batch,256], 3 Linear layers (Relu between)
 * @param {string} repoDir
 * @returns {Promise<WriteResult[]>}
 */
export async function generateBundledModels(repoDir) {
  const fixedScale = buildModel({
    graphName: 'fixed_scale',
    inputs: [valueInfo('X', DataType.FLOAT, [2, 8])],
    outputs: [valueInfo('Y', DataType.FLOAT, [2, 8])],
    nodes: [node('Mul', ['X', 'scale'], ['Y'])],
    initializers: [initializer('scale', DataType.FLOAT, [], [2])],
  });
  return [
    writeModel(repoDir, 'add_sub', addSubModel('add_sub', DataType.FLOAT)),
    writeModel(repoDir, 'simple', addSubModel('simple', DataType.INT32)),
    writeModel(repoDir, 'identity_bytes', identityBytesModel()),
    writeModel(repoDir, 'fixed_scale', fixedScale),
    writeModel(repoDir, 'mlp', mlpModel('mlp', 256, 3)),
  ];
}

/**
 * KServe V2 datatype suffix -> ONNX element type for the identity_<dtype> models.
 * All 13 run through Identity on onnxruntime-node 1.29.0 CPU (checked by test/models.test.ts),
 * so none had to be dropped. BF16 is left out on purpose: onnxruntime-node has no bfloat16
 * tensor type to feed it with.
 * Caveat for `bytes`: onnxruntime-node string tensors are NUL-terminated C strings, so an element
 * is cut at its first U+0000 ('a\u0000b' comes back as 'a'); arbitrary binary BYTES do not survive.
 */
export const IDENTITY_DTYPES = Object.freeze({
  bool: DataType.BOOL,
  int8: DataType.INT8,
  int16: DataType.INT16,
  int32: DataType.INT32,
  int64: DataType.INT64,
  uint8: DataType.UINT8,
  uint16: DataType.UINT16,
  uint32: DataType.UINT32,
  uint64: DataType.UINT64,
  fp16: DataType.FLOAT16,
  fp32: DataType.FLOAT,
  fp64: DataType.DOUBLE,
  bytes: DataType.STRING,
});

/**
 * One Identity model per datatype: identity_<dtype>, INPUT0 [batch,4] -> OUTPUT0.
 * Exception: identity_bytes is [batch,1] because that name is also the bundled model
 * (see identityBytesModel); writing it from either generator yields the same file.
 * @param {string} repoDir
 * @returns {Promise<WriteResult[]>}
 */
export async function generateIdentityModels(repoDir) {
  return Object.entries(IDENTITY_DTYPES).map(([dtype, elemType]) => {
    const name = `identity_${dtype}`;
    const bytes = dtype === 'bytes' ? identityBytesModel() : identityModel(name, elemType, ['batch', 4]);
    return writeModel(repoDir, name, bytes);
  });
}

/**
 * identity_var: FP32 INPUT0 [batch, n] -> OUTPUT0 with a variable second dimension, so requests
 * of different widths exist (the batcher must never merge them).
 * @param {string} repoDir
 * @returns {Promise<WriteResult>}
 */
export async function generateVariableIdentityModel(repoDir) {
  return writeModel(repoDir, 'identity_var', identityModel('identity_var', DataType.FLOAT, ['batch', 'n']));
}

/**
 * A compute-bound MLP for benchmarks (x [batch,width] -> y [batch,width]).
 * Defaults: 1024 wide, 20 layers cycling through 4 distinct weight sets, so a file of ~17 MB does
 * ~1.34 GFLOP per batch of 32. Measured with onnxruntime-node 1.29.0 on a 2-core AVX-512 Xeon
 * (default session options, quiet runs): ~2.1 ms at batch 1, ~8.5-9 ms at batch 32, leaving margin
 * over the >= 5 ms batch-32 target. Without weight sharing the ~40 MB size budget caps batch-32 work
 * at ~4 ms on that machine (1024 x 8 layers, 33.6 MB, measured ~3.6 ms).
 * @param {string} repoDir
 * @param {string} [name]
 * @param {number} [width]  hidden size (input and output width too)
 * @param {number} [layers]  Linear blocks; compute scales with this
 * @param {number} [distinctLayers]  distinct weight sets; file size ~= distinctLayers * width^2 * 4 bytes
 * @returns {Promise<WriteResult>}
 */
export async function generateComputeModel(repoDir, name = 'mlp_heavy', width = 1024, layers = 20, distinctLayers = 4) {
  return writeModel(repoDir, name, mlpModel(name, width, layers, distinctLayers));
}

/**
 * A model file that is not valid ONNX: the first half of add_sub followed by fixed garbage,
 * so InferenceSession.create must fail (protobuf parse error). Deterministic like the rest.
 * @param {string} repoDir
 * @returns {Promise<WriteResult>}
 */
export async function generateCorruptModel(repoDir, name = 'corrupt') {
  const good = addSubModel('add_sub', DataType.FLOAT);
  const garbage = Buffer.from('\xff\xff\xff\xff not an onnx model \x00\xff', 'latin1');
  const bytes = Buffer.concat([Buffer.from(good.subarray(0, good.length >> 1)), garbage]);
  return writeModel(repoDir, name, bytes);
}

/** Write a text file unless it already holds exactly that text (like writeModel). */
function writeText(file, text) {
  let same = false;
  try {
    same = fs.readFileSync(file, 'utf8') === text;
  } catch {
    // missing: write it
  }
  if (!same) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  return { name: path.basename(path.dirname(file)), file, bytes: Buffer.byteLength(text), written: !same };
}

/**
 * `OUTPUT0 = INPUT0 + INPUT1`, `OUTPUT1 = INPUT0 - INPUT1` computed in INT32 between Casts:
 * simple_string (STRING in and out: Cast string→int32, add/sub, Cast back, as NVIDIA's
 * simple_string does) and simple_int8 (INT8; onnxruntime's Add has no int8 kernel).
 */
function castAddSubModel(graphName, elemType) {
  const dims = ['batch', 16];
  return buildModel({
    graphName,
    inputs: [valueInfo('INPUT0', elemType, dims), valueInfo('INPUT1', elemType, dims)],
    outputs: [valueInfo('OUTPUT0', elemType, dims), valueInfo('OUTPUT1', elemType, dims)],
    nodes: [
      node('Cast', ['INPUT0'], ['a'], { to: DataType.INT32 }),
      node('Cast', ['INPUT1'], ['b'], { to: DataType.INT32 }),
      node('Add', ['a', 'b'], ['sum']),
      node('Sub', ['a', 'b'], ['diff']),
      node('Cast', ['sum'], ['OUTPUT0'], { to: elemType }),
      node('Cast', ['diff'], ['OUTPUT1'], { to: elemType }),
    ],
  });
}

/**
 * A densenet-shaped image classifier (NVIDIA's quickstart `densenet_onnx` has this interface):
 * data_0 FP32 [N,3,224,224] → global average pool → 1×1 conv with seeded weights →
 * softmax over the classes → fc6_1 FP32 [N,1000,1,1]. Not a trained network: the point is the
 * shapes, the config (reshape, format, label_filename) and the clients around it.
 */
function densenetShapedModel(graphName) {
  const rand = mulberry32(seedFromName(graphName));
  const w = new Float32Array(1000 * 3);
  for (let i = 0; i < w.length; i++) w[i] = rand() * 2 - 1;
  const bias = new Float32Array(1000);
  for (let i = 0; i < bias.length; i++) bias[i] = (rand() * 2 - 1) * 0.1;
  return buildModel({
    graphName,
    inputs: [valueInfo('data_0', DataType.FLOAT, ['N', 3, 224, 224])],
    outputs: [valueInfo('fc6_1', DataType.FLOAT, ['N', 1000, 1, 1])],
    nodes: [
      node('GlobalAveragePool', ['data_0'], ['pooled']),
      node('Conv', ['pooled', 'W', 'B'], ['logits']),
      node('Softmax', ['logits'], ['fc6_1'], { axis: 1 }),
    ],
    initializers: [initializer('W', DataType.FLOAT, [1000, 3, 1, 1], w), initializer('B', DataType.FLOAT, [1000], bias)],
  });
}

/**
 * NVIDIA's config.pbtxt files for its example models (docs/examples/model_repository of
 * triton-inference-server/server), with the platform set to ONNX where NVIDIA's file names a
 * TensorFlow one (simple_string, simple_identity); densenet_onnx's is NVIDIA's text as it is.
 */
export const TRITON_EXAMPLE_CONFIGS = Object.freeze({
  simple_int8: `name: "simple_int8"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "INPUT0"
    data_type: TYPE_INT8
    dims: [ 16 ]
  },
  {
    name: "INPUT1"
    data_type: TYPE_INT8
    dims: [ 16 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_INT8
    dims: [ 16 ]
  },
  {
    name: "OUTPUT1"
    data_type: TYPE_INT8
    dims: [ 16 ]
  }
]
`,
  simple_string: `
name: "simple_string"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "INPUT0"
    data_type: TYPE_STRING
    dims: [ 16 ]
  },
  {
    name: "INPUT1"
    data_type: TYPE_STRING
    dims: [ 16 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_STRING
    dims: [ 16 ]
  },
  {
    name: "OUTPUT1"
    data_type: TYPE_STRING
    dims: [ 16 ]
  }
]
`,
  simple_identity: `
name: "simple_identity"
platform: "onnxruntime_onnx"
max_batch_size: 8

input [
  {
    name: "INPUT0"
    data_type: TYPE_STRING
    dims: [ -1 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_STRING
    dims: [ -1 ]
  }
]
`,
  densenet_onnx: `name: "densenet_onnx"
platform: "onnxruntime_onnx"
max_batch_size : 1
input [
  {
    name: "data_0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
  }
]
output [
  {
    name: "fc6_1"
    data_type: TYPE_FP32
    dims: [ 1000 ]
    reshape { shape: [ 1000, 1, 1 ] }
    label_filename: "densenet_labels.txt"
  }
]`,
});

/**
 * NVIDIA's example model set, as ONNX, with NVIDIA's configs: simple (the bundled INT32
 * add/sub), simple_int8, simple_string, simple_identity and densenet_onnx (densenet-shaped,
 * with a 1000-line densenet_labels.txt). Configs and labels are written too.
 * @param {string} repoDir
 * @returns {Promise<WriteResult[]>}
 */
export async function generateTritonExampleModels(repoDir) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const simpleConfig = fs.readFileSync(path.join(here, '..', 'models', 'simple', 'config.pbtxt'), 'utf8');
  const labels = Array.from({ length: 1000 }, (_, i) => `CLASS_${String(i).padStart(3, '0')}`).join('\n') + '\n';
  return [
    writeModel(repoDir, 'simple', addSubModel('simple', DataType.INT32)),
    writeText(path.join(repoDir, 'simple', 'config.pbtxt'), simpleConfig),
    writeModel(repoDir, 'simple_int8', castAddSubModel('simple_int8', DataType.INT8)),
    writeModel(repoDir, 'simple_string', castAddSubModel('simple_string', DataType.STRING)),
    writeModel(repoDir, 'simple_identity', identityModel('simple_identity', DataType.STRING, ['batch', 'n'])),
    writeModel(repoDir, 'densenet_onnx', densenetShapedModel('densenet_onnx')),
    writeText(path.join(repoDir, 'densenet_onnx', 'densenet_labels.txt'), labels),
    ...Object.entries(TRITON_EXAMPLE_CONFIGS).map(([name, text]) => writeText(path.join(repoDir, name, 'config.pbtxt'), text)),
  ];
}

/**
 * reshape_by_input: data FP32 [4] reshaped to the INT64 [2] `shape` input → out. All dims are
 * known and numeric, so the automatic warm-up runs it, with zeros: Reshape to [0, 0] copies
 * dimensions the rank-1 input does not have, and onnxruntime fails. Real inputs ([2, 2]) work:
 * the model is good, the zero warm-up is not. Tests use it for the warm-up rule.
 * @param {string} repoDir
 * @returns {Promise<WriteResult>}
 */
export async function generateWarmupTrapModel(repoDir, name = 'reshape_by_input') {
  return writeModel(repoDir, name, buildModel({
    graphName: name,
    inputs: [valueInfo('data', DataType.FLOAT, [4]), valueInfo('shape', DataType.INT64, [2])],
    outputs: [valueInfo('out', DataType.FLOAT, ['a', 'b'])],
    nodes: [node('Reshape', ['data', 'shape'], ['out'])],
  }));
}

async function main(argv) {
  const repoDir = path.resolve(argv.find((a) => !a.startsWith('--')) ?? 'models');
  if (argv.includes('--triton-examples')) {
    for (const r of await generateTritonExampleModels(repoDir)) console.log(`${r.written ? 'wrote    ' : 'unchanged'} ${path.relative(process.cwd(), r.file) || r.file} (${r.bytes} bytes)`);
    return;
  }
  for (const r of await generateBundledModels(repoDir)) {
    const rel = path.relative(process.cwd(), r.file) || r.file;
    console.log(`${r.written ? 'wrote    ' : 'unchanged'} ${rel} (${r.bytes} bytes)`);
  }
}

// Run as CLI only when executed directly, not when imported (e.g. by tests).
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
