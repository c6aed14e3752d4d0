#!/usr/bin/env node
// A small Node client of the agent's gRPC API (Triton's GRPCInferenceService), no grpcurl or
// Python needed. It loads proto/grpc_service.proto with @grpc/proto-loader, as any Node client
// would, and follows the steps of tritonclient.grpc's example clients against NVIDIA's example
// models (node scripts/generate-models.mjs <dir> --triton-examples).
//
//   node scripts/grpc-client.mjs [--url host:port] [--token T] <step>...
//
// steps: health (simple_grpc_health_metadata.py), infer (simple_grpc_infer_client.py),
//        async (simple_grpc_async_infer_client.py), string (simple_grpc_string_infer_client.py),
//        control (simple_grpc_model_control.py), stream (ModelStreamInfer on `simple`), all.
// Each step prints what it checked and "PASS: <step>"; the first failed check exits 1.
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i === -1) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const url = opt('--url', 'localhost:8001');
const token = opt('--token', process.env.GPU_AGENT_API_TOKEN);
const steps = args.length === 0 || args.includes('all') ? ['health', 'infer', 'async', 'string', 'control', 'stream'] : args;

const def = protoLoader.loadSync('grpc_service.proto', {
  includeDirs: [path.resolve(import.meta.dirname, '../proto')], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
});
const { inference } = grpc.loadPackageDefinition(def);
const client = new inference.GRPCInferenceService(url, grpc.credentials.createInsecure(), {
  'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1,
});

function metadata(extra = {}) {
  const m = new grpc.Metadata();
  if (token) m.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}
const rpc = (method, req, extra) => new Promise((resolve, reject) => client[method](req, metadata(extra), (e, r) => (e ? reject(e) : resolve(r))));
async function rpcError(method, req) {
  try {
    await rpc(method, req);
  } catch (e) {
    return e;
  }
  throw new Error(`${method} succeeded where the example expects an error`);
}
function check(ok, what) {
  if (!ok) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`  ok: ${what}`);
}

const int32s = (b) => [...new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))];
const raw = (view) => Buffer.from(view.buffer, view.byteOffset, view.byteLength);
function rawBytes(items) {
  return Buffer.concat(items.flatMap((s) => {
    const b = Buffer.from(s);
    const n = Buffer.alloc(4);
    n.writeUInt32LE(b.length);
    return [n, b];
  }));
}
function splitBytes(b) {
  const out = [];
  for (let o = 0; o < b.length; o += 4 + b.readUInt32LE(o)) out.push(b.subarray(o + 4, o + 4 + b.readUInt32LE(o)));
  return out;
}
/** An output by name, as tritonclient's as_numpy reads it: raw_output_contents[index of the output]. */
function output(res, name) {
  const i = res.outputs.findIndex((o) => o.name === name);
  return i === -1 ? undefined : res.raw_output_contents[i];
}

const in0 = Int32Array.from({ length: 16 }, (_, i) => i);
const in1 = new Int32Array(16).fill(1);
const simpleRequest = (outputs) => ({
  model_name: 'simple',
  inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [1, 16] }, { name: 'INPUT1', datatype: 'INT32', shape: [1, 16] }],
  ...(outputs ? { outputs: outputs.map((name) => ({ name })) } : {}),
  raw_input_contents: [raw(in0), raw(in1)],
});
function checkSimple(res, what) {
  const sum = int32s(output(res, 'OUTPUT0'));
  const diff = int32s(output(res, 'OUTPUT1'));
  check(sum.every((v, i) => v === in0[i] + in1[i]) && diff.every((v, i) => v === in0[i] - in1[i]), `${what}: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 for all 16`);
}

const STEPS = {
  async health() {
    check((await rpc('ServerLive', {}, { test: '1', dummy: '2' })).live === true, 'is_server_live (with extra headers)');
    check((await rpc('ServerReady', {})).ready === true, 'is_server_ready');
    check((await rpc('ModelReady', { name: 'simple' })).ready === true, 'is_model_ready simple');
    const server = await rpc('ServerMetadata', {});
    console.log(`  server metadata: ${server.name} ${server.version} [${server.extensions.join(', ')}]`);
    console.log(`  note: the example's check metadata.name == "triton" fails here: the server is ${server.name}`);
    check((await rpc('ModelMetadata', { name: 'simple' }, { test: '1' })).name === 'simple', 'get_model_metadata simple');
    const e = await rpcError('ModelMetadata', { name: 'wrong_model_name' });
    check(e.details.includes('Request for unknown model'), `wrong model name: "${e.details}"`);
    check((await rpc('ModelConfig', { name: 'simple' })).config.name === 'simple', 'get_model_config simple');
  },
  async infer() {
    const res = await rpc('ModelInfer', simpleRequest(['OUTPUT0', 'OUTPUT1']), { test: '1' });
    const stats = await rpc('ModelStatistics', { name: 'simple' });
    check(stats.model_stats.length === 1, 'get_inference_statistics simple: one model_stats entry');
    checkSimple(res, 'infer with outputs');
    checkSimple(await rpc('ModelInfer', simpleRequest()), 'infer without outputs');
  },
  async async() {
    const all = await Promise.all(Array.from({ length: 4 }, () => rpc('ModelInfer', simpleRequest(['OUTPUT0', 'OUTPUT1']))));
    all.forEach((r, i) => checkSimple(r, `async_infer ${i}`));
  },
  async string() {
    const s0 = [...in0].map(String);
    const s1 = [...in1].map(String);
    const res = await rpc('ModelInfer', {
      model_name: 'simple_string',
      inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, 16] }, { name: 'INPUT1', datatype: 'BYTES', shape: [1, 16] }],
      outputs: [{ name: 'OUTPUT0' }, { name: 'OUTPUT1' }],
      raw_input_contents: [rawBytes(s0), rawBytes(s1)],
    });
    const sum = splitBytes(output(res, 'OUTPUT0')).map((b) => Number(b.toString()));
    const diff = splitBytes(output(res, 'OUTPUT1')).map((b) => Number(b.toString()));
    check(sum.every((v, i) => v === in0[i] + 1) && diff.every((v, i) => v === in0[i] - 1), 'simple_string: int(OUTPUT0) is the sum, int(OUTPUT1) the difference');
    const id = await rpc('ModelInfer', { model_name: 'simple_identity', inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, 16] }], outputs: [{ name: 'OUTPUT0' }], raw_input_contents: [rawBytes(Array(16).fill('hello'))] });
    check(splitBytes(output(id, 'OUTPUT0')).every((b) => b.toString() === 'hello'), 'simple_identity returns its strings');
    console.log('  note: the example\'s "he\\x00llo" and b"\\x00\\x01\\x02\\x03" steps fail: onnxruntime-node cuts strings at NUL');
  },
  async control() {
    const index = await rpc('RepositoryIndex', {});
    console.log(`  repository index: ${index.models.length} models (the example expects its own repository's 8)`);
    await rpc('RepositoryModelLoad', { model_name: 'simple' });
    check((await rpc('ModelReady', { name: 'simple' })).ready === true, 'load_model simple, then ready');
    const bad = await rpcError('RepositoryModelLoad', { model_name: 'simple', parameters: { config: { string_param: '"parameters": {"config": {{"max_batch_size": "16"}}}' } } });
    check(bad.details.includes('failed to load'), `invalid override config: "${bad.details.slice(0, 80)}..."`);
    await rpc('RepositoryModelLoad', { model_name: 'simple', parameters: { config: { string_param: '{"max_batch_size":"16"}' } } });
    check((await rpc('ModelConfig', { name: 'simple' })).config.max_batch_size === 16, 'override config: max_batch_size 8 → 16');
    await rpc('RepositoryModelUnload', { model_name: 'simple' });
    check((await rpc('ModelReady', { name: 'simple' })).ready !== true, 'unload_model simple, then not ready');
    const wrong = await rpcError('RepositoryModelLoad', { model_name: 'wrong_model_name' });
    check(wrong.details.includes('failed to load'), 'load_model wrong_model_name: "failed to load"');
    await rpc('RepositoryModelLoad', { model_name: 'simple' }); // as it was
  },
  async stream() {
    const call = client.ModelStreamInfer(metadata());
    const answers = [];
    const done = new Promise((resolve, reject) => {
      call.on('data', (m) => answers.push(m));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (let i = 0; i < 3; i++) call.write({ ...simpleRequest(), id: `r${i}` });
    call.write({ ...simpleRequest(), model_name: 'wrong_model_name', id: 'bad' });
    call.end();
    await done;
    check(answers.length === 4, 'every request answered on the stream');
    for (const a of answers.filter((x) => x.infer_response.id !== 'bad')) checkSimple(a.infer_response, `stream ${a.infer_response.id}`);
    check(answers.find((x) => x.infer_response.id === 'bad').error_message.includes('Request for unknown model'), 'the bad request answered with error_message, the stream went on');
  },
};

for (const step of steps) {
  if (!STEPS[step]) {
    console.error(`unknown step '${step}'; steps: ${Object.keys(STEPS).join(', ')}, all`);
    process.exit(2);
  }
  console.log(`${step}:`);
  try {
    await STEPS[step]();
  } catch (e) {
    console.error(`FAILED: ${step}: ${e.details ?? e.message}`);
    process.exit(1);
  }
  console.log(`PASS: ${step}`);
}
client.close();
