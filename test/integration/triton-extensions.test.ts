/**
 * Triton's protocol extensions over real HTTP: system shared memory with real POSIX shared
 * memory objects the test creates in /dev/shm (the steps of NVIDIA's simple_http_shm_client,
 * simple_http_shm_string_client and reuse_infer_objects_client), CUDA shared memory refused,
 * logging, trace, server metadata; and where the config asks for what the host cannot give
 * (KIND_GPU without a GPU, TensorRT), and where model files belong.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTritonExampleModels } from '../../scripts/generate-models.mjs';
import { SystemSharedMemory } from '../../src/shm/index.js';
import { getJson, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

const HAVE_SHM = existsSync('/dev/shm');
const TAG = `gpu-agent-test-${process.pid}`;
const created: string[] = [];

/** A POSIX shared memory object (what shm_open + ftruncate make: a file in /dev/shm). */
function shmObject(name: string, bytes: Uint8Array | number): string {
  const key = `/${TAG}-${name}`;
  writeFileSync(`/dev/shm${key}`, typeof bytes === 'number' ? Buffer.alloc(bytes) : bytes);
  created.push(`/dev/shm${key}`);
  return key;
}

function bytesTensor(items: readonly string[]): Buffer {
  return Buffer.concat(items.flatMap((s) => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return [len, b];
  }));
}

function splitBytesTensor(buf: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off + 4 <= buf.length;) {
    const n = buf.readUInt32LE(off);
    out.push(buf.subarray(off + 4, off + 4 + n).toString('utf8'));
    off += 4 + n;
  }
  return out;
}

const i32 = (b: Buffer) => [...new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))];

let repo: string;
let agent: RunningAgent;
let url: string;

beforeAll(async () => {
  repo = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-ext-'));
  await generateTritonExampleModels(repo);
  // KIND_GPU on a host whose CUDA provider cannot be created; and Triton accelerators.
  mkdirSync(path.join(repo, 'simple_gpu', '1'), { recursive: true });
  copyFileSync(path.join(repo, 'simple', '1', 'model.onnx'), path.join(repo, 'simple_gpu', '1', 'model.onnx'));
  writeFileSync(path.join(repo, 'simple_gpu', 'config.pbtxt'), `max_batch_size: 8
instance_group [ { kind: KIND_GPU count: 1 gpus: [ 0 ] } ]
optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" } ] } cuda { graphs: true } }
`);
  // Model files in the wrong place.
  mkdirSync(path.join(repo, 'flat'));
  copyFileSync(path.join(repo, 'simple', '1', 'model.onnx'), path.join(repo, 'flat', 'model.onnx'));
  mkdirSync(path.join(repo, 'renamed', '1'), { recursive: true });
  copyFileSync(path.join(repo, 'simple', '1', 'model.onnx'), path.join(repo, 'renamed', '1', 'simple.onnx'));
  agent = await startAgent(repo, { loadModels: 'simple,simple_string,simple_gpu' });
  url = agent.url;
}, 60_000);

afterAll(async () => {
  await agent?.close();
  for (const f of created) rmSync(f, { force: true });
});

describe.skipIf(!HAVE_SHM)('system shared memory (simple_http_shm_client.py)', () => {
  it('unregister all (system and CUDA) to start clean; status is empty', async () => {
    // tritonclient posts these with an empty body.
    expect((await fetch(`${url}/v2/systemsharedmemory/unregister`, { method: 'POST' })).status).toBe(200);
    expect((await postJson(`${url}/v2/cudasharedmemory/unregister`, {})).status).toBe(200);
    expect((await getJson(`${url}/v2/systemsharedmemory/status`)).json).toEqual([]);
  });

  it('inputs read from one region at two offsets, outputs written to another at two offsets', async () => {
    const input0 = Int32Array.from({ length: 16 }, (_, i) => i);
    const input1 = new Int32Array(16).fill(1);
    const inKey = shmObject('input_simple', Buffer.concat([Buffer.from(input0.buffer), Buffer.from(input1.buffer)]));
    const outKey = shmObject('output_simple', 128);
    expect((await postJson(`${url}/v2/systemsharedmemory/region/output_data/register`, { key: outKey, offset: 0, byte_size: 128 })).status).toBe(200);
    expect((await postJson(`${url}/v2/systemsharedmemory/region/input_data/register`, { key: inKey, offset: 0, byte_size: 128 })).status).toBe(200);
    const r = await postJson(`${url}/v2/models/simple/infer`, {
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', parameters: { shared_memory_region: 'input_data', shared_memory_byte_size: 64 } },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', parameters: { shared_memory_region: 'input_data', shared_memory_byte_size: 64, shared_memory_offset: 64 } },
      ],
      outputs: [
        { name: 'OUTPUT0', parameters: { binary_data: true, shared_memory_region: 'output_data', shared_memory_byte_size: 64 } },
        { name: 'OUTPUT1', parameters: { binary_data: true, shared_memory_region: 'output_data', shared_memory_byte_size: 64, shared_memory_offset: 64 } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.json.outputs).toEqual([
      { name: 'OUTPUT0', datatype: 'INT32', shape: [1, 16], parameters: { shared_memory_region: 'output_data', shared_memory_byte_size: 64 } },
      { name: 'OUTPUT1', datatype: 'INT32', shape: [1, 16], parameters: { shared_memory_region: 'output_data', shared_memory_offset: 64, shared_memory_byte_size: 64 } },
    ]);
    const out = readFileSync(`/dev/shm${outKey}`);
    expect(i32(out.subarray(0, 64))).toEqual([...input0].map((x) => x + 1));
    expect(i32(out.subarray(64, 128))).toEqual([...input0].map((x) => x - 1));
    const status = (await getJson(`${url}/v2/systemsharedmemory/status`)).json;
    expect(status).toEqual(expect.arrayContaining([
      { name: 'input_data', key: inKey, offset: 0, byte_size: 128 },
      { name: 'output_data', key: outKey, offset: 0, byte_size: 128 },
    ]));
    expect((await getJson(`${url}/v2/systemsharedmemory/region/input_data/status`)).json).toEqual([{ name: 'input_data', key: inKey, offset: 0, byte_size: 128 }]);
    expect((await postJson(`${url}/v2/systemsharedmemory/unregister`, {})).status).toBe(200);
    expect((await getJson(`${url}/v2/systemsharedmemory/status`)).json).toEqual([]);
  });

  it('reuse_infer_objects_client.py: shared memory, then the same inputs in the body, then shared memory again', async () => {
    const input0 = Int32Array.from({ length: 16 }, (_, i) => 2 * i);
    const input1 = new Int32Array(16).fill(1);
    const keys = {
      input0_data: shmObject('input0_simple', Buffer.from(input0.buffer)),
      input1_data: shmObject('input1_simple', Buffer.from(input1.buffer)),
      output0_data: shmObject('output0_simple', 64),
      output1_data: shmObject('output1_simple', 64),
    };
    for (const [name, key] of Object.entries(keys)) {
      expect((await postJson(`${url}/v2/systemsharedmemory/region/${name}/register`, { key, offset: 0, byte_size: 64 })).status).toBe(200);
    }
    const viaShm = () => postJson(`${url}/v2/models/simple/infer`, {
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', parameters: { shared_memory_region: 'input0_data', shared_memory_byte_size: 64 } },
        { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', parameters: { shared_memory_region: 'input1_data', shared_memory_byte_size: 64 } },
      ],
      outputs: [
        { name: 'OUTPUT0', parameters: { shared_memory_region: 'output0_data', shared_memory_byte_size: 64 } },
        { name: 'OUTPUT1', parameters: { shared_memory_region: 'output1_data', shared_memory_byte_size: 64 } },
      ],
    });
    for (const round of [0, 1, 2]) {
      if (round === 1) {
        const r = await postJson(`${url}/v2/models/simple/infer`, {
          inputs: [
            { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: [...input0] },
            { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: [...input1].map((x) => x * 2) },
          ],
          outputs: [{ name: 'OUTPUT0' }, { name: 'OUTPUT1' }],
        });
        expect(r.json.outputs[0].data).toEqual([...input0].map((x) => x + 2));
        continue;
      }
      writeFileSync(`/dev/shm${keys.output0_data}`, Buffer.alloc(64));
      expect((await viaShm()).status).toBe(200);
      expect(i32(readFileSync(`/dev/shm${keys.output0_data}`))).toEqual([...input0].map((x) => x + 1));
      expect(i32(readFileSync(`/dev/shm${keys.output1_data}`))).toEqual([...input0].map((x) => x - 1));
    }
    expect((await postJson(`${url}/v2/systemsharedmemory/unregister`, {})).status).toBe(200);
  });

  it('simple_http_shm_string_client.py: BYTES inputs and outputs through shared memory', async () => {
    const in0 = bytesTensor(Array.from({ length: 16 }, (_, i) => String(i)));
    const in1 = bytesTensor(Array(16).fill('1'));
    const inKey = shmObject('input_string', Buffer.concat([in0, in1]));
    const outKey = shmObject('output_string', 256);
    await postJson(`${url}/v2/systemsharedmemory/region/input_data/register`, { key: inKey, offset: 0, byte_size: in0.length + in1.length });
    await postJson(`${url}/v2/systemsharedmemory/region/output_data/register`, { key: outKey, offset: 0, byte_size: 256 });
    const r = await postJson(`${url}/v2/models/simple_string/infer`, {
      inputs: [
        { name: 'INPUT0', shape: [1, 16], datatype: 'BYTES', parameters: { shared_memory_region: 'input_data', shared_memory_byte_size: in0.length } },
        { name: 'INPUT1', shape: [1, 16], datatype: 'BYTES', parameters: { shared_memory_region: 'input_data', shared_memory_byte_size: in1.length, shared_memory_offset: in0.length } },
      ],
      outputs: [
        { name: 'OUTPUT0', parameters: { shared_memory_region: 'output_data', shared_memory_byte_size: 128 } },
        { name: 'OUTPUT1', parameters: { shared_memory_region: 'output_data', shared_memory_byte_size: 128, shared_memory_offset: 128 } },
      ],
    });
    expect(r.status).toBe(200);
    const out = readFileSync(`/dev/shm${outKey}`);
    const n0 = r.json.outputs[0].parameters.shared_memory_byte_size;
    const n1 = r.json.outputs[1].parameters.shared_memory_byte_size;
    expect(splitBytesTensor(out.subarray(0, n0)).map(Number)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(splitBytesTensor(out.subarray(128, 128 + n1)).map(Number)).toEqual(Array.from({ length: 16 }, (_, i) => i - 1));
    await postJson(`${url}/v2/systemsharedmemory/unregister`, {});
  });

  it('bad cases are 400 with the reason, and nothing is written outside the region', async () => {
    const key = shmObject('guarded', Buffer.alloc(128, 0xaa));
    const bad = async (p: string, body: unknown) => {
      const r = await postJson(`${url}${p}`, body);
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      return r.json.error as string;
    };
    expect(await bad('/v2/systemsharedmemory/region/x/register', { key: `/${TAG}-missing`, offset: 0, byte_size: 8 })).toMatch(/cannot open the object .* \(no such object in \/dev\/shm/);
    expect(await bad('/v2/systemsharedmemory/region/x/register', { key: '/../etc/passwd', offset: 0, byte_size: 8 })).toMatch(/is not a shared memory object name/);
    expect(await bad('/v2/systemsharedmemory/region/x/register', { key, offset: 100, byte_size: 64 })).toMatch(/offset 100 \+ byte_size 64 is past the end of .* \(128 bytes\)/);
    // A region in the middle of the object: bytes 8..40.
    expect((await postJson(`${url}/v2/systemsharedmemory/region/mid/register`, { key, offset: 8, byte_size: 32 })).status).toBe(200);
    expect(await bad('/v2/systemsharedmemory/region/mid/register', { key, offset: 0, byte_size: 8 })).toMatch(/already registered/);
    const input = (p: Record<string, unknown>) => ({ name: 'INPUT0', shape: [1, 16], datatype: 'INT32', parameters: p });
    const body = (p: Record<string, unknown>, out?: Record<string, unknown>) => ({
      inputs: [input(p), { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(1) }],
      ...(out ? { outputs: [{ name: 'OUTPUT0', parameters: out }] } : {}),
    });
    expect(await bad('/v2/models/simple/infer', body({ shared_memory_region: 'nope', shared_memory_byte_size: 64 }))).toMatch(/Unable to find system shared memory region: 'nope'/);
    expect(await bad('/v2/models/simple/infer', body({ shared_memory_region: 'mid', shared_memory_byte_size: 64 }))).toMatch(/shared_memory_offset 0 \+ shared_memory_byte_size 64 is past the end of region 'mid' \(32 bytes\)/);
    expect(await bad('/v2/models/simple/infer', body({ shared_memory_region: 'mid', shared_memory_byte_size: 32 }))).toMatch(/input 'INPUT0' has 32 bytes of binary data but shape and INT32 need 64/);
    expect(await bad('/v2/models/simple/infer', body({ shared_memory_region: 'mid' }))).toMatch(/needs shared_memory_byte_size/);
    // An output of 64 bytes does not fit the 32-byte region: refused, and the object is untouched.
    const data = { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(3) };
    const r = await postJson(`${url}/v2/models/simple/infer`, {
      inputs: [data, { ...data, name: 'INPUT1' }],
      outputs: [{ name: 'OUTPUT0', parameters: { shared_memory_region: 'mid', shared_memory_byte_size: 32 } }],
    });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/output 'OUTPUT0' has 64 bytes but shared_memory_byte_size is 32/);
    expect(readFileSync(`/dev/shm${key}`).equals(Buffer.alloc(128, 0xaa))).toBe(true);
    expect(await bad('/v2/systemsharedmemory/region/nope/unregister', {})).toMatch(/Unable to find system shared memory region: 'nope'/);
    await postJson(`${url}/v2/systemsharedmemory/unregister`, {});
  });

  it('a region held by a running request cannot be unregistered (400), and can be after', () => {
    const key = shmObject('held', 64);
    const shm = new SystemSharedMemory();
    shm.register('held', { key, offset: 0, byte_size: 64 });
    shm.acquire('held');
    expect(() => shm.unregister('held')).toThrow(/'held' is in use by a running request/);
    expect(() => shm.unregister()).toThrow(/in use/);
    shm.release('held');
    shm.unregister('held');
    expect(shm.status()).toEqual([]);
  });

  it('CUDA shared memory: registering answers a clear "not supported"', async () => {
    const r = await postJson(`${url}/v2/cudasharedmemory/region/c/register`, { raw_handle: { b64: 'AAAA' }, device_id: 0, byte_size: 64 });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/^CUDA shared memory is not supported by gpu-node-agent/);
    expect((await getJson(`${url}/v2/cudasharedmemory/status`)).json).toEqual([]);
  });
});

describe('logging, trace, server metadata', () => {
  it('GET /v2/logging shows the settings; POST changes the level at run time; unsupported settings are refused', async () => {
    expect((await getJson(`${url}/v2/logging`)).json).toEqual({ log_file: '', log_info: false, log_warning: false, log_error: false, log_verbose_level: 0, log_format: 'default' });
    const set = await postJson(`${url}/v2/logging`, { log_error: true, log_warning: true });
    expect(set.json).toMatchObject({ log_error: true, log_warning: true, log_info: false });
    expect(agent.agent.logger.level).toBe('warn');
    expect((await postJson(`${url}/v2/logging`, { log_verbose_level: 1 })).json).toMatchObject({ log_verbose_level: 1, log_info: true });
    expect(agent.agent.logger.level).toBe('debug');
    expect((await postJson(`${url}/v2/logging`, { log_info: false, log_warning: false, log_error: false, log_verbose_level: 0 })).json.log_error).toBe(false);
    expect(agent.agent.logger.level).toBe('silent');
    const file = await postJson(`${url}/v2/logging`, { log_file: '/tmp/x.log' });
    expect(file.status).toBe(400);
    expect(file.json.error).toMatch(/log_file' is not supported/);
  });

  it('trace settings answer "not supported" in Triton\'s error shape', async () => {
    const r = await getJson(`${url}/v2/trace/setting`);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: expect.stringMatching(/^the trace extension is not supported by gpu-node-agent/) });
  });

  it('server metadata lists exactly the extensions implemented', async () => {
    expect((await getJson(`${url}/v2`)).json.extensions).toEqual([
      'binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'system_shared_memory', 'statistics', 'schedule_policy', 'parameters', 'logging',
    ]);
  });
});

describe('placement: instance_group KIND_GPU and accelerators on a host without a usable GPU', () => {
  it('falls back to the CPU (provider-fallback rule), READY, and says so in the index, metadata and config', async () => {
    const index = (await postJson(`${url}/v2/repository/index`, {})).json;
    const e = index.find((x: any) => x.name === 'simple_gpu');
    expect(e.state).toBe('READY');
    expect(e.reason).toMatch(/^instance_group asks for KIND_GPU but no usable GPU runs this model \(.+\); running on cpu/);
    const meta = (await getJson(`${url}/v2/models/simple_gpu`)).json;
    expect(meta.execution_provider).toBe('cpu');
    expect(meta.warnings).toEqual(expect.arrayContaining([
      expect.stringMatching(/gpu accelerator 'tensorrt' is not available in onnxruntime-node 1\.29 here .*; the model runs on cpu/),
      expect.stringMatching(/optimization\.cuda graphs: not passed to onnxruntime-node 1\.29 .*; ignored, the model runs on cpu/),
    ]));
    expect((await getJson(`${url}/v2/models/simple_gpu/config`)).json.instance_group[0]).toMatchObject({ kind: 'KIND_GPU', gpus: [0] });
  });

  it('with --strict-gpu the load is refused instead', async () => {
    const strict = await startAgent(repo, { loadModels: 'simple_gpu', strictGpu: true });
    try {
      const e = (await postJson(`${strict.url}/v2/repository/index`, {})).json.find((x: any) => x.name === 'simple_gpu');
      expect(e.state).toBe('UNAVAILABLE');
      expect(e.reason).toMatch(/KIND_GPU .*--strict-gpu refuses to fall back/);
    } finally {
      await strict.close();
    }
  });
});

describe('where model files belong', () => {
  it('flat/model.onnx without a version folder: put it at flat/1/model.onnx', async () => {
    const r = await postJson(`${url}/v2/repository/models/flat/load`, {});
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/^failed to load 'flat': .*flat\/model\.onnx is not in a version folder; put it at flat\/1\/model\.onnx/);
  });

  it('1/simple.onnx: name it model.onnx or set default_model_filename', async () => {
    const r = await postJson(`${url}/v2/repository/models/renamed/load`, {});
    expect(r.json.error).toMatch(/renamed\/1\/ has simple\.onnx; name it model\.onnx or set default_model_filename: "simple\.onnx"/);
    const ok = await postJson(`${url}/v2/repository/models/renamed/load`, { parameters: { config: JSON.stringify({ default_model_filename: 'simple.onnx' }) } });
    expect(ok.status).toBe(200);
  });

  it('classification on a BYTES output, or with a bad k, is a 400 naming it', async () => {
    const r = await postJson(`${url}/v2/models/simple_string/infer`, {
      inputs: ['INPUT0', 'INPUT1'].map((name) => ({ name, shape: [1, 16], datatype: 'BYTES', data: Array(16).fill('1') })),
      outputs: [{ name: 'OUTPUT0', parameters: { classification: 2 } }],
    });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/output 'OUTPUT0' is BYTES; the classification extension needs a numeric output/);
  });
});
