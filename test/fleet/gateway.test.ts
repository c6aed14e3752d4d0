/**
 * The routing gateway in front of real agents: three agent processes (CPU models, each its own
 * port) behind a real reference coordinator on 127.0.0.1. Clients talk only to the
 * coordinator's V2 endpoint.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/logger.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { makeRepository } from '../helpers/agent.js';
import { fp32, get, post, registeredIds, spawnAgent, waitFor, type AgentProcess } from './helpers.js';

const ADMIN = 'admin-token-123';
const ALICE = 'alice-token-123';
const admin = { authorization: `Bearer ${ADMIN}` };
const alice = { authorization: `Bearer ${ALICE}` };

let repo: string;
let coordinator: RunningCoordinator;
let a: AgentProcess; // identity_fp32, add_sub
let b: AgentProcess; // identity_fp32
let c: AgentProcess; // identity_int32 (mlp on demand)
const ids: Record<string, string> = {};

const infer = (model: string, body: unknown = fp32, headers: Record<string, string> = {}) =>
  post(`${coordinator.url}/v2/models/${model}/infer`, body, { ...alice, ...headers });
const addSub = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: Array.from({ length: 16 }, (_, i) => i) }, { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(1) }] };
const nodeOf = (r: { headers: Headers }) => r.headers.get('x-gateway-node');
const command = (node: string, body: unknown) => post(`${coordinator.url}/nodes/${ids[node]}/commands`, body, admin);
const nodeView = async (node: string) => (await get(`${coordinator.url}/nodes/${ids[node]}`, admin)).json;

beforeAll(async () => {
  repo = await makeRepository();
  coordinator = await startCoordinator({
    port: 0, token: ADMIN, logger: createLogger('silent'), heartbeatTimeoutMs: 3000, heartbeatIntervalMs: 200,
    gateway: { clientTokens: { alice: ALICE }, breaker: { failureThreshold: 2, openMs: 60_000 } },
  });
  [a, b, c] = await Promise.all([
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32,add_sub']),
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32']),
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_int32']),
  ]);
  Object.assign(ids, await registeredIds(coordinator, { a, b, c }));
}, 90_000);

afterAll(async () => {
  await Promise.all([a, b, c].map((p) => p?.stop()));
  await coordinator?.close();
});

describe('gateway: one client endpoint for the fleet', () => {
  it('routes to the node that has the model, and answers like the node', async () => {
    const direct = await post(`${a.url}/v2/models/add_sub/infer`, addSub);
    expect(direct.status).toBe(200);
    for (let i = 0; i < 6; i++) {
      const r = await infer('add_sub', addSub);
      expect(r.status).toBe(200);
      expect(nodeOf(r)).toBe(ids.a);
      expect(r.json.outputs).toEqual(direct.json.outputs);
    }
    const meta = await get(`${coordinator.url}/v2/models/add_sub`, alice);
    expect(meta.status).toBe(200);
    expect(meta.json).toMatchObject({ name: 'add_sub' });
    expect((await get(`${coordinator.url}/v2/models/add_sub/ready`, alice)).status).toBe(200);
    expect((await get(`${coordinator.url}/v2/health/ready`)).json).toMatchObject({ ready: true, nodes: 3 });
  });

  it('spreads load over the nodes that have the model', async () => {
    const seen = new Map<string, number>();
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 10; i++) {
        const r = await infer('identity_fp32');
        expect(r.status).toBe(200);
        seen.set(nodeOf(r)!, (seen.get(nodeOf(r)!) ?? 0) + 1);
      }
    }));
    expect([...seen.keys()].sort()).toEqual([ids.a, ids.b].sort());
  });

  it('passes a 4xx from the node through as final, without a retry', async () => {
    const r = await infer('identity_fp32', { inputs: [{ name: 'NOPE', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/NOPE/);
    expect(r.headers.get('x-gateway-attempts')).toBe('1');
  });

  it('refuses clients without a client token, and the admin token on inference', async () => {
    expect((await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32)).status).toBe(401);
    const withAdmin = await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32, admin);
    expect(withAdmin.status).toBe(401);
    expect(withAdmin.json.error).toMatch(/admin token is not accepted/);
    expect((await get(`${coordinator.url}/nodes`, alice)).status).toBe(401);
  });

  it('answers 503 for a model no node has (no manifest known), 400 for a bad deadline, 504 for one already past', async () => {
    const r = await infer('no_such_model');
    expect(r.status).toBe(503);
    expect(r.json.error).toMatch(/no node of the fleet has model 'no_such_model' in its repository, and the coordinator knows no manifest for it/);
    expect((await infer('identity_fp32', fp32, { 'x-timeout-ms': 'soon' })).json.error).toMatch(/x-timeout-ms must be a positive number/);
    const late = await infer('identity_fp32', { ...fp32, parameters: { timeout: 1 } });
    expect(late.status).toBe(504);
    expect(late.json.error).toMatch(/deadline/);
  });

  it('loads a model on demand on a node that has it in its repository', async () => {
    expect(coordinator.nodes().some((n) => n.models.some((m) => m.name === 'mlp' && m.state === 'READY'))).toBe(false);
    const tooShort = await post(`${coordinator.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }, { ...alice, 'x-timeout-ms': '1' });
    expect(tooShort.status).toBe(503);
    expect(tooShort.json.error).toMatch(/is loading it but did not finish within the request's deadline/);
    const meta = await waitFor(async () => {
      const r = await get(`${coordinator.url}/v2/models/mlp`, alice);
      return r.status === 200 ? r : undefined;
    }, 'mlp to be READY somewhere');
    const input = meta.json.inputs[0];
    const r = await post(`${coordinator.url}/v2/models/mlp/infer`, { inputs: [{ name: input.name, shape: input.shape.map((d: number) => (d < 0 ? 1 : d)), datatype: input.datatype, data: new Array(input.shape.reduce((p: number, d: number) => p * (d < 0 ? 1 : d), 1)).fill(0.5) }] }, alice);
    expect(r.status).toBe(200);
    const loadedOn = coordinator.nodes().filter((n) => n.models.some((m) => m.name === 'mlp' && m.state === 'READY'));
    expect(loadedOn.map((n) => n.nodeId)).toContain(nodeOf(r));
  });

  it('honours cordon and drain: no new requests go to the node until uncordoned', async () => {
    expect((await command('b', { type: 'cordon' })).json).toMatchObject({ ok: true });
    for (let i = 0; i < 8; i++) expect(nodeOf(await infer('identity_fp32'))).toBe(ids.a);
    expect((await command('b', { type: 'uncordon' })).json).toMatchObject({ ok: true });
    expect((await command('a', { type: 'drain' })).json).toMatchObject({ ok: true });
    for (let i = 0; i < 8; i++) expect(nodeOf(await infer('identity_fp32'))).toBe(ids.b);
    expect((await command('a', { type: 'uncordon' })).json).toMatchObject({ ok: true });
    const seen = new Set<string>();
    await waitFor(async () => {
      seen.add(nodeOf(await infer('identity_fp32'))!);
      return seen.size === 2 || undefined;
    }, 'both nodes to take requests again');
  });

  it('retries a refused connection on another node and takes a failing node out of rotation', async () => {
    // d registers as Ready with identity_fp32 READY, but advertises a port nobody listens on.
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const d = await spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32', '--advertise-url', `http://127.0.0.1:${closedPort}`]);
    try {
      const dId = await waitFor(() => coordinator.nodes().find((n) => n.url.includes(`:${closedPort}`) && n.models.some((m) => m.state === 'READY'))?.nodeId, 'd to register');
      const attempts: string[] = [];
      for (let i = 0; i < 30; i++) {
        const r = await infer('identity_fp32');
        expect(r.status).toBe(200);
        expect(nodeOf(r)).not.toBe(dId);
        attempts.push(r.headers.get('x-gateway-attempts')!);
      }
      expect(attempts).toContain('2'); // some went to d first and were retried
      expect(attempts.filter((x) => x === '2').length).toBeLessThanOrEqual(2); // the breaker opened after 2 failures
      const view = (await get(`${coordinator.url}/nodes/${dId}`, admin)).json;
      expect(view.routing.circuit).toMatchObject({ state: 'open', consecutiveFailures: 2, opened: 1 });
    } finally {
      await d.stop();
    }
  });

  it('retries on another node when one is killed under load: no client request fails', async () => {
    const statuses: number[] = [];
    let killed = false;
    const workers = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 40; i++) {
        const r = await infer('identity_fp32');
        statuses.push(r.status);
        if (statuses.length === 30 && !killed) {
          killed = true;
          await b.kill();
        }
      }
    });
    await Promise.all(workers);
    expect(killed).toBe(true);
    expect(statuses.length).toBe(160);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const view = await nodeView('b');
    expect(view.routing.circuit.state === 'open' || view.state !== 'Ready').toBe(true);
  }, 60_000);
});
