/**
 * Cost per request through the gateway: the agents report each request's compute time
 * (x-compute-time-us, V2 parameter compute_time_us) and totals in heartbeats; the coordinator
 * accounts compute seconds × price per model, node and client, exports JSON, CSV and /metrics,
 * and refuses a client whose budget is spent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { createLogger } from '../../src/util/logger.js';
import { makeRepository } from '../helpers/agent.js';
import { fp32, get, post, registeredIds, spawnAgent, waitFor, type AgentProcess } from './helpers.js';

const ADMIN = 'admin-token-789';
const admin = { authorization: `Bearer ${ADMIN}` };
const tokens = { alice: 'alice-token-789', bob: 'bob-token-7890', carol: 'carol-token-789' };
const as = (who: keyof typeof tokens) => ({ authorization: `Bearer ${tokens[who]}` });

let coordinator: RunningCoordinator;
let a: AgentProcess;
let b: AgentProcess;
const ids: Record<string, string> = {};

beforeAll(async () => {
  const repo = await makeRepository();
  coordinator = await startCoordinator({
    port: 0, token: ADMIN, logger: createLogger('silent'), heartbeatIntervalMs: 200, heartbeatTimeoutMs: 3000,
    gateway: { clientTokens: tokens },
    cost: { prices: { 'gpu=h100': 4 }, budgets: { bob: 1e-12, carol: 0 } },
  });
  [a, b] = await Promise.all([
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32', '--labels', 'price_per_hour=2.49']),
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32', '--labels', 'gpu=h100']),
  ]);
  Object.assign(ids, await registeredIds(coordinator, { a, b }));
}, 90_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await coordinator?.close();
});

describe('cost per request', () => {
  it('passes each request\'s compute time through, in a header and a V2 response parameter', async () => {
    const r = await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32, as('alice'));
    expect(r.status).toBe(200);
    const us = Number(r.headers.get('x-compute-time-us'));
    expect(us).toBeGreaterThan(0);
    expect(r.json.parameters).toEqual({ compute_time_us: us });
  });

  it('adds up per node to the compute totals the agents report, priced per node', async () => {
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 15; i++) expect((await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32, as('alice'))).status).toBe(200);
    }));
    const report = coordinator.costs();
    expect(report.byClient.alice!.requests).toBe(61);
    expect(report.byModel.identity_fp32!.requests).toBe(61);
    const agentMs = (id: string) => (coordinator.node(id)!.lastHeartbeat?.models ?? []).reduce((s, m) => s + (m.computeMs ?? 0), 0);
    for (const k of ['a', 'b']) {
      const node = report.byNode[ids[k]!]!;
      expect(node.requests).toBeGreaterThan(0);
      // Headers carry whole µs: the sums agree to half a µs per request.
      await waitFor(() => Math.abs(agentMs(ids[k]!) - node.computeSeconds * 1000) <= node.requests * 0.0005 + 1e-9 || undefined, `node ${k}'s heartbeat totals to match the gateway's`);
    }
    expect(report.byNode[ids.a!]!.pricePerHour).toBe(2.49); // its own label
    expect(report.byNode[ids.b!]!.pricePerHour).toBe(4); // the coordinator's price for gpu=h100
    for (const k of ['a', 'b']) {
      const n = report.byNode[ids[k]!]!;
      expect(n.cost).toBeCloseTo((n.computeSeconds * n.pricePerHour) / 3600, 12);
    }
    const sum = report.byNode[ids.a!]!.cost + report.byNode[ids.b!]!.cost;
    expect(report.total.cost).toBeCloseTo(sum, 12);
    expect(report.byClient.alice!.cost).toBeCloseTo(sum, 12);
  });

  it('exports CSV and Prometheus metrics', async () => {
    const csv = await (await fetch(`${coordinator.url}/costs.csv`, { headers: admin })).text();
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe('dimension,key,requests,errors,compute_seconds,cost');
    expect(lines).toContainEqual(expect.stringMatching(/^client,alice,61,0,/));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^node,${ids.a},\\d+,0,`)));
    const metrics = await (await fetch(`${coordinator.url}/metrics`, { headers: admin })).text();
    expect(metrics).toMatch(new RegExp(`gpu_coordinator_requests_total\\{model="identity_fp32",node="${ids.a}",client="alice",code="200"\\} \\d+`));
    expect(metrics).toMatch(/gpu_coordinator_cost_total\{model="identity_fp32",node="[^"]+",client="alice"\} [0-9.e-]+/);
    expect((await get(`${coordinator.url}/costs`)).status).toBe(401);
  });

  it('refuses a client whose budget is spent with 429 and the reason', async () => {
    const carol = await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32, as('carol'));
    expect(carol.status).toBe(429);
    expect(carol.json.error).toMatch(/client 'carol' has used its budget/);
    expect((await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32, as('bob'))).status).toBe(200);
    const bob = await post(`${coordinator.url}/v2/models/identity_fp32/infer`, fp32, as('bob'));
    expect(bob.status).toBe(429);
    expect(coordinator.costs().byClient.bob).toMatchObject({ requests: 1, budget: 1e-12, remaining: 0 });
  });
});
