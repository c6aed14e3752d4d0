/**
 * The gRPC transport over 127.0.0.1 with a real @grpc/grpc-js client against a real agent
 * (real onnxruntime): every RPC, typed and raw contents for every datatype, BYTES, batches
 * merged with HTTP requests, the stream, auth, 16+ MiB messages, drain and bad input.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRepository, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';
import { bearer, buf, call, callError, f32, freePort, grpc, grpcClient, rawBytes, splitRawBytes } from '../helpers/grpc.js';

/** add_sub with a 300 ms batching wait (Triton's policy) and a queue of 4: merges and refusals are certain. */
function addSlowModels(repo: string): void {
  for (const [name, queue] of [['add_sub_wait', 64], ['add_sub_q', 1]] as const) {
    mkdirSync(path.join(repo, name, '1'), { recursive: true });
    copyFileSync(path.join(repo, 'add_sub', '1', 'model.onnx'), path.join(repo, name, '1', 'model.onnx'));
    writeFileSync(path.join(repo, name, 'config.pbtxt'), `name: "${name}"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  { name: "INPUT0", data_type: TYPE_FP32, dims: [ 16 ] },
  { name: "INPUT1", data_type: TYPE_FP32, dims: [ 16 ] }
]
output [
  { name: "OUTPUT0", data_type: TYPE_FP32, dims: [ 16 ] },
  { name: "OUTPUT1", data_type: TYPE_FP32, dims: [ 16 ] }
]
dynamic_batching {
  max_queue_delay_microseconds: 300000
  default_queue_policy { max_queue_size: ${queue} }
}
parameters { key: "batching_policy" value { string_value: "triton" } }
`);
  }
}

const TOKEN = 'grpc-test-token-1234';
let repo: string;
let agent: RunningAgent;
let client: any;
let auth: grpc.Metadata;

beforeAll(async () => {
  repo = await makeRepository();
  addSlowModels(repo);
  agent = await startAgent(repo, { grpcPort: await freePort(), host: '127.0.0.1', apiToken: TOKEN, bodyLimit: 32 * 1024 * 1024 });
  client = grpcClient(agent.agent.grpcAddress!);
  auth = bearer(TOKEN);
}, 120_000);

afterAll(async () => {
  client?.close();
  await agent?.close();
});

const seq = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

function addSubRequest(rows: number, base: number, extra: Record<string, unknown> = {}) {
  const a = seq(16 * rows, (i) => base + i);
  const b = seq(16 * rows, () => 1);
  return {
    a, b,
    request: {
      model_name: 'add_sub',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [rows, 16] },
        { name: 'INPUT1', datatype: 'FP32', shape: [rows, 16] },
      ],
      raw_input_contents: [buf(a), buf(b)],
      ...extra,
    },
  };
}

describe('health, metadata, configuration, statistics, repository', () => {
  it('ServerLive and ServerReady need no token; ModelReady does', async () => {
    expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
    expect(await call(client, 'ServerReady', {})).toEqual({ ready: true });
    expect(await call(client, 'ModelReady', { name: 'add_sub' }, auth)).toEqual({ ready: true });
    const e = await callError(client, 'ModelReady', { name: 'add_sub' });
    expect(e.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(e.details).toMatch(/bearer token/);
  });

  it('ServerMetadata and ModelMetadata', async () => {
    const s = await call(client, 'ServerMetadata', {}, auth);
    expect(s.name).toBe('gpu-node-agent');
    expect(s.extensions).toContain('model_repository');
    const m = await call(client, 'ModelMetadata', { name: 'add_sub' }, auth);
    expect(m).toEqual({
      name: 'add_sub', versions: ['1'], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: ['-1', '16'] }, { name: 'INPUT1', datatype: 'FP32', shape: ['-1', '16'] }],
      outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: ['-1', '16'] }, { name: 'OUTPUT1', datatype: 'FP32', shape: ['-1', '16'] }],
    });
    const e = await callError(client, 'ModelMetadata', { name: 'wrong_model_name' }, auth);
    expect(e.code).toBe(grpc.status.NOT_FOUND);
    expect(e.details).toMatch(/^Request for unknown model/);
  });

  it('ModelConfig answers the ModelConfig message of model_config.proto', async () => {
    const { config } = await call(client, 'ModelConfig', { name: 'add_sub' }, auth);
    expect(config.name).toBe('add_sub');
    expect(config.max_batch_size).toBe(64);
    expect(config.input[0]).toMatchObject({ name: 'INPUT0', data_type: 'TYPE_FP32', dims: ['16'] });
    expect(config.dynamic_batching.default_queue_policy.max_queue_size).toBe(1024);
  });

  it('RepositoryIndex, RepositoryModelUnload and RepositoryModelLoad', async () => {
    const { models } = await call(client, 'RepositoryIndex', {}, auth);
    expect(models.find((m: any) => m.name === 'fixed_scale')).toMatchObject({ state: 'READY' });
    await call(client, 'RepositoryModelUnload', { model_name: 'fixed_scale' }, auth);
    expect((await call(client, 'ModelReady', { name: 'fixed_scale' }, auth)).ready ?? false).toBe(false);
    await call(client, 'RepositoryModelLoad', { model_name: 'fixed_scale' }, auth);
    expect(await call(client, 'ModelReady', { name: 'fixed_scale' }, auth)).toEqual({ ready: true });
    const bad = await callError(client, 'RepositoryModelLoad', { model_name: 'fixed_scale', parameters: { config: { string_param: '{not json' } } }, auth);
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^failed to load 'fixed_scale'/);
    const missing = await callError(client, 'RepositoryModelLoad', { model_name: 'wrong_model_name' }, auth);
    expect(missing.details).toMatch(/failed to load/);
  });

  it('ModelStatistics counts gRPC and HTTP requests together', async () => {
    const before = (await call(client, 'ModelStatistics', { name: 'add_sub' }, auth)).model_stats[0];
    await call(client, 'ModelInfer', addSubRequest(1, 0).request, auth);
    const http = await postJson(`${agent.url}/v2/models/add_sub/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 16], data: [...seq(16, () => 1)] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 16], data: [...seq(16, () => 1)] }],
    }, { authorization: `Bearer ${TOKEN}` });
    expect(http.status).toBe(200);
    const after = (await call(client, 'ModelStatistics', { name: 'add_sub' }, auth)).model_stats[0];
    expect(Number(after.inference_count) - Number(before?.inference_count ?? 0)).toBe(2);
    expect(Number(after.inference_stats.success.count)).toBeGreaterThanOrEqual(2);
    const all = await call(client, 'ModelStatistics', {}, auth);
    expect(all.model_stats.map((m: any) => m.name)).toContain('add_sub');
  });

  it('declared RPCs the agent does not implement answer UNIMPLEMENTED with a message', async () => {
    const e = await callError(client, 'TraceSetting', {}, auth);
    expect(e.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(e.details).toMatch(/not implemented by gpu-node-agent/);
    const cuda = await callError(client, 'CudaSharedMemoryRegister', { name: 'x' }, auth);
    expect(cuda.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await call(client, 'CudaSharedMemoryUnregister', {}, auth)).toEqual({});
    expect(await call(client, 'SystemSharedMemoryStatus', {}, auth)).toEqual({});
  });
});

describe('ModelInfer', () => {
  it('raw contents in and out, the id echoed, values row by row', async () => {
    const { a, request } = addSubRequest(3, 10, { id: 'req-7' });
    const r = await call(client, 'ModelInfer', request, auth);
    expect(r).toMatchObject({ model_name: 'add_sub', model_version: '1', id: 'req-7' });
    expect(r.outputs.map((o: any) => [o.name, o.datatype, o.shape])).toEqual([['OUTPUT0', 'FP32', ['3', '16']], ['OUTPUT1', 'FP32', ['3', '16']]]);
    expect(f32(r.raw_output_contents[0])).toEqual([...a].map((x) => x + 1));
    expect(f32(r.raw_output_contents[1])).toEqual([...a].map((x) => x - 1));
  });

  it('requested outputs only', async () => {
    const { a, request } = addSubRequest(1, 0, { outputs: [{ name: 'OUTPUT1' }] });
    const r = await call(client, 'ModelInfer', request, auth);
    expect(r.outputs.map((o: any) => o.name)).toEqual(['OUTPUT1']);
    expect(f32(r.raw_output_contents[0])).toEqual([...a].map((x) => x - 1));
  });

  const typed: [string, string, string, unknown[], unknown[]][] = [
    ['bool', 'BOOL', 'bool_contents', [true, false, true, true], [true, false, true, true]],
    ['int8', 'INT8', 'int_contents', [-128, -1, 0, 127], [-128, -1, 0, 127]],
    ['int16', 'INT16', 'int_contents', [-32768, -1, 0, 32767], [-32768, -1, 0, 32767]],
    ['int32', 'INT32', 'int_contents', [-2147483648, -1, 0, 2147483647], [-2147483648, -1, 0, 2147483647]],
    ['int64', 'INT64', 'int64_contents', ['-9223372036854775808', '-1', '0', '9223372036854775807'], ['-9223372036854775808', '-1', '0', '9223372036854775807']],
    ['uint8', 'UINT8', 'uint_contents', [0, 1, 128, 255], [0, 1, 128, 255]],
    ['uint16', 'UINT16', 'uint_contents', [0, 1, 32768, 65535], [0, 1, 32768, 65535]],
    ['uint32', 'UINT32', 'uint_contents', [0, 1, 2147483648, 4294967295], [0, 1, 2147483648, 4294967295]],
    ['uint64', 'UINT64', 'uint64_contents', ['0', '1', '9223372036854775808', '18446744073709551615'], ['0', '1', '9223372036854775808', '18446744073709551615']],
    ['fp32', 'FP32', 'fp32_contents', [0.5, -1.25, 3, 1e10], [0.5, -1.25, 3, 1e10]],
    ['fp64', 'FP64', 'fp64_contents', [0.1, -1e300, 3, 2.5], [0.1, -1e300, 3, 2.5]],
  ];

  it.each(typed)('typed contents of identity_%s (%s) come back typed', async (dtype, dt, field, values, expected) => {
    const r = await call(client, 'ModelInfer', {
      model_name: `identity_${dtype}`,
      inputs: [{ name: 'INPUT0', datatype: dt, shape: [1, 4], contents: { [field]: values } }],
    }, auth);
    expect(r.raw_output_contents).toBeUndefined();
    expect(r.outputs[0]).toMatchObject({ name: 'OUTPUT0', datatype: dt, shape: ['1', '4'] });
    expect(r.outputs[0].contents[field]).toEqual(expected);
  });

  const raw: [string, string, ArrayBufferView][] = [
    ['bool', 'BOOL', Uint8Array.from([1, 0, 0, 1])],
    ['int8', 'INT8', Int8Array.from([-128, -2, 5, 127])],
    ['int16', 'INT16', Int16Array.from([-32768, -2, 5, 32767])],
    ['int32', 'INT32', Int32Array.from([-2147483648, -2, 5, 2147483647])],
    ['int64', 'INT64', BigInt64Array.from([-(2n ** 63n), -2n, 5n, 2n ** 63n - 1n])],
    ['uint8', 'UINT8', Uint8Array.from([0, 2, 5, 255])],
    ['uint16', 'UINT16', Uint16Array.from([0, 2, 5, 65535])],
    ['uint32', 'UINT32', Uint32Array.from([0, 2, 5, 4294967295])],
    ['uint64', 'UINT64', BigUint64Array.from([0n, 2n, 5n, 2n ** 64n - 1n])],
    ['fp16', 'FP16', Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff])],
    ['fp32', 'FP32', Float32Array.from([1.5, -2, 0, 3.25])],
    ['fp64', 'FP64', Float64Array.from([1.5, -2, 0, 1e-300])],
  ];

  it.each(raw)('raw contents of identity_%s (%s) come back byte for byte', async (dtype, dt, data) => {
    const r = await call(client, 'ModelInfer', {
      model_name: `identity_${dtype}`,
      inputs: [{ name: 'INPUT0', datatype: dt, shape: [1, 4] }],
      raw_input_contents: [buf(data)],
    }, auth);
    expect(r.outputs[0]).toMatchObject({ datatype: dt, shape: ['1', '4'] });
    expect(Buffer.compare(r.raw_output_contents[0], buf(data))).toBe(0);
  });

  it('FP16 has no typed field: typed FP16 is refused by name', async () => {
    const e = await callError(client, 'ModelInfer', { model_name: 'identity_fp16', inputs: [{ name: 'INPUT0', datatype: 'FP16', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }, auth);
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/FP16.*raw_input_contents/);
  });

  it('BYTES raw (4-byte little-endian lengths) and typed (bytes_contents)', async () => {
    const items = ['hello', '', 'wörld ✓'];
    const r = await call(client, 'ModelInfer', {
      model_name: 'identity_bytes', inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [3, 1] }], raw_input_contents: [rawBytes(items)],
    }, auth);
    expect(splitRawBytes(r.raw_output_contents[0])).toEqual(items);
    const t = await call(client, 'ModelInfer', {
      model_name: 'identity_bytes', inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [2, 1], contents: { bytes_contents: [Buffer.from('a'), Buffer.from('bc')] } }],
    }, auth);
    expect(t.outputs[0].contents.bytes_contents.map((b: Buffer) => b.toString())).toEqual(['a', 'bc']);
  });

  it('a multi-row gRPC request shares one batch with HTTP requests; every row gets its own values', async () => {
    const before = (await call(client, 'ModelStatistics', { name: 'add_sub_wait' }, auth)).model_stats[0];
    const g = addSubRequest(2, 100, { model_name: 'add_sub_wait' });
    const httpRow = (base: number) => postJson(`${agent.url}/v2/models/add_sub_wait/infer`, {
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [1, 16], data: [...seq(16, (i) => base + i)] },
        { name: 'INPUT1', datatype: 'FP32', shape: [1, 16], data: [...seq(16, () => 1)] },
      ],
    }, { authorization: `Bearer ${TOKEN}` });
    const [gr, h1, h2] = await Promise.all([call(client, 'ModelInfer', g.request, auth), httpRow(1000), httpRow(2000)]);
    expect(f32(gr.raw_output_contents[0])).toEqual([...g.a].map((x) => x + 1));
    expect(h1.json.outputs[0].data).toEqual([...seq(16, (i) => 1001 + i)]);
    expect(h2.json.outputs[0].data).toEqual([...seq(16, (i) => 2001 + i)]);
    const after = (await call(client, 'ModelStatistics', { name: 'add_sub_wait' }, auth)).model_stats[0];
    expect(Number(after.execution_count) - Number(before?.execution_count ?? 0)).toBe(1);
    expect(after.batch_stats.find((b: any) => b.batch_size === '4')).toBeDefined();
  });

  it('messages above 16 MiB both ways (up to --body-limit), above it RESOURCE_EXHAUSTED', async () => {
    const n = 4_500_000; // 18 MB of FP32
    const data = seq(n, (i) => i % 1000);
    const r = await call(client, 'ModelInfer', { model_name: 'identity_var', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, n] }], raw_input_contents: [buf(data)] }, auth);
    expect(r.raw_output_contents[0].length).toBe(n * 4);
    expect(Buffer.compare(r.raw_output_contents[0], buf(data))).toBe(0);
    const big = seq(9_000_000, () => 1); // 36 MB > 32 MiB
    const e = await callError(client, 'ModelInfer', { model_name: 'identity_var', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 9_000_000] }], raw_input_contents: [buf(big)] }, auth);
    expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
  });
});

describe('bad input: a status and a message naming the problem; other calls unaffected', () => {
  const cases: [string, Record<string, unknown>, grpc.status, RegExp][] = [
    ['unknown model', { model_name: 'nope', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }, grpc.status.NOT_FOUND, /Request for unknown model: 'nope'/],
    ['no model name', { inputs: [] }, grpc.status.INVALID_ARGUMENT, /model_name/],
    ['no inputs', { model_name: 'add_sub' }, grpc.status.INVALID_ARGUMENT, /no inputs/],
    ['wrong datatype', { model_name: 'identity_fp32', inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }] }, grpc.status.INVALID_ARGUMENT, /INPUT0.*(FP32|datatype)/],
    ['unknown datatype', { model_name: 'identity_fp32', inputs: [{ name: 'INPUT0', datatype: 'FLOAT', shape: [1, 4] }] }, grpc.status.INVALID_ARGUMENT, /unknown datatype 'FLOAT'/],
    ['wrong shape', { model_name: 'identity_fp32', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 5], contents: { fp32_contents: [1, 2, 3, 4, 5] } }] }, grpc.status.INVALID_ARGUMENT, /INPUT0.*shape/],
    ['raw contents of the wrong size', { model_name: 'identity_fp32', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [Buffer.alloc(12)] }, grpc.status.INVALID_ARGUMENT, /12 bytes.*need 16/],
    ['raw contents for some inputs only', { model_name: 'add_sub', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 16] }, { name: 'INPUT1', datatype: 'FP32', shape: [1, 16] }], raw_input_contents: [Buffer.alloc(64)] }, grpc.status.INVALID_ARGUMENT, /raw_input_contents has 1 entries but the request has 2 inputs/],
    ['too many elements', { model_name: 'identity_fp32', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4, 5] } }] }, grpc.status.INVALID_ARGUMENT, /5 elements.*needs 4/],
    ['data in the wrong field', { model_name: 'identity_int32', inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] }, grpc.status.INVALID_ARGUMENT, /contents\.fp32_contents; INT32 data goes in contents\.int_contents/],
    ['no data', { model_name: 'identity_int32', inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 4] }] }, grpc.status.INVALID_ARGUMENT, /has no data/],
    ['value out of range', { model_name: 'identity_int8', inputs: [{ name: 'INPUT0', datatype: 'INT8', shape: [1, 4], contents: { int_contents: [1, 2, 3, 300] } }] }, grpc.status.INVALID_ARGUMENT, /element 3 is 300/],
    ['unknown output', { model_name: 'identity_fp32', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }], outputs: [{ name: 'NOPE' }] }, grpc.status.INVALID_ARGUMENT, /NOPE/],
    ['bad BYTES framing', { model_name: 'identity_bytes', inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, 1] }], raw_input_contents: [Buffer.from([9, 0, 0, 0, 1])] }, grpc.status.INVALID_ARGUMENT, /declares 9 bytes/],
  ];
  it.each(cases)('%s', async (_what, request, code, message) => {
    const e = await callError(client, 'ModelInfer', request, auth);
    expect(e.code).toBe(code);
    expect(e.details).toMatch(message);
    expect((await call(client, 'ModelInfer', addSubRequest(1, 0).request, auth)).outputs).toHaveLength(2);
  });

  it('a malformed message is INVALID_ARGUMENT or INTERNAL from grpc-js, and the server goes on', async () => {
    const raw = new grpc.Client(agent.agent.grpcAddress!, grpc.credentials.createInsecure());
    const e = await new Promise<any>((resolve) => {
      raw.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0xff, 0xff, 0xff]), auth, (err) => resolve(err));
    });
    raw.close();
    expect(e).toBeTruthy();
    expect(e.code).not.toBe(grpc.status.OK);
    expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
  });

  it('a method not in the service is UNIMPLEMENTED', async () => {
    const raw = new grpc.Client(agent.agent.grpcAddress!, grpc.credentials.createInsecure());
    const e = await new Promise<any>((resolve) => {
      raw.makeUnaryRequest('/inference.GRPCInferenceService/NoSuchMethod', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), auth, (err) => resolve(err));
    });
    raw.close();
    expect(e.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('a full queue is RESOURCE_EXHAUSTED with retry-after in the trailing metadata', async () => {
    const calls = Array.from({ length: 4 }, (_, i) => call(client, 'ModelInfer', { ...addSubRequest(1, i).request, model_name: 'add_sub_q' }, auth).then(() => undefined, (e) => e));
    const errors = (await Promise.all(calls)).filter(Boolean);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) {
      expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(e.details).toMatch(/queue is full/);
      expect(e.metadata.get('retry-after')).toEqual(['1']);
    }
  });
});

describe('ModelStreamInfer', () => {
  it('answers every request on the stream, models interleaved, an error in the middle as error_message', async () => {
    const stream = client.ModelStreamInfer(auth);
    const answers: any[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (m: any) => answers.push(m));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const reqs = [
      { ...addSubRequest(1, 0).request, id: 's1' },
      { model_name: 'identity_int32', id: 's2', inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }] },
      { model_name: 'nope', id: 's3', inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } }] },
      { ...addSubRequest(2, 50).request, id: 's4' },
      { model_name: 'identity_int32', id: 's5', inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 4], contents: { int_contents: [5, 6, 7, 8] } }] },
    ];
    for (const r of reqs) stream.write(r);
    stream.end();
    await done;
    const byId = new Map(answers.map((a) => [a.infer_response.id, a]));
    expect([...byId.keys()].sort()).toEqual(['s1', 's2', 's3', 's4', 's5']);
    expect(byId.get('s3').error_message).toMatch(/Request for unknown model: 'nope'/);
    for (const id of ['s1', 's2', 's4', 's5']) expect(byId.get(id).error_message ?? '').toBe('');
    expect(f32(byId.get('s1').infer_response.raw_output_contents[0])).toEqual([...seq(16, (i) => i + 1)]);
    expect(f32(byId.get('s4').infer_response.raw_output_contents[1])).toEqual([...seq(32, (i) => 50 + i - 1)]);
    expect(byId.get('s5').infer_response.outputs[0].contents.int_contents).toEqual([5, 6, 7, 8]);
  });

  it('without a token the stream ends UNAUTHENTICATED', async () => {
    const stream = client.ModelStreamInfer();
    const err = await new Promise<any>((resolve) => {
      stream.on('error', resolve);
      stream.on('data', () => undefined);
      stream.write(addSubRequest(1, 0).request);
    });
    expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
  });
});

describe('drain and shutdown', () => {
  it('a drain lets the running call finish, refuses new ones UNAVAILABLE with the reason, and close ends open streams cleanly', async () => {
    const own = await startAgent(repo, { grpcPort: await freePort(), host: '127.0.0.1', loadModels: 'add_sub,add_sub_wait' });
    const c = grpcClient(own.agent.grpcAddress!);
    try {
      const stream = c.ModelStreamInfer();
      const streamAnswers: any[] = [];
      const streamEnded = new Promise<string>((resolve) => {
        stream.on('data', (m: any) => streamAnswers.push(m));
        stream.on('end', () => resolve('end'));
        stream.on('error', (e: any) => resolve(`error ${e.code}`));
      });
      stream.write({ ...addSubRequest(1, 0).request, id: 'before' });
      while (streamAnswers.length === 0) await new Promise((r) => setTimeout(r, 10));

      const slow = call(c, 'ModelInfer', { ...addSubRequest(1, 5).request, model_name: 'add_sub_wait' });
      // Drain only once it is in the batcher's 300 ms wait (a fixed sleep raced a loaded machine).
      for (let i = 0; i < 400; i++) {
        const stats = await fetch(`${own.url}/v2/models/add_sub_wait/stats`).then((r) => r.json()) as any;
        if (stats.model_stats[0].queue_depth >= 1) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const drained = own.agent.drain('maintenance');
      const refused = await callError(c, 'ModelInfer', addSubRequest(1, 0).request);
      expect(refused.code).toBe(grpc.status.UNAVAILABLE);
      expect(refused.details).toMatch(/not taking new requests \(maintenance\)/);
      expect(refused.metadata.get('retry-after')).toEqual(['5']);
      expect((await call(c, 'ServerReady', {})).ready ?? false).toBe(false);
      const r = await slow;
      expect(f32(r.raw_output_contents[0])).toEqual([...seq(16, (i) => 5 + i + 1)]);
      await drained;

      stream.write({ ...addSubRequest(1, 0).request, id: 'during' });
      while (streamAnswers.length < 2) await new Promise((r) => setTimeout(r, 10));
      expect(streamAnswers[1].error_message).toMatch(/not taking new requests/);
      await own.close();
      expect(await streamEnded).toBe('end');
    } finally {
      c.close();
      await own.close().catch(() => undefined);
    }
  });
});
