/**
 * Sessions hosted in worker threads (--session-thread worker): the same answers as on the main
 * thread for every kind of tensor, batching included, and clean unloads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, makeRepository, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

let agent: RunningAgent;

beforeAll(async () => {
  agent = await startAgent(await makeRepository(), {
    sessionThread: 'worker',
    loadModels: 'add_sub,identity_bytes,identity_int64,identity_fp16,mlp,corrupt',
  });
});

afterAll(() => agent?.close());

describe('sessions in worker threads', () => {
  it('computes the same values, for concurrent batched requests too', async () => {
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) =>
      postJson(`${agent.url}/v2/models/add_sub/infer`, {
        inputs: ['INPUT0', 'INPUT1'].map((name, k) => ({ name, shape: [1, 16], datatype: 'FP32', data: Array.from({ length: 16 }, (_, j) => i * 100 + j * (k + 1)) })),
      })));
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.json.outputs[0].data).toEqual(Array.from({ length: 16 }, (_, j) => 2 * i * 100 + 3 * j));
    });
  });

  it('carries strings, int64 and fp16 across the thread boundary', async () => {
    const bytes = await postJson(`${agent.url}/v2/models/identity_bytes/infer`, { inputs: [{ name: 'INPUT0', shape: [2, 1], datatype: 'BYTES', data: ['α', 'β γ'] }] });
    expect(bytes.json.outputs[0].data).toEqual(['α', 'β γ']);
    const i64 = await fetch(`${agent.url}/v2/models/identity_int64/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'INT64', data: ['9007199254740993', -2, 0, 7] }] }),
    });
    expect(await i64.text()).toContain('"data":[9007199254740993,-2,0,7]'); // exact beyond 2^53
    const f16 = await postJson(`${agent.url}/v2/models/identity_fp16/infer`, { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP16', data: [0.5, -1, 2, 1024] }] });
    expect(f16.json.outputs[0].data).toEqual([0.5, -1, 2, 1024]);
  });

  it('reports a model that cannot load, and unloads and reloads cleanly', async () => {
    const idx = (await postJson(`${agent.url}/v2/repository/index`, {})).json;
    expect(idx.find((e: { name: string }) => e.name === 'corrupt').reason).toMatch(/Protobuf parsing failed|could not create a session/);
    expect((await postJson(`${agent.url}/v2/repository/models/mlp/unload`, {})).status).toBe(200);
    expect((await postJson(`${agent.url}/v2/repository/models/mlp/load`, {})).status).toBe(200);
    const r = await postJson(`${agent.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', shape: [2, 256], datatype: 'FP32', data: Array(512).fill(0.1) }] });
    expect(r.json.outputs[0].shape).toEqual([2, 256]);
    expect(r.json.outputs[0].data.slice(0, 256)).toEqual(r.json.outputs[0].data.slice(256));
    expect((await getJson(`${agent.url}/v2/models/mlp`)).json.execution_provider).toBe('cpu');
  });
});
