/**
 * The warm pool and the batcher's admission rules through real HTTP: lazy loading, LRU
 * eviction under a memory budget, preloaded and busy models kept, idle unloading, full
 * queues (429), deadlines (504) and clients that hang up before their request runs.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryProbe } from '../../src/sessions/memory.js';
import { getJson, makeRepository, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

let repo: string;
const running: RunningAgent[] = [];
const MLP_BYTES = 789972; // models/mlp/1/model.onnx from the seeded generator

/** Memory that cannot be measured: every model is charged its file size, deterministically. */
const unmeasured: MemoryProbe = { totalBytes: () => undefined, processUsedBytes: () => undefined };

function addModel(name: string, from: string, config: string) {
  mkdirSync(path.join(repo, name, '1'), { recursive: true });
  cpSync(path.join(repo, from, '1', 'model.onnx'), path.join(repo, name, '1', 'model.onnx'));
  writeFileSync(path.join(repo, name, 'config.pbtxt'), config);
}

async function start(overrides: Record<string, unknown>, memory?: MemoryProbe) {
  const a = await startAgent(repo, overrides, memory ? { memory } : {});
  running.push(a);
  return a;
}

const mlpRequest = { inputs: [{ name: 'x', shape: [1, 256], datatype: 'FP32', data: Array.from({ length: 256 }, (_, i) => (i % 7) / 7) }] };
const fp32Request = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

async function index(url: string): Promise<Record<string, { state?: string; reason?: string }>> {
  const { json } = await postJson(`${url}/v2/repository/index`, {});
  return Object.fromEntries(json.map((e: { name: string }) => [e.name, e]));
}

async function stats(url: string, model: string) {
  return (await getJson(`${url}/v2/models/${model}/stats`)).json.model_stats[0];
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  repo = await makeRepository();
  for (const n of ['mlp_a', 'mlp_b', 'mlp_c']) addModel(n, 'mlp', 'max_batch_size: 8\n');
  // Requests wait here up to 2 s for a batch of 16: long enough to observe them queued.
  const slow = 'max_batch_size: 16\ndynamic_batching { preferred_batch_size: [ 16 ] max_queue_delay_microseconds: 2000000 %s }\n' +
    // Triton's policy: the work-conserving default would run a lone request at once.
    'parameters { key: "batching_policy" value: { string_value: "triton" } }\n';
  addModel('held', 'identity_fp32', slow.replace('%s', ''));
  addModel('small_queue', 'identity_fp32', slow.replace('%s', 'default_queue_policy { max_queue_size: 2 }'));
  addModel('deadline', 'identity_fp32', slow.replace('%s', 'default_queue_policy { default_timeout_microseconds: 100000 }'));
  addModel('override', 'identity_fp32', slow.replace('%s', 'default_queue_policy { allow_timeout_override: true }'));
});

afterAll(async () => {
  await Promise.all(running.map((a) => a.close()));
});

describe('warm pool', () => {
  it('loads a model on its first request (cold start), counted in its stats', async () => {
    const { url } = await start({ loadModels: 'add_sub' });
    expect((await index(url)).identity_fp32).toEqual({ name: 'identity_fp32' });
    const [a, b] = await Promise.all([postJson(`${url}/v2/models/identity_fp32/infer`, fp32Request), postJson(`${url}/v2/models/identity_fp32/infer`, fp32Request)]);
    expect(a.json.outputs[0].data).toEqual([1, 2, 3, 4]);
    expect(b.status).toBe(200);
    const s = await stats(url, 'identity_fp32');
    expect(s.cold_starts).toBe(1); // two concurrent requests share one load
    expect((await index(url)).identity_fp32!.state).toBe('READY');
    // Unknown models and broken ones are not retried on every request.
    expect((await postJson(`${url}/v2/models/corrupt/infer`, fp32Request)).status).toBe(503);
    expect((await postJson(`${url}/v2/models/corrupt/infer`, fp32Request)).json.error).toMatch(/corrupt/);
    expect((await postJson(`${url}/v2/models/nope/infer`, fp32Request)).status).toBe(404);
  });

  it('evicts the least recently used model when a load would exceed the budget', async () => {
    const { url } = await start({ loadModels: '', memoryBudget: String(Math.floor(MLP_BYTES * 2.5)) }, unmeasured);
    expect((await postJson(`${url}/v2/repository/models/mlp_a/load`, {})).status).toBe(200);
    expect((await postJson(`${url}/v2/repository/models/mlp_b/load`, {})).status).toBe(200);
    expect((await postJson(`${url}/v2/models/mlp_a/infer`, mlpRequest)).status).toBe(200); // b is now the LRU
    expect((await postJson(`${url}/v2/repository/models/mlp_c/load`, {})).status).toBe(200);
    let idx = await index(url);
    expect(idx.mlp_a!.state).toBe('READY');
    expect(idx.mlp_c!.state).toBe('READY');
    expect(idx.mlp_b).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/evicted: least recently used, to fit 'mlp_c'/) });
    // A request for the evicted model brings it back (lazy), evicting the next LRU (mlp_a).
    expect((await postJson(`${url}/v2/models/mlp_b/infer`, mlpRequest)).status).toBe(200);
    idx = await index(url);
    expect(idx.mlp_b!.state).toBe('READY');
    expect(idx.mlp_a!.reason).toMatch(/evicted/);
    const s = await stats(url, 'mlp_b');
    expect(s).toMatchObject({ cold_starts: 1, evictions: 1, memory: { device: 'host', bytes: MLP_BYTES, measured_bytes: null, file_bytes: MLP_BYTES } });
  });

  it('never evicts a preloaded model, and says why a load does not fit', async () => {
    const { url } = await start({ loadModels: '', preload: 'mlp_a', memoryBudget: String(Math.floor(MLP_BYTES * 1.5)) }, unmeasured);
    expect((await index(url)).mlp_a!.state).toBe('READY');
    const r = await postJson(`${url}/v2/repository/models/mlp_b/load`, {});
    expect(r.status).toBe(503);
    expect(r.json.error).toMatch(/does not fit in the host memory budget: needs 0\.8 MiB .* by mlp_a \(0\.8 MiB, preloaded\); raise --memory-budget/);
    expect((await index(url)).mlp_a!.state).toBe('READY');
  });

  it('never evicts a model with queued requests', async () => {
    const { url } = await start({ loadModels: 'held', memoryBudget: '300' }, unmeasured);
    // 'held' (a 100-byte file) fits; its request waits in the queue for a batch of 16.
    const pending = postJson(`${url}/v2/models/held/infer`, fp32Request);
    await waitFor(async () => (await stats(url, 'held')).queue_depth === 1, 'the request to be queued');
    const r = await postJson(`${url}/v2/repository/models/identity_fp64/load`, {});
    expect(r.status).toBe(503);
    expect(r.json.error).toMatch(/held \(.*, busy\)/);
    expect((await pending).json.outputs[0].data).toEqual([1, 2, 3, 4]);
    expect((await postJson(`${url}/v2/repository/models/identity_fp64/load`, {})).status).toBe(200);
    expect((await index(url)).held!.reason).toMatch(/evicted/);
  });

  it('unloads models idle longer than --idle-unload-seconds, except preloaded ones', async () => {
    const { url } = await start({ loadModels: 'identity_int8', preload: 'identity_int16', idleUnloadSeconds: 1 });
    await waitFor(async () => (await index(url)).identity_int8!.state === 'UNAVAILABLE', 'the idle model to be unloaded');
    const idx = await index(url);
    expect(idx.identity_int8!.reason).toBe('unloaded (idle for 1 s)');
    expect(idx.identity_int16!.state).toBe('READY');
  });

  it('reports the measured memory of a model on the host', async () => {
    const { url } = await start({ loadModels: 'mlp' });
    const s = await stats(url, 'mlp');
    expect(s.memory.device).toBe('host');
    expect(typeof s.memory.measured_bytes).toBe('number');
    expect(s.memory.bytes).toBeGreaterThanOrEqual(MLP_BYTES);
    expect(s.load_ms).toBeGreaterThan(0);
  });
});

describe('admission: queue limits, deadlines, disconnects', () => {
  it('answers 429 with Retry-After at once when the queue is full', async () => {
    const { url } = await start({ loadModels: 'small_queue' });
    const first = [postJson(`${url}/v2/models/small_queue/infer`, fp32Request), postJson(`${url}/v2/models/small_queue/infer`, fp32Request)];
    await waitFor(async () => (await stats(url, 'small_queue')).queue_depth === 2, 'two queued requests');
    const full = await postJson(`${url}/v2/models/small_queue/infer`, fp32Request);
    expect(full.status).toBe(429);
    expect(full.headers.get('retry-after')).toBe('1');
    expect(full.json.error).toMatch(/queue is full \(max_queue_size 2\)/);
    for (const r of await Promise.all(first)) expect(r.status).toBe(200);
    const s = await stats(url, 'small_queue');
    expect(s.failure_reasons.REJECTED).toBe(1);
  });

  it('answers 504 without running when the queue timeout passes', async () => {
    const { url } = await start({ loadModels: 'deadline' });
    const r = await postJson(`${url}/v2/models/deadline/infer`, fp32Request);
    expect(r.status).toBe(504);
    expect(r.json.error).toMatch(/timed out in the queue/);
    const s = await stats(url, 'deadline');
    expect(s.execution_count).toBe(0);
    expect(s.inference_stats.fail.count).toBe(1);
  });

  it('honours a request timeout parameter where the policy allows it', async () => {
    const { url } = await start({ loadModels: 'override,deadline' });
    const r = await postJson(`${url}/v2/models/override/infer`, { ...fp32Request, parameters: { timeout: 50_000 } });
    expect(r.status).toBe(504);
    const bad = await postJson(`${url}/v2/models/override/infer`, { ...fp32Request, parameters: { timeout: 'soon' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/'timeout' must be a non-negative integer/);
  });

  it('drops a request whose client disconnected before it ran', async () => {
    const { url } = await start({ loadModels: 'held' });
    const ac = new AbortController();
    const gone = fetch(`${url}/v2/models/held/infer`, { method: 'POST', body: JSON.stringify(fp32Request), signal: ac.signal }).catch((e: Error) => e);
    await waitFor(async () => (await stats(url, 'held')).queue_depth === 1, 'the request to be queued');
    ac.abort();
    expect(await gone).toBeInstanceOf(Error);
    await waitFor(async () => (await stats(url, 'held')).queue_depth === 0, 'the request to leave the queue');
    const s = await stats(url, 'held');
    expect(s.execution_count).toBe(0);
    expect(s.failure_reasons.CANCELED).toBe(1);
  });
});
