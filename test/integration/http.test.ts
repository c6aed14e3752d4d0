/**
 * The HTTP API end to end: real onnxruntime (CPU) on generated models, real HTTP on 127.0.0.1.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryBody, getJson, makeRepository, postJson, readBinaryResponse, startAgent, type RunningAgent } from '../helpers/agent.js';

let repo: string;
let agent: RunningAgent;
let url: string;

const ones = Array.from({ length: 16 }, () => 1);
const iota = Array.from({ length: 16 }, (_, i) => i);

beforeAll(async () => {
  repo = await makeRepository();
  agent = await startAgent(repo);
  url = agent.url;
});

afterAll(async () => {
  await agent?.close();
});

describe('health and metadata', () => {
  it('answers live and ready', async () => {
    expect(await getJson(`${url}/v2/health/live`)).toMatchObject({ status: 200, json: { live: true } });
    expect(await getJson(`${url}/v2/health/ready`)).toMatchObject({ status: 200, json: { ready: true } });
  });

  it('advertises the extensions it implements', async () => {
    const { json } = await getJson(`${url}/v2`);
    expect(json.name).toBe('gpu-node-agent');
    expect(json.extensions).toEqual(expect.arrayContaining(['binary_tensor_data', 'model_repository', 'statistics']));
  });

  it('describes a model with the batch dimension as -1 and the provider used', async () => {
    for (const path of ['/v2/models/add_sub', '/v2/models/add_sub/versions/1']) {
      const { status, json } = await getJson(url + path);
      expect(status).toBe(200);
      expect(json).toMatchObject({
        name: 'add_sub',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1, 16] }, { name: 'INPUT1', datatype: 'FP32', shape: [-1, 16] }],
        outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 16] }, { name: 'OUTPUT1', datatype: 'FP32', shape: [-1, 16] }],
        execution_provider: 'cpu',
      });
    }
  });

  it('completes the config of a model without one from the ONNX file', async () => {
    const { json } = await getJson(`${url}/v2/models/identity_int64/config`);
    expect(json).toMatchObject({
      name: 'identity_int64',
      platform: 'onnxruntime_onnx',
      max_batch_size: 16,
      input: [{ name: 'INPUT0', data_type: 'TYPE_INT64', dims: [4] }],
      output: [{ name: 'OUTPUT0', data_type: 'TYPE_INT64', dims: [4] }],
      dynamic_batching: { max_queue_delay_microseconds: 0 },
    });
    const fixed = await getJson(`${url}/v2/models/fixed_scale/config`);
    expect(fixed.json).toMatchObject({ max_batch_size: 0, input: [{ name: 'X', dims: [2, 8] }] });
    expect(fixed.json.dynamic_batching).toBeUndefined();
  });

  it('reports per-model readiness separately from the node', async () => {
    expect(await getJson(`${url}/v2/models/add_sub/ready`)).toMatchObject({ status: 200, json: { name: 'add_sub', ready: true } });
    expect(await getJson(`${url}/v2/models/add_sub/versions/1/ready`)).toMatchObject({ status: 200 });
    const corrupt = await getJson(`${url}/v2/models/corrupt/ready`);
    expect(corrupt.status).toBe(400);
    expect(corrupt.json).toMatchObject({ ready: false });
    expect(corrupt.json.error).toMatch(/UNAVAILABLE/);
    expect((await getJson(`${url}/v2/models/nope/ready`)).status).toBe(404);
    expect((await getJson(`${url}/v2/models/add_sub/versions/7/ready`)).status).toBe(404);
  });

  it('lists the repository with states and the reason a model failed', async () => {
    const { status, json } = await postJson(`${url}/v2/repository/index`, {});
    expect(status).toBe(200);
    expect(json).toContainEqual({ name: 'add_sub', version: '1', state: 'READY', reason: '' });
    const corrupt = json.find((e: { name: string }) => e.name === 'corrupt');
    expect(corrupt.state).toBe('UNAVAILABLE');
    expect(corrupt.reason).toMatch(/onnxruntime could not create a session/);
    const ready = await postJson(`${url}/v2/repository/index`, { ready: true });
    expect(ready.json.every((e: { state: string }) => e.state === 'READY')).toBe(true);
    expect(ready.json.some((e: { name: string }) => e.name === 'corrupt')).toBe(false);
  });
});

describe('inference over JSON', () => {
  it('adds and subtracts, echoing the id', async () => {
    const { status, json } = await postJson(`${url}/v2/models/add_sub/infer`, {
      id: 'req-1',
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: iota },
        { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: [ones] },
      ],
    });
    expect(status).toBe(200);
    expect(json.id).toBe('req-1');
    expect(json.model_name).toBe('add_sub');
    expect(json.model_version).toBe('1');
    expect(json.outputs).toEqual([
      { name: 'OUTPUT0', datatype: 'FP32', shape: [1, 16], data: iota.map((x) => x + 1) },
      { name: 'OUTPUT1', datatype: 'FP32', shape: [1, 16], data: iota.map((x) => x - 1) },
    ]);
  });

  it('returns only the outputs asked for, and works on the versioned path', async () => {
    const { json } = await postJson(`${url}/v2/models/simple/versions/1/infer`, {
      inputs: [
        { name: 'INPUT0', shape: [2, 16], datatype: 'INT32', data: [...iota, ...iota] },
        { name: 'INPUT1', shape: [2, 16], datatype: 'INT32', data: [...ones, ...iota] },
      ],
      outputs: [{ name: 'OUTPUT1' }],
      parameters: { anything: 'accepted' },
    });
    expect(json.outputs).toEqual([{ name: 'OUTPUT1', datatype: 'INT32', shape: [2, 16], data: [...iota.map((x) => x - 1), ...iota.map(() => 0)] }]);
  });

  const cases: [string, string, unknown[], unknown[]?][] = [
    ['bool', 'BOOL', [true, false, 1, 0], [true, false, true, false]],
    ['int8', 'INT8', [-128, 0, 5, 127]],
    ['int16', 'INT16', [-32768, 1, 2, 32767]],
    ['int32', 'INT32', [-2147483648, 0, 1, 2147483647]],
    ['int64', 'INT64', [-5, 0, 9007199254740991, 42]],
    ['uint8', 'UINT8', [0, 1, 128, 255]],
    ['uint16', 'UINT16', [0, 1, 2, 65535]],
    ['uint32', 'UINT32', [0, 1, 2, 4294967295]],
    ['uint64', 'UINT64', [0, 1, 2, 3]],
    ['fp16', 'FP16', [0.5, -2, 1024, 0.333251953125]],
    ['fp32', 'FP32', [0.5, -2.25, 1e10, 3]],
    ['fp64', 'FP64', [Math.PI, -1e-300, 2, 0]],
  ];
  for (const [suffix, datatype, data, expected] of cases) {
    it(`round-trips ${datatype} through identity_${suffix}`, async () => {
      const { status, json } = await postJson(`${url}/v2/models/identity_${suffix}/infer`, {
        inputs: [{ name: 'INPUT0', shape: [1, 4], datatype, data }],
      });
      expect(status).toBe(200);
      expect(json.outputs[0]).toEqual({ name: 'OUTPUT0', datatype, shape: [1, 4], data: expected ?? data });
    });
  }

  it('round-trips BYTES as strings', async () => {
    const { json } = await postJson(`${url}/v2/models/identity_bytes/infer`, {
      inputs: [{ name: 'INPUT0', shape: [2, 1], datatype: 'BYTES', data: ['hello', 'wörld ✓'] }],
    });
    expect(json.outputs[0]).toEqual({ name: 'OUTPUT0', datatype: 'BYTES', shape: [2, 1], data: ['hello', 'wörld ✓'] });
  });

  it('runs a model without a batch dimension', async () => {
    const x = Array.from({ length: 16 }, (_, i) => i / 2);
    const { json } = await postJson(`${url}/v2/models/fixed_scale/infer`, { inputs: [{ name: 'X', shape: [2, 8], datatype: 'FP32', data: x }] });
    expect(json.outputs[0]).toEqual({ name: 'Y', datatype: 'FP32', shape: [2, 8], data: x.map((v) => v * 2) });
  });

  it('accepts a gzip-compressed body', async () => {
    const body = gzipSync(JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }));
    const res = await fetch(`${url}/v2/models/identity_fp32/infer`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).outputs[0].data).toEqual([1, 2, 3, 4]);
  });
});

describe('inference with the binary tensor data extension', () => {
  it('takes binary inputs without a Content-Type and returns binary outputs', async () => {
    const a = new Float32Array(iota);
    const b = new Float32Array(ones.map((x) => x * 0.5));
    const { body, headerLength } = binaryBody(
      {
        inputs: [
          { name: 'INPUT0', shape: [1, 16], datatype: 'FP32', parameters: { binary_data_size: 64 } },
          { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', parameters: { binary_data_size: 64 } },
        ],
        outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }, { name: 'OUTPUT1', parameters: { binary_data: false } }],
      },
      [a, b],
    );
    // fetch would add text/plain for a string; a Buffer body sends no Content-Type, like tritonclient.
    const res = await fetch(`${url}/v2/models/add_sub/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': String(headerLength) },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const { header, rest } = await readBinaryResponse(res);
    expect(header.outputs[0]).toEqual({ name: 'OUTPUT0', datatype: 'FP32', shape: [1, 16], parameters: { binary_data_size: 64 } });
    expect(Array.from(new Float32Array(rest.buffer.slice(rest.byteOffset, rest.byteOffset + 64)))).toEqual(iota.map((x) => x + 0.5));
    expect(header.outputs[1].data).toEqual(iota.map((x) => x - 0.5));
  });

  it('returns every output as binary with binary_data_output', async () => {
    const raw = await fetch(`${url}/v2/models/identity_int64/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'INT64', data: ['9007199254740993', -1, 2, 3] }], parameters: { binary_data_output: true } }),
    });
    const { header, rest } = await readBinaryResponse(raw);
    expect(header.outputs[0].parameters.binary_data_size).toBe(32);
    expect(Array.from(new BigInt64Array(rest.buffer.slice(rest.byteOffset, rest.byteOffset + 32)))).toEqual([9007199254740993n, -1n, 2n, 3n]);
  });

  it('round-trips every fixed-size datatype as binary', async () => {
    const arrays: [string, string, ArrayBufferView & { length: number }][] = [
      ['bool', 'BOOL', new Uint8Array([1, 0, 0, 1])],
      ['int8', 'INT8', new Int8Array([-1, 2, -3, 4])],
      ['uint16', 'UINT16', new Uint16Array([1, 65535, 3, 4])],
      ['int32', 'INT32', new Int32Array([-7, 8, 9, 10])],
      ['uint64', 'UINT64', new BigUint64Array([18446744073709551615n, 0n, 1n, 2n])],
      ['fp16', 'FP16', new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001])],
      ['fp64', 'FP64', new Float64Array([1.5, -2.5, 1e-300, 7])],
    ];
    for (const [suffix, datatype, arr] of arrays) {
      const { body, headerLength } = binaryBody(
        { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype, parameters: { binary_data_size: arr.byteLength } }], parameters: { binary_data_output: true } },
        [arr],
      );
      const res = await fetch(`${url}/v2/models/identity_${suffix}/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
      expect(res.status, datatype).toBe(200);
      const { header, rest } = await readBinaryResponse(res);
      expect(header.outputs[0].datatype).toBe(datatype);
      expect(Buffer.compare(rest, Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength)), datatype).toBe(0);
    }
  });

  it('round-trips BYTES as length-prefixed binary', async () => {
    const items = ['a', 'binary ✓'].map((s) => Buffer.from(s));
    const payload = Buffer.concat(items.flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), b]));
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'INPUT0', shape: [2, 1], datatype: 'BYTES', parameters: { binary_data_size: payload.length } }], outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }] },
      [payload],
    );
    const res = await fetch(`${url}/v2/models/identity_bytes/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
    const { rest } = await readBinaryResponse(res);
    expect(Buffer.compare(rest, payload)).toBe(0);
  });

  it('accepts a raw binary request (Inference-Header-Content-Length: 0) for a single-input model', async () => {
    const x = new Float32Array([1, 2, 3, 4]);
    const res = await fetch(`${url}/v2/models/identity_fp32/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': '0', 'content-type': 'application/octet-stream' },
      body: Buffer.from(x.buffer),
    });
    expect(res.status).toBe(200);
    const { header, rest } = await readBinaryResponse(res);
    expect(header.outputs[0]).toMatchObject({ name: 'OUTPUT0', shape: [1, 4], parameters: { binary_data_size: 16 } });
    expect(Array.from(new Float32Array(rest.buffer.slice(rest.byteOffset)))).toEqual([1, 2, 3, 4]);
  });
});

describe('bad requests get a clear 4xx and harm nothing', () => {
  const good = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

  const cases: [string, string, unknown, number, RegExp][] = [
    ['unknown model', '/v2/models/nope/infer', good, 404, /unknown model 'nope'/],
    ['unknown version', '/v2/models/identity_fp32/versions/9/infer', good, 404, /no loaded version 9/],
    ['non-numeric version', '/v2/models/identity_fp32/versions/abc/infer', good, 404, /versions are numbers/],
    ['malformed JSON', '/v2/models/identity_fp32/infer', '{"inputs": [', 400, /not valid JSON/],
    ['no inputs', '/v2/models/identity_fp32/infer', { inputs: [] }, 400, /'inputs' must be a non-empty array/],
    ['wrong input name', '/v2/models/identity_fp32/infer', { inputs: [{ ...good.inputs[0], name: 'X' }] }, 400, /has no input 'X'; its inputs are INPUT0/],
    ['wrong datatype', '/v2/models/identity_fp32/infer', { inputs: [{ ...good.inputs[0], datatype: 'FP64' }] }, 400, /datatype FP64 but model 'identity_fp32' expects FP32/],
    ['unknown datatype', '/v2/models/identity_fp32/infer', { inputs: [{ ...good.inputs[0], datatype: 'FLOAT' }] }, 400, /unknown datatype 'FLOAT'/],
    ['wrong shape', '/v2/models/identity_fp32/infer', { inputs: [{ name: 'INPUT0', shape: [1, 2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }] }, 400, /shape \[1,2,2\] but model 'identity_fp32' expects \[b,4\]/],
    ['wrong element count', '/v2/models/identity_fp32/infer', { inputs: [{ ...good.inputs[0], data: [1, 2, 3] }] }, 400, /3 elements in 'data' but its shape needs 4/],
    ['wrong element type', '/v2/models/identity_fp32/infer', { inputs: [{ ...good.inputs[0], data: [1, 'x', 3, 4] }] }, 400, /element 1 is "x"; FP32 needs a number/],
    ['batch over max_batch_size', '/v2/models/simple/infer', { inputs: ['INPUT0', 'INPUT1'].map((name) => ({ name, shape: [9, 16], datatype: 'INT32', data: Array(144).fill(1) })) }, 400, /batch size 9; model 'simple' takes 1 to 8/],
    ['missing input', '/v2/models/add_sub/infer', { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: iota }] }, 400, /input 'INPUT1' is missing/],
    ['unknown output', '/v2/models/identity_fp32/infer', { ...good, outputs: [{ name: 'NOPE' }] }, 400, /has no output 'NOPE'/],
    ['negative dimension', '/v2/models/identity_fp32/infer', { inputs: [{ ...good.inputs[0], shape: [-1, 4] }] }, 400, /invalid shape/],
    ['int out of range', '/v2/models/identity_uint8/infer', { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'UINT8', data: [1, 2, 3, 256] }] }, 400, /element 3 is 256/],
  ];
  for (const [what, path, body, status, message] of cases) {
    it(`${what} → ${status}`, async () => {
      const res = await postJson(url + path, body);
      expect(res.status).toBe(status);
      expect(Object.keys(res.json)).toEqual(['error']);
      expect(res.json.error).toMatch(message);
    });
  }

  it('binary framing errors → 400', async () => {
    const send = (headers: Record<string, string>, body: Buffer) =>
      fetch(`${url}/v2/models/identity_fp32/infer`, { method: 'POST', headers, body }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
    const header = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] };
    const { body, headerLength } = binaryBody(header, [new Float32Array(4)]);
    let r = await send({ 'inference-header-content-length': String(body.length + 5) }, body);
    expect(r).toMatchObject({ status: 400, json: { error: expect.stringMatching(/has only \d+ bytes/) } });
    r = await send({ 'inference-header-content-length': String(headerLength) }, body.subarray(0, body.length - 4));
    expect(r).toMatchObject({ status: 400, json: { error: expect.stringMatching(/binary_data_size 16 but only 12 bytes remain/) } });
    r = await send({ 'inference-header-content-length': String(headerLength) }, Buffer.concat([body, Buffer.alloc(3)]));
    expect(r).toMatchObject({ status: 400, json: { error: expect.stringMatching(/3 bytes after the JSON header/) } });
    r = await send({ 'inference-header-content-length': 'ten' }, body);
    expect(r).toMatchObject({ status: 400, json: { error: expect.stringMatching(/must be a non-negative integer/) } });
    r = await send({ 'inference-header-content-length': '0' }, Buffer.alloc(6));
    expect(r).toMatchObject({ status: 400, json: { error: expect.stringMatching(/6 bytes, which does not fit/) } });
    const multi = await fetch(`${url}/v2/models/add_sub/infer`, { method: 'POST', headers: { 'inference-header-content-length': '0' }, body: Buffer.alloc(64) });
    expect(multi.status).toBe(400);
    expect(((await multi.json()) as any).error).toMatch(/needs a single-input model; 'add_sub' has 2 inputs/);
  });

  it('an unsupported Content-Encoding → 415, a broken gzip body → 400', async () => {
    let res = await fetch(`${url}/v2/models/identity_fp32/infer`, { method: 'POST', headers: { 'content-encoding': 'br' }, body: JSON.stringify(good) });
    expect(res.status).toBe(415);
    res = await fetch(`${url}/v2/models/identity_fp32/infer`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: 'not gzip' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatch(/not valid gzip data/);
  });

  it('a model that failed to load → 503 naming the reason, others unaffected', async () => {
    const res = await postJson(`${url}/v2/models/corrupt/infer`, { inputs: [] });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.json.error).toMatch(/model 'corrupt' version 1 is not ready \(UNAVAILABLE: onnxruntime could not create a session/);
    expect((await postJson(`${url}/v2/models/identity_fp32/infer`, good)).status).toBe(200);
  });

  it('unknown routes → 404 JSON', async () => {
    const res = await getJson(`${url}/v2/nothing/here`);
    expect(res.status).toBe(404);
    expect(res.json.error).toMatch(/no route GET \/v2\/nothing\/here/);
  });

  it('the agent still serves after all of the above', async () => {
    expect((await getJson(`${url}/v2/health/ready`)).status).toBe(200);
    expect((await postJson(`${url}/v2/models/identity_fp32/infer`, good)).json.outputs[0].data).toEqual([1, 2, 3, 4]);
  });
});

describe('statistics', () => {
  it('counts requests and executions in Triton\'s shape', async () => {
    const before = (await getJson(`${url}/v2/models/identity_fp16/stats`)).json.model_stats[0];
    await postJson(`${url}/v2/models/identity_fp16/infer`, { inputs: [{ name: 'INPUT0', shape: [2, 4], datatype: 'FP16', data: [1, 2, 3, 4, 5, 6, 7, 8] }] });
    const { status, json } = await getJson(`${url}/v2/models/identity_fp16/stats`);
    expect(status).toBe(200);
    const s = json.model_stats[0];
    expect(s).toMatchObject({ name: 'identity_fp16', version: '1', execution_provider: 'cpu' });
    expect(s.inference_count - before.inference_count).toBe(2);
    expect(s.execution_count - before.execution_count).toBe(1);
    expect(s.inference_stats.success.count - before.inference_stats.success.count).toBe(1);
    expect(s.inference_stats.compute_infer.ns).toBeGreaterThan(0);
    expect(s.batch_stats.some((b: { batch_size: number }) => b.batch_size === 2)).toBe(true);
    const all = await getJson(`${url}/v2/models/stats`);
    expect(all.json.model_stats.length).toBeGreaterThan(5);
  });
});
