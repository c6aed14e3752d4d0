/**
 * Load on demand by pull-by-URI: two agent processes with EMPTY repositories behind a real
 * coordinator, and a real HTTP source server on 127.0.0.1. The coordinator knows a manifest
 * for a model (admin API, kept in its SQLite state): a client inference for a model no node has
 * makes the best node pull it by its manifest, waits, and answers 200. Without a manifest: 503
 * with the reason. A request's deadline shorter than the pull: 503 naming the deadline, and
 * the pull finishes for the next request. The manifests survive a coordinator restart.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBundledModels } from '../../scripts/generate-models.mjs';
import { parseManifestsFile } from '../../src/coordinator/manifests/registry.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { parseCoordinatorArgs } from '../../src/coordinator/coordinator-cli.js';
import { createLogger } from '../../src/util/logger.js';
import { sha256, startSourceServer, type SourceServer } from '../sources/source-server.js';
import { get, post, spawnAgent, waitFor, type AgentProcess } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ADMIN = 'admin-token-123';
const ALICE = 'alice-token-123';
const admin = { authorization: `Bearer ${ADMIN}` };
const alice = { authorization: `Bearer ${ALICE}` };
const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));
const addSubInput = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(1) }, { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(2) }] };

let server: SourceServer;
let coordinator: RunningCoordinator;
let stateDir: string;
let agents: AgentProcess[] = [];
let addSub: Buffer;
let simple: Buffer;
const pbtxt = readFileSync(path.join(ROOT, 'models/add_sub/config.pbtxt'));

const manifestFor = (name: string, file: string, bytes = addSub) => ({
  name, version: 1,
  files: [{ path: 'model.onnx', uri: `${server.url}${file}`, sha256: sha256(bytes), size: bytes.length }],
});
const int32Input = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(1) }, { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(2) }] };
const put = async (model: string, body: unknown) => {
  const res = await fetch(`${coordinator.url}/models/${model}/manifest`, { method: 'PUT', headers: { 'content-type': 'application/json', ...admin }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() as any };
};
const start = () => startCoordinator({
  port: 0, token: ADMIN, stateDir, logger: createLogger('silent'), heartbeatTimeoutMs: 3000, heartbeatIntervalMs: 200,
  gateway: { clientTokens: { alice: ALICE } },
});

beforeAll(async () => {
  const gen = tmp('gen-');
  await generateBundledModels(gen);
  addSub = readFileSync(path.join(gen, 'add_sub/1/model.onnx'));
  server = await startSourceServer();
  server.add('/add_sub/model.onnx', addSub);
  server.add('/add_sub/config.pbtxt', pbtxt);
  simple = readFileSync(path.join(gen, 'simple/1/model.onnx'));
  server.add('/slow/model.onnx', simple);
  stateDir = tmp('coord-state-');
  coordinator = await start();
  agents = await Promise.all([0, 1].map(() => spawnAgent(tmp('empty-repo-'), coordinator.agentsUrl, ADMIN, ['--allow-http'])));
  await waitFor(() => coordinator.nodes().filter((n) => n.state === 'Ready').length === 2, 'two agents registered');
}, 90_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await coordinator?.close();
  await server?.close();
});

describe('load on demand by pull-by-URI', () => {
  it('the admin API sets manifests, refuses bad ones with a 400 naming the problem, and audits them', async () => {
    expect((await put('add_sub', { name: 'add_sub', version: 1, files: [{ path: '../x.onnx', uri: `${server.url}/x`, sha256: sha256(addSub) }] })).json.error).toContain("'..' is not allowed");
    const mismatch = await put('add_sub', manifestFor('other', '/add_sub/model.onnx'));
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error).toBe("the manifest is for model 'other', the URL names 'add_sub'");
    const noAuth = await fetch(`${coordinator.url}/models/add_sub/manifest`, { method: 'PUT', headers: { 'content-type': 'application/json', ...alice }, body: '{}' });
    expect(noAuth.status).toBe(401);
    const manifest = { ...manifestFor('add_sub', '/add_sub/model.onnx'), files: [...manifestFor('add_sub', '/add_sub/model.onnx').files, { path: 'config.pbtxt', uri: `${server.url}/add_sub/config.pbtxt`, sha256: sha256(pbtxt), size: pbtxt.length }] };
    const set = await put('add_sub', manifest);
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ model: 'add_sub', updatedBy: 'admin', digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), manifest });
    expect((await get(`${coordinator.url}/models/add_sub/manifest`, admin)).json.digest).toBe(set.json.digest);
    expect((await get(`${coordinator.url}/manifests`, admin)).json.manifests.map((m: any) => m.model)).toEqual(['add_sub']);
    expect((await get(`${coordinator.url}/models/nope/manifest`, admin)).status).toBe(404);
    const rows = coordinator.audit().filter((r) => r.kind === 'manifest');
    expect(rows).toEqual([expect.objectContaining({ kind: 'manifest', nodeId: '', identity: 'admin', action: 'set', target: 'add_sub', result: set.json.digest })]);
  });

  it('a client inference for a model no node has makes a node pull it by its manifest, waits, and answers 200', async () => {
    expect(coordinator.nodes().every((n) => n.models.length === 0)).toBe(true);
    const before = server.requests.filter((r) => r.url === '/add_sub/model.onnx').length;
    const r = await post(`${coordinator.url}/v2/models/add_sub/infer`, addSubInput, alice);
    expect(r.status).toBe(200);
    expect(r.json.outputs.find((o: any) => o.name === 'OUTPUT0').data).toEqual(Array(16).fill(3));
    const nodeId = r.headers.get('x-gateway-node');
    expect(server.requests.filter((x) => x.url === '/add_sub/model.onnx').length).toBe(before + 1);
    // Exactly one node pulled it, and says where it came from.
    const withIt = coordinator.nodes().filter((n) => n.models.some((m) => m.name === 'add_sub' && m.state === 'READY'));
    expect(withIt.map((n) => n.nodeId)).toEqual([nodeId]);
    const agentUrl = coordinator.node(nodeId!)!.url;
    const index = (await post(`${agentUrl}/v2/repository/index`, {})).json;
    expect(index).toEqual([expect.objectContaining({ name: 'add_sub', version: '1', state: 'READY', provenance: expect.objectContaining({ source: `${server.url}/add_sub/model.onnx` }) })]);
    const command = coordinator.audit({ nodeId: nodeId! }).find((x) => x.kind === 'command' && x.action === 'load_model');
    expect(command).toMatchObject({ identity: 'gateway (load on demand for alice, pull of version 1)', target: 'add_sub', result: 'ok' });
    // The next request is routed to the node that has it, with no second pull.
    expect((await post(`${coordinator.url}/v2/models/add_sub/infer`, addSubInput, alice)).status).toBe(200);
    expect(server.requests.filter((x) => x.url === '/add_sub/model.onnx').length).toBe(before + 1);
  });

  it('no manifest known and no node has the model: 503 with the reason', async () => {
    const r = await post(`${coordinator.url}/v2/models/unheard_of/infer`, addSubInput, alice);
    expect(r.status).toBe(503);
    expect(r.json.error).toBe("no node of the fleet has model 'unheard_of' in its repository, and the coordinator knows no manifest for it (PUT /models/unheard_of/manifest or --manifests)");
    expect(coordinator.audit().some((x) => x.kind === 'command' && x.target === 'unheard_of')).toBe(false);
  });

  it('a deadline shorter than the pull answers 503 naming the deadline; the pull goes on for the next request', async () => {
    // 276 bytes (not in any node's cache) at 100 B/s: the download lasts about 2.8 s; the request allows 300 ms.
    server.behave('/slow/model.onnx', { throttle: 100 });
    expect((await put('slow_model', manifestFor('slow_model', '/slow/model.onnx', simple))).status).toBe(200);
    const r = await post(`${coordinator.url}/v2/models/slow_model/infer`, int32Input, { ...alice, 'x-timeout-ms': '300' });
    expect(r.status).toBe(503);
    // The wait is what was left of the 300 ms when the load was asked for (299 when a ms went by).
    const waited = /^model 'slow_model' is not READY on any node; node \S+ is loading it but did not finish within the request's deadline \((\d+) ms\)$/.exec(r.json.error);
    expect(waited, r.json.error).not.toBeNull();
    expect(Number(waited![1])).toBeGreaterThan(0);
    expect(Number(waited![1])).toBeLessThanOrEqual(300);
    const ready = await waitFor(() => coordinator.nodes().find((n) => n.models.some((m) => m.name === 'slow_model' && m.state === 'READY')), 'slow_model READY after its pull', 30_000);
    server.behave('/slow/model.onnx', {});
    const again = await post(`${coordinator.url}/v2/models/slow_model/infer`, int32Input, alice);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-gateway-node')).toBe(ready.nodeId);
  });

  it('manifests survive a coordinator restart; a --manifests file is applied at start and audited', async () => {
    await coordinator.close();
    const file = path.join(tmp('manifests-'), 'manifests.json');
    const fromFile = manifestFor('file_model', '/add_sub/model.onnx');
    writeFileSync(file, JSON.stringify({ file_model: fromFile }));
    const opts = parseCoordinatorArgs(['--token', ADMIN, '--manifests', file], {})!;
    expect(opts.manifests).toEqual([fromFile]);
    coordinator = await startCoordinator({ ...opts, port: 0, stateDir, logger: createLogger('silent'), gateway: { clientTokens: { alice: ALICE } } });
    const list = (await get(`${coordinator.url}/manifests`, admin)).json.manifests;
    expect(list.map((m: any) => [m.model, m.updatedBy])).toEqual([['add_sub', 'admin'], ['file_model', 'config file'], ['slow_model', 'admin']]);
    expect(coordinator.audit().filter((r) => r.kind === 'manifest').map((r) => `${r.identity}:${r.action}:${r.target}`))
      .toEqual(['admin:set:add_sub', 'admin:set:slow_model', 'config file:set:file_model']);
    const del = await fetch(`${coordinator.url}/models/slow_model/manifest`, { method: 'DELETE', headers: admin });
    expect(del.status).toBe(200);
    expect((await get(`${coordinator.url}/models/slow_model/manifest`, admin)).status).toBe(404);
    expect(() => parseManifestsFile('{"a": {"name": "b", "version": 1, "files": []}}', 'm.json')).toThrow(/manifest a in m.json: files/);
    expect(() => parseManifestsFile(JSON.stringify({ a: fromFile }), 'm.json')).toThrow("manifest 'a' in m.json is for model 'file_model'; the key must be the model name");
    expect(() => parseCoordinatorArgs(['--token', ADMIN, '--manifests', '/nonexistent/m.json'], {})).toThrow(/option --manifests: ENOENT/);
  });
});
