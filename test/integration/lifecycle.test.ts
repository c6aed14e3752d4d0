/**
 * Loading, unloading and reloading through the repository API; auth; body limit; control
 * mode; concurrent requests batched with each reply correct. Real onnxruntime, real HTTP.
 */
import { mkdirSync, writeFileSync, cpSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryBody, getJson, makeRepository, postJson, readBinaryResponse, startAgent, type RunningAgent } from '../helpers/agent.js';

let repo: string;
const running: RunningAgent[] = [];

async function start(overrides: Record<string, unknown> = {}) {
  const a = await startAgent(repo, overrides);
  running.push(a);
  return a;
}

beforeAll(async () => {
  repo = await makeRepository();
  // A model whose config is wrong, to check the error names file, line, field and fix.
  mkdirSync(path.join(repo, 'bad_config', '1'), { recursive: true });
  cpSync(path.join(repo, 'add_sub', '1', 'model.onnx'), path.join(repo, 'bad_config', '1', 'model.onnx'));
  writeFileSync(path.join(repo, 'bad_config', 'config.pbtxt'), 'max_batch_size: 8\ninput [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]\ndynamic_batching { max_queue_delay: 100 }\n');
  // A batching model with a long delay and a preferred size, so 8 concurrent requests form one batch.
  mkdirSync(path.join(repo, 'batched', '1'), { recursive: true });
  cpSync(path.join(repo, 'identity_fp32', '1', 'model.onnx'), path.join(repo, 'batched', '1', 'model.onnx'));
  writeFileSync(path.join(repo, 'batched', 'config.pbtxt'), 'max_batch_size: 16\ndynamic_batching { preferred_batch_size: [ 8 ] max_queue_delay_microseconds: 2000000 }\nparameters { key: "batching_policy" value: { string_value: "triton" } }\n');
});

afterAll(async () => {
  await Promise.all(running.map((a) => a.close()));
});

describe('model repository API', () => {
  it('names the file, line, field and fix of a bad config, and serves everything else', async () => {
    const { url } = await start();
    const { json } = await postJson(`${url}/v2/repository/index`, {});
    const bad = json.find((e: { name: string }) => e.name === 'bad_config');
    expect(bad.state).toBe('UNAVAILABLE');
    expect(bad.reason).toMatch(/bad_config\/config\.pbtxt line 3: field 'dynamic_batching': unknown field 'max_queue_delay'; remove it/);
    expect((await getJson(`${url}/v2/models/add_sub/ready`)).status).toBe(200);
  });

  it('unloads after in-flight work, then refuses (lazy loading off); loads again', async () => {
    const { url } = await start({ lazyLoad: false });
    const req = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
    const inflight = Promise.all(Array.from({ length: 20 }, () => postJson(`${url}/v2/models/identity_fp32/infer`, req)));
    const unload = await postJson(`${url}/v2/repository/models/identity_fp32/unload`, undefined);
    expect(unload.status).toBe(200);
    // Every request that was accepted before the unload finished correctly or was refused cleanly.
    for (const r of await inflight) {
      if (r.status === 200) expect(r.json.outputs[0].data).toEqual([1, 2, 3, 4]);
      else expect(r.status).toBe(503);
    }
    const ready = await getJson(`${url}/v2/models/identity_fp32/ready`);
    expect(ready).toMatchObject({ status: 400, json: { ready: false } });
    const infer = await postJson(`${url}/v2/models/identity_fp32/infer`, req);
    expect(infer.status).toBe(503);
    expect(infer.json.error).toMatch(/UNAVAILABLE: unloaded/);
    const index = await postJson(`${url}/v2/repository/index`, {});
    expect(index.json).toContainEqual({ name: 'identity_fp32', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' });

    expect((await postJson(`${url}/v2/repository/models/identity_fp32/load`, undefined)).status).toBe(200);
    expect((await postJson(`${url}/v2/models/identity_fp32/infer`, req)).json.outputs[0].data).toEqual([1, 2, 3, 4]);
  });

  it('loads with a config given in the request (a JSON string, as Triton takes it)', async () => {
    const { url } = await start();
    const config = JSON.stringify({ max_batch_size: 4, dynamic_batching: { preferred_batch_size: [2] } });
    const res = await postJson(`${url}/v2/repository/models/identity_int32/load`, { parameters: { config } });
    expect(res).toMatchObject({ status: 200, json: {} });
    const cfg = await getJson(`${url}/v2/models/identity_int32/config`);
    expect(cfg.json).toMatchObject({ max_batch_size: 4, dynamic_batching: { preferred_batch_size: [2] } });
    const tooBig = await postJson(`${url}/v2/models/identity_int32/infer`, { inputs: [{ name: 'INPUT0', shape: [5, 4], datatype: 'INT32', data: Array(20).fill(0) }] });
    expect(tooBig.json.error).toMatch(/takes 1 to 4/);
  });

  it('reloading keeps serving the old version until the new one is ready', async () => {
    const { url } = await start();
    const req = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'UINT8', data: [1, 2, 3, 4] }] };
    const during = Promise.all(Array.from({ length: 10 }, () => postJson(`${url}/v2/models/identity_uint8/infer`, req)));
    expect((await postJson(`${url}/v2/repository/models/identity_uint8/load`, {})).status).toBe(200);
    for (const r of await during) expect(r.status).toBe(200);
  });

  it('a new version comes up before the old one goes', async () => {
    // identity_int16 v1 serves; v2 appears in the repository; a load switches to v2 without a failed request.
    const { url } = await start({ loadModels: 'identity_int16' });
    cpSync(path.join(repo, 'identity_int16', '1'), path.join(repo, 'identity_int16', '2'), { recursive: true });
    const req = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'INT16', data: [1, -2, 3, -4] }] };
    let stop = false;
    const statuses: number[] = [];
    const traffic = (async () => {
      while (!stop) statuses.push((await postJson(`${url}/v2/models/identity_int16/infer`, req)).status);
    })();
    expect((await postJson(`${url}/v2/repository/models/identity_int16/load`, {})).status).toBe(200);
    stop = true;
    await traffic;
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const infer = await postJson(`${url}/v2/models/identity_int16/infer`, req);
    expect(infer.json).toMatchObject({ model_version: '2', outputs: [{ data: [1, -2, 3, -4] }] });
    const index = (await postJson(`${url}/v2/repository/index`, {})).json.filter((e: { name: string }) => e.name === 'identity_int16');
    expect(index).toEqual([
      { name: 'identity_int16', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' },
      { name: 'identity_int16', version: '2', state: 'READY', reason: '' },
    ]);
    expect((await getJson(`${url}/v2/models/identity_int16`)).json.versions).toEqual(['2']);
  });

  it('refuses bad load requests with the reason', async () => {
    const { url } = await start();
    let r = await postJson(`${url}/v2/repository/models/nope/load`, {});
    expect(r).toMatchObject({ status: 404, json: { error: expect.stringMatching(/'nope' is not in the model repository/) } });
    r = await postJson(`${url}/v2/repository/models/corrupt/load`, {});
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/failed to load 'corrupt': version 1: onnxruntime could not create a session/);
    r = await postJson(`${url}/v2/repository/models/add_sub/load`, { parameters: { config: '{"max_batch_size": "x"}' } });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/field 'max_batch_size'/);
    r = await postJson(`${url}/v2/repository/models/add_sub/load`, { parameters: { config: JSON.stringify({ input: [{ name: 'IN', data_type: 'TYPE_FP32', dims: [16] }] }) } });
    expect(r.json.error).toMatch(/input 'IN' is not in the model/);
    r = await postJson(`${url}/v2/repository/models/add_sub/load`, { parameters: { 'file:1/model.onnx': 'AAAA' } });
    expect(r.json.error).toMatch(/uploading files needs the 'config' load parameter/);
    r = await postJson(`${url}/v2/repository/models/..%2F..%2Fetc/load`, {});
    expect(r.status).toBe(404);
    // add_sub kept its last good state through all that.
    expect((await getJson(`${url}/v2/models/add_sub/ready`)).status).toBe(200);
  });

  it('refuses load and unload in control mode none', async () => {
    const { url } = await start({ modelControlMode: 'none', loadModels: 'add_sub' });
    const r = await postJson(`${url}/v2/repository/models/add_sub/unload`, {});
    expect(r.status).toBe(409);
    expect(r.json.error).toMatch(/model control mode is none/);
    // Only add_sub was loaded; the others are in the repository but not loaded.
    const other = await postJson(`${url}/v2/models/simple/infer`, { inputs: [] });
    expect(other.status).toBe(503);
    expect(other.json.error).toMatch(/is not loaded/);
  });
});

describe('auth and limits', () => {
  it('requires the bearer token everywhere but health', async () => {
    const { url } = await start({ apiToken: 'secret-token-123' });
    expect((await getJson(`${url}/v2/health/live`)).status).toBe(200);
    expect((await getJson(`${url}/v2/health/ready`)).status).toBe(200);
    const denied = await getJson(`${url}/v2/models/add_sub`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toBe('Bearer');
    expect(denied.json.error).toMatch(/bearer token/);
    expect((await getJson(`${url}/v2/models/add_sub`, { authorization: 'Bearer wrong-token-123' })).status).toBe(401);
    expect((await getJson(`${url}/v2/models/add_sub`, { authorization: 'Bearer secret-token-123' })).status).toBe(200);
  });

  it('answers 413 for a body over the limit, and keeps serving', async () => {
    const { url } = await start({ bodyLimit: 4096, loadModels: 'identity_fp32' });
    const big = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], padding: 'x'.repeat(5000) };
    const r = await postJson(`${url}/v2/models/identity_fp32/infer`, big);
    expect(r.status).toBe(413);
    expect(r.json.error).toMatch(/larger than the limit of 4096 bytes \(--body-limit\)/);
    const ok = await postJson(`${url}/v2/models/identity_fp32/infer`, { inputs: big.inputs });
    expect(ok.status).toBe(200);
  });
});

describe('batching under concurrency', () => {
  it('merges concurrent requests into one run and gives each its own rows', async () => {
    const { url } = await start({ loadModels: 'batched' });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      postJson(`${url}/v2/models/batched/infer`, { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [i, i + 0.25, i + 0.5, i + 0.75] }] })));
    results.forEach((r, i) => expect(r.json.outputs[0].data).toEqual([i, i + 0.25, i + 0.5, i + 0.75]));
    const stats = (await getJson(`${url}/v2/models/batched/stats`)).json.model_stats[0];
    expect(stats.inference_count).toBe(8);
    expect(stats.execution_count).toBe(1);
    expect(stats.batch_stats).toEqual([expect.objectContaining({ batch_size: 8 })]);
  });

  it('keeps rows straight when requests of several rows and both encodings batch together', async () => {
    const { url } = await start({ loadModels: 'add_sub' });
    const jobs = Array.from({ length: 40 }, async (_, i) => {
      const rows = (i % 3) + 1;
      const a = Float32Array.from({ length: rows * 16 }, (_, k) => i * 1000 + k);
      const b = Float32Array.from({ length: rows * 16 }, (_, k) => k % 7);
      if (i % 2) {
        const { body, headerLength } = binaryBody({
          inputs: [
            { name: 'INPUT0', shape: [rows, 16], datatype: 'FP32', parameters: { binary_data_size: a.byteLength } },
            { name: 'INPUT1', shape: [rows, 16], datatype: 'FP32', parameters: { binary_data_size: b.byteLength } },
          ],
          parameters: { binary_data_output: true },
        }, [a, b]);
        const res = await fetch(`${url}/v2/models/add_sub/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
        const { header, rest } = await readBinaryResponse(res);
        expect(header.outputs[0].shape).toEqual([rows, 16]);
        const sum = new Float32Array(rest.buffer.slice(rest.byteOffset, rest.byteOffset + a.byteLength));
        expect(Array.from(sum)).toEqual(Array.from(a, (x, k) => x + b[k]!));
      } else {
        const r = await postJson(`${url}/v2/models/add_sub/infer`, {
          inputs: [
            { name: 'INPUT0', shape: [rows, 16], datatype: 'FP32', data: Array.from(a) },
            { name: 'INPUT1', shape: [rows, 16], datatype: 'FP32', data: Array.from(b) },
          ],
        });
        expect(r.json.outputs[1].data).toEqual(Array.from(a, (x, k) => x - b[k]!));
      }
    });
    await Promise.all(jobs);
  });

  it('never merges requests whose non-batch dimensions differ', async () => {
    const { url } = await start({ loadModels: 'identity_var' });
    const widths = [1, 3, 3, 5, 1, 3];
    const results = await Promise.all(widths.map((w, i) =>
      postJson(`${url}/v2/models/identity_var/infer`, { inputs: [{ name: 'INPUT0', shape: [1, w], datatype: 'FP32', data: Array.from({ length: w }, (_, k) => i * 10 + k) }] })));
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.json.outputs[0].shape).toEqual([1, widths[i]]);
      expect(r.json.outputs[0].data).toEqual(Array.from({ length: widths[i]! }, (_, k) => i * 10 + k));
    });
  });
});
