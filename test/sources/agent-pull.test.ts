/**
 * The agent pulls models by manifest: an agent with an EMPTY repository gets a load request
 * with a `source` (real HTTP server on 127.0.0.1, real onnxruntime), serves the model, pulls
 * version 2 while version 1 serves, rolls back with the source gone, shares one transfer
 * between two concurrent loads, and refuses bad manifests with a 400 naming the problem.
 * Also through the reference coordinator: load_model with a source, progress events,
 * rollback_model.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBundledModels } from '../../scripts/generate-models.mjs';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { getJson, parseMetrics, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';
import { sha256, startSourceServer, type SourceServer } from './source-server.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
let server: SourceServer;
let agent: RunningAgent;
let addSub: Buffer;
let simple: Buffer;
const pbtxt = readFileSync(path.join(ROOT, 'models/add_sub/config.pbtxt'));

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));
const fp32 = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(1) }, { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(2) }] };
const int32 = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(1) }, { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(2) }] };

function v1(name = 'add_sub') {
  return {
    name, version: 1,
    files: [
      { path: 'model.onnx', uri: `${server.url}/add_sub/model.onnx`, sha256: sha256(addSub), size: addSub.length },
      { path: 'config.pbtxt', uri: `${server.url}/add_sub/config.pbtxt`, sha256: sha256(pbtxt), size: pbtxt.length },
    ],
  };
}
function v2() {
  return { name: 'add_sub', version: 2, files: [{ path: 'model.onnx', uri: `${server.url}/simple/model.onnx`, sha256: sha256(simple), size: simple.length }] };
}
const load = (model: string, parameters: unknown, url = agent.url) => postJson(`${url}/v2/repository/models/${model}/load`, { parameters });

beforeAll(async () => {
  const gen = tmp('gen-');
  await generateBundledModels(gen);
  addSub = readFileSync(path.join(gen, 'add_sub/1/model.onnx'));
  simple = readFileSync(path.join(gen, 'simple/1/model.onnx'));
  server = await startSourceServer();
  server.add('/add_sub/model.onnx', addSub);
  server.add('/add_sub/config.pbtxt', pbtxt);
  server.add('/simple/model.onnx', simple);
  agent = await startAgent(tmp('empty-repo-'), { stateDir: tmp('state-'), allowHttp: true, pullStallSeconds: 2 });
});
afterAll(async () => {
  await agent?.close();
  await server?.close();
});

describe('load API with a source manifest', () => {
  it('an empty repository pulls, verifies and serves the model', async () => {
    expect((await postJson(`${agent.url}/v2/repository/index`, {})).json).toEqual([]);
    const r = await load('add_sub', { source: v1() });
    expect(r).toMatchObject({ status: 200 });
    const infer = await postJson(`${agent.url}/v2/models/add_sub/infer`, fp32);
    expect(infer.status).toBe(200);
    expect(infer.json.outputs[0].data).toEqual(Array(16).fill(3));
    const index = (await postJson(`${agent.url}/v2/repository/index`, {})).json;
    expect(index).toEqual([expect.objectContaining({
      name: 'add_sub', version: '1', state: 'READY',
      provenance: expect.objectContaining({ manifest_digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), source: `${server.url}/add_sub/model.onnx`, pulled_by: 'api' }),
    })]);
    const meta = (await getJson(`${agent.url}/v2/models/add_sub`)).json;
    expect(meta.provenance).toEqual(index[0].provenance);
    // The config came from the manifest's config.pbtxt (max_batch_size 64).
    expect((await getJson(`${agent.url}/v2/models/add_sub/config`)).json.max_batch_size).toBe(64);
    const metrics = parseMetrics(await (await fetch(`${agent.url}/metrics`)).text());
    expect(metrics.get('gpu_agent_pull_bytes_total')).toBe(addSub.length + pbtxt.length);
    expect(metrics.get('gpu_agent_cache_bytes')).toBe(addSub.length + pbtxt.length);
    expect(metrics.get('gpu_agent_pull_duration_seconds_count')).toBe(1);
  });

  it('version 2 downloads while version 1 serves, then replaces it', async () => {
    // 276 bytes at 100 B/s: the download lasts ~2.8 s, long enough to be seen by polling.
    server.behave('/simple/model.onnx', { throttle: 100 });
    const loading = load('add_sub', { source: v2() });
    let sawDownloading = false;
    for (let i = 0; i < 400 && !sawDownloading; i++) {
      const index = (await postJson(`${agent.url}/v2/repository/index`, {})).json as any[];
      const pulling = index.find((e) => e.version === '2' && e.state === 'DOWNLOADING');
      if (pulling) {
        sawDownloading = true;
        expect(pulling.progress).toEqual(expect.objectContaining({ bytes_total: simple.length, bytes_done: expect.any(Number), rate_bytes_per_second: expect.any(Number) }));
        expect(index.find((e) => e.version === '1')).toMatchObject({ state: 'READY' });
        // Statistics show both: version 1's counters and version 2's download.
        const stats = (await getJson(`${agent.url}/v2/models/add_sub/stats`)).json.model_stats as any[];
        expect(stats.find((e) => e.version === '1')).toMatchObject({ inference_count: expect.any(Number) });
        expect(stats.find((e) => e.version === '2')).toMatchObject({ state: expect.stringMatching(/^(DOWNLOADING|VERIFYING)$/), progress: expect.objectContaining({ bytes_total: simple.length }) });
        // Version 1 keeps answering during the download.
        expect((await postJson(`${agent.url}/v2/models/add_sub/infer`, fp32)).status).toBe(200);
      } else await new Promise((r) => setTimeout(r, 10));
    }
    expect(sawDownloading).toBe(true);
    expect((await loading).status).toBe(200);
    server.behave('/simple/model.onnx', {});
    const infer = await postJson(`${agent.url}/v2/models/add_sub/infer`, int32);
    expect(infer.json.model_version).toBe('2');
    expect(infer.json.outputs[0]).toMatchObject({ datatype: 'INT32', data: Array(16).fill(3) });
    const index = (await postJson(`${agent.url}/v2/repository/index`, { ready: true })).json;
    expect(index.map((e: any) => e.version)).toEqual(['2']);
  });

  it('rolls back to version 1 from the cache, with no network', async () => {
    const before = server.requests.length;
    const r = await load('add_sub', { version: 1 });
    expect(r.status).toBe(200);
    expect(server.requests.length).toBe(before); // nothing fetched
    const infer = await postJson(`${agent.url}/v2/models/add_sub/infer`, fp32);
    expect(infer.json.model_version).toBe('1');
    expect(infer.json.outputs[0].datatype).toBe('FP32');
    const bad = await load('add_sub', { version: 7 });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toContain('version 7 of \'add_sub\' was never pulled on this node (pulled: 1, 2)');
  });

  it('two concurrent loads of the same file make one transfer', async () => {
    server.behave('/add_sub/model.onnx', { throttle: 200_000 });
    const before = server.requests.filter((r) => r.url === '/add_sub/model.onnx').length;
    const [a, b] = await Promise.all([load('twin_a', { source: { ...v1('twin_a'), files: [v1().files[0]] } }), load('twin_b', { source: { ...v1('twin_b'), files: [v1().files[0]] } })]);
    server.behave('/add_sub/model.onnx', {});
    expect([a.status, b.status]).toEqual([200, 200]);
    // add_sub's blob is already cached from the first test: no transfer at all, for both.
    expect(server.requests.filter((r) => r.url === '/add_sub/model.onnx').length).toBe(before);
    expect((await postJson(`${agent.url}/v2/models/twin_b/infer`, fp32)).status).toBe(200);
  });

  it('a model pulled for the first time answers its stats with the download progress, then its counters', async () => {
    const mlp = readFileSync(path.join(ROOT, 'models/mlp/1/model.onnx'));
    const mlpConfig = Buffer.from(readFileSync(path.join(ROOT, 'models/mlp/config.pbtxt'), 'utf8').replace('name: "mlp"', 'name: "fresh_mlp"'));
    server.add('/mlp/model.onnx', mlp);
    server.add('/mlp/config.pbtxt', mlpConfig);
    server.behave('/mlp/model.onnx', { throttle: 200_000 });
    const manifest = { name: 'fresh_mlp', version: 3, files: [
      { path: 'model.onnx', uri: `${server.url}/mlp/model.onnx`, sha256: sha256(mlp), size: mlp.length },
      { path: 'config.pbtxt', uri: `${server.url}/mlp/config.pbtxt`, sha256: sha256(mlpConfig), size: mlpConfig.length },
    ] };
    const loading = load('fresh_mlp', { source: manifest });
    let seen: any;
    for (let i = 0; i < 800 && !seen; i++) {
      const r = await getJson(`${agent.url}/v2/models/fresh_mlp/stats`);
      const entry = r.status === 200 ? r.json.model_stats.find((e: any) => e.state === 'DOWNLOADING' && e.progress.bytes_done > 0) : undefined;
      if (entry) seen = entry;
      else await new Promise((res) => setTimeout(res, 10));
    }
    server.behave('/mlp/model.onnx', {});
    expect(seen).toMatchObject({ name: 'fresh_mlp', version: '3', inference_count: 0, execution_count: 0 });
    expect(seen.progress).toEqual(expect.objectContaining({ bytes_total: mlp.length + mlpConfig.length, bytes_done: expect.any(Number), rate_bytes_per_second: expect.any(Number) }));
    expect(seen.progress.bytes_done).toBeLessThan(mlp.length + mlpConfig.length);
    expect(await loading).toMatchObject({ status: 200 });
    const after = (await getJson(`${agent.url}/v2/models/fresh_mlp/versions/3/stats`)).json.model_stats;
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ name: 'fresh_mlp', version: '3' });
    expect(after[0].state).toBeUndefined(); // READY: the regular statistics, no progress any more
    expect(after[0].progress).toBeUndefined();
    // A model neither served nor pulling still gets the precise 404.
    expect((await getJson(`${agent.url}/v2/models/never_heard_of/stats`)).status).toBe(404);
  });

  it('refuses bad manifests with a 400 naming the problem; serving is unaffected', async () => {
    const traversal = await load('evil', { source: { name: 'evil', version: 1, files: [{ path: '../../etc/cron.d/x.onnx', uri: `${server.url}/add_sub/model.onnx`, sha256: sha256(addSub) }] } });
    expect(traversal.status).toBe(400);
    expect(traversal.json.error).toContain("'..' is not allowed");
    const absolute = await load('evil', { source: JSON.stringify({ name: 'evil', version: 1, files: [{ path: '/tmp/x.onnx', uri: `${server.url}/add_sub/model.onnx`, sha256: sha256(addSub) }] }) });
    expect(absolute.json.error).toContain('absolute paths are not allowed');
    const fileUri = await load('evil', { source: { name: 'evil', version: 1, files: [{ path: 'model.onnx', uri: 'file:///etc/passwd', sha256: sha256(addSub) }] } });
    expect(fileUri.json.error).toMatch(/files\.0\.uri: must be an https:\/\//);
    const mismatch = await load('evil', { source: { name: 'other', version: 1, files: [{ path: 'model.onnx', uri: `${server.url}/add_sub/model.onnx`, sha256: sha256(addSub) }] } });
    expect(mismatch.json.error).toContain("a manifest for 'other', the URL names 'evil'");
    const fresh = Buffer.concat([addSub, Buffer.from('not cached yet')]);
    server.add('/corrupt/model.onnx', fresh, { wrong: true });
    const wrong = await load('corrupted', { source: { name: 'corrupted', version: 1, files: [{ path: 'model.onnx', uri: `${server.url}/corrupt/model.onnx`, sha256: sha256(fresh) }] } });
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toContain(`the manifest says ${sha256(fresh)}, the downloaded bytes hash to ${sha256(Buffer.from(fresh.map((x) => x ^ 0xff)))}`);
    const index = (await postJson(`${agent.url}/v2/repository/index`, {})).json as any[];
    expect(index.find((e) => e.name === 'corrupted')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringContaining('sha256 mismatch') });
    const metrics = parseMetrics(await (await fetch(`${agent.url}/metrics`)).text());
    expect(metrics.get('gpu_agent_pull_verification_failures_total')).toBe(1);
    expect((await postJson(`${agent.url}/v2/models/add_sub/infer`, fp32)).status).toBe(200);
  });
});

describe('coordinator: load_model with a source, progress events, rollback_model', () => {
  const TOKEN = 'fleet-token-123';
  const auth = { authorization: `Bearer ${TOKEN}` };
  let coordinator: RunningCoordinator;
  let fleetAgent: RunningAgent;
  let nodeId: string;

  beforeAll(async () => {
    coordinator = await startCoordinator({ port: 0, token: TOKEN, heartbeatTimeoutMs: 5000, commandTimeoutMs: 60_000 });
    fleetAgent = await startAgent(tmp('empty-repo-'), { stateDir: tmp('state-'), allowHttp: true, coordinatorUrl: coordinator.agentsUrl, coordinatorToken: TOKEN, heartbeatIntervalMs: 500 });
    for (let i = 0; i < 500 && !nodeId; i++) {
      const nodes = (await getJson(`${coordinator.url}/nodes`, auth)).json.nodes;
      if (nodes.length) nodeId = nodes[0].nodeId;
      else await new Promise((r) => setTimeout(r, 20));
    }
  });
  afterAll(async () => {
    await fleetAgent?.close();
    await coordinator?.close();
  });

  it('downloads with progress events, serves, and rolls back offline', async () => {
    const command = (body: unknown) => postJson(`${coordinator.url}/nodes/${nodeId}/commands`, body, auth);
    server.behave('/add_sub/model.onnx', { throttle: 100_000 });
    const r1 = await command({ type: 'load_model', model: 'add_sub', source: v1() });
    server.behave('/add_sub/model.onnx', {});
    expect(r1.json).toMatchObject({ ok: true });
    const r2 = await command({ type: 'load_model', model: 'add_sub', source: v2() });
    expect(r2.json).toMatchObject({ ok: true });
    const node = (await getJson(`${coordinator.url}/nodes/${nodeId}`, auth)).json;
    const events = node.events.map((e: any) => e.message?.event ?? e.event ?? e).filter((e: any) => e.kind === 'model_state' && e.model === 'add_sub');
    const states = events.filter((e: any) => e.version === '1').map((e: any) => e.state);
    expect(states[0]).toBe('DOWNLOADING');
    expect(states).toContain('VERIFYING');
    expect(states).toContain('LOADING');
    expect(states).toContain('READY');
    expect(states.indexOf('VERIFYING')).toBeLessThan(states.indexOf('LOADING'));
    const total = addSub.length + pbtxt.length;
    expect(events.find((e: any) => e.state === 'DOWNLOADING' && e.version === '1')?.progress).toMatchObject({ bytesTotal: total, bytesDone: expect.any(Number) });
    expect(events.find((e: any) => e.state === 'VERIFYING' && e.version === '1')?.progress).toMatchObject({ bytesTotal: total, bytesDone: total });
    // Rate-limited: far fewer DOWNLOADING events than chunks.
    expect(events.filter((e: any) => e.state === 'DOWNLOADING' && e.version === '1').length).toBeLessThan(60);
    // A manifest with a traversal path is refused by the coordinator's own validation.
    const evil = await command({ type: 'load_model', model: 'x', source: { name: 'x', version: 1, files: [{ path: '../x.onnx', uri: 'https://h/x', sha256: sha256(addSub) }] } });
    expect(evil.status).toBe(400);
    const before = server.requests.length;
    const rb = await command({ type: 'rollback_model', model: 'add_sub' });
    expect(rb.json).toMatchObject({ ok: true });
    expect(server.requests.length).toBe(before);
    const infer = await postJson(`${fleetAgent.url}/v2/models/add_sub/infer`, fp32);
    expect(infer.json.model_version).toBe('1');
    const models = (await getJson(`${coordinator.url}/nodes/${nodeId}`, auth)).json.models ?? node.models;
    expect(Array.isArray(models)).toBe(true);
  });
});
