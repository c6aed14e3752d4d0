/**
 * The agent in a fleet: a real agent registers with the reference coordinator over a real
 * WebSocket on 127.0.0.1, reports fake-nvidia-smi telemetry in heartbeats, executes commands,
 * survives the coordinator going away (HTTP keeps serving) and re-registers when it is back.
 */
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { getJson, makeRepository, parseMetrics, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

const TOKEN = 'fleet-token-123';
const FAKE_SMI = path.resolve(import.meta.dirname, '../fixtures/nvidia-smi/fake-nvidia-smi');
const auth = { authorization: `Bearer ${TOKEN}` };
const fp32 = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

let repo: string;
let coordinator: RunningCoordinator;
let agent: RunningAgent;
let nodeId: string;

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const command = (body: unknown) => postJson(`${coordinator.url}/nodes/${nodeId}/commands`, body, auth);

beforeAll(async () => {
  repo = await makeRepository();
  coordinator = await startCoordinator({ port: 0, token: TOKEN, heartbeatTimeoutMs: 2000 });
  agent = await startAgent(repo, {
    loadModels: 'identity_fp32,add_sub',
    coordinatorUrl: coordinator.agentsUrl,
    coordinatorToken: TOKEN,
    stateDir: mkdtempSync(path.join(os.tmpdir(), 'agent-state-')),
    heartbeatIntervalMs: 200,
    telemetryIntervalMs: 200,
    nvidiaSmiPath: FAKE_SMI,
    labels: 'zone=test,gpu=h100',
  });
  const nodes = await waitFor(async () => {
    const r = await getJson(`${coordinator.url}/nodes`, auth);
    return r.json.nodes.length ? r.json.nodes : undefined;
  }, 'the agent to register');
  nodeId = nodes[0].nodeId;
});

afterAll(async () => {
  await agent?.close();
  await coordinator?.close();
});

describe('fleet: agent + reference coordinator', () => {
  it('registers with its GPUs, models, labels and URL', async () => {
    const { status, json } = await getJson(`${coordinator.url}/nodes/${nodeId}`, auth);
    expect(status).toBe(200);
    expect(json).toMatchObject({ nodeId, state: 'Ready' });
    const reg = JSON.stringify(json);
    expect(reg).toContain('NVIDIA H100 80GB HBM3');
    expect(reg).toContain(agent.url);
    expect(reg).toContain('"zone":"test"');
    expect(reg).toMatch(/"name":"identity_fp32","version":"1","state":"READY"[^}]*"provider":"cpu"/);
    expect(reg).toMatch(/"name":"corrupt"[^}]*"state":"UNAVAILABLE"/);
  });

  it('heartbeats carry GPU telemetry from nvidia-smi and per-model load', async () => {
    await postJson(`${agent.url}/v2/models/identity_fp32/infer`, fp32);
    const hb = await waitFor(async () => {
      const { json } = await getJson(`${coordinator.url}/nodes/${nodeId}`, auth);
      const h = json.lastHeartbeat;
      return h?.telemetry?.gpus?.length && h.models.some((m: { name: string }) => m.name === 'identity_fp32') ? h : undefined;
    }, 'a heartbeat with telemetry');
    expect(hb.seq).toBeGreaterThan(0);
    expect(hb.nodeState).toBe('ready');
    expect(hb.telemetry.gpus[0]).toMatchObject({ index: 0, uuid: expect.stringMatching(/^GPU-/), memoryTotalBytes: expect.any(Number) });
    expect(hb.models).toContainEqual(expect.objectContaining({ name: 'identity_fp32', version: '1', queueDepth: 0, inFlight: 0 }));
    const m = parseMetrics(await (await fetch(`${agent.url}/metrics`)).text());
    expect(m.get('gpu_agent_coordinator_connected')).toBe(1);
    expect([...m.keys()].some((k) => k.startsWith('nv_gpu_memory_total_bytes{gpu_uuid="GPU-'))).toBe(true);
  });

  it('executes every command and answers each with its result', async () => {
    expect((await command({ type: 'ping' })).json).toMatchObject({ ok: true });
    expect((await command({ type: 'unload_model', model: 'identity_fp32' })).json).toMatchObject({ ok: true });
    expect((await postJson(`${agent.url}/v2/repository/index`, {})).json).toContainEqual({ name: 'identity_fp32', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' });
    expect((await command({ type: 'load_model', model: 'identity_fp32' })).json).toMatchObject({ ok: true });
    expect((await getJson(`${agent.url}/v2/models/identity_fp32/ready`)).status).toBe(200);
    const failed = (await command({ type: 'load_model', model: 'corrupt' })).json;
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/failed to load 'corrupt'/);
    const unknown = (await command({ type: 'load_model', model: 'nope' })).json;
    expect(unknown).toMatchObject({ ok: false, error: expect.stringMatching(/not in the model repository/) });
    const path_ = await command({ type: 'load_model', model: '../../etc/passwd' });
    expect(path_.status).toBe(400);

    expect((await command({ type: 'cordon' })).json).toMatchObject({ ok: true });
    expect((await getJson(`${agent.url}/v2/health/ready`)).json).toMatchObject({ ready: false, state: 'cordoned' });
    await waitFor(async () => (await getJson(`${coordinator.url}/nodes/${nodeId}`, auth)).json.lastHeartbeat?.nodeState === 'cordoned' || undefined, 'a cordoned heartbeat');
    expect((await postJson(`${agent.url}/v2/models/identity_fp32/infer`, fp32)).status).toBe(200);
    expect((await command({ type: 'drain' })).json).toMatchObject({ ok: true });
    expect((await postJson(`${agent.url}/v2/models/identity_fp32/infer`, fp32)).status).toBe(503);
    expect((await command({ type: 'uncordon' })).json).toMatchObject({ ok: true });
    expect((await postJson(`${agent.url}/v2/models/identity_fp32/infer`, fp32)).status).toBe(200);

    const events = ((await getJson(`${coordinator.url}/nodes/${nodeId}`, auth)).json.events as { event: { kind: string; model?: string; state?: string } }[]).map((e) => e.event);
    expect(events).toContainEqual(expect.objectContaining({ kind: 'model_state', model: 'identity_fp32', state: 'UNAVAILABLE' }));
    expect(events).toContainEqual(expect.objectContaining({ kind: 'model_state', model: 'identity_fp32', state: 'READY' }));
  });

  it('keeps serving HTTP while the coordinator is down, and re-registers when it is back', async () => {
    const port = coordinator.port;
    const before = agent.agent.link!.status().registrations;
    await coordinator.close();
    const during = [];
    for (let i = 0; i < 20; i++) during.push((await postJson(`${agent.url}/v2/models/add_sub/infer`, {
      inputs: ['INPUT0', 'INPUT1'].map((name) => ({ name, shape: [1, 16], datatype: 'FP32', data: Array(16).fill(i) })),
    })).status);
    expect(during.every((s) => s === 200)).toBe(true);
    await waitFor(() => (agent.agent.link!.status().connected ? undefined : true), 'the link to notice');
    coordinator = await startCoordinator({ port, token: TOKEN, heartbeatTimeoutMs: 2000 });
    await waitFor(async () => ((await getJson(`${coordinator.url}/nodes`, auth)).json.nodes.length ? true : undefined), 'the agent to re-register', 40_000);
    expect(agent.agent.link!.status().registrations).toBe(before + 1);
    const node = (await getJson(`${coordinator.url}/nodes/${nodeId}`, auth)).json;
    expect(node.nodeId).toBe(nodeId); // the same node id, from the state dir
    expect(JSON.stringify(node)).toMatch(/"name":"add_sub","version":"1","state":"READY"/);
  });

  it('an agent with a wrong token is refused and keeps serving', async () => {
    const wrong = await startAgent(repo, {
      loadModels: 'identity_fp32',
      coordinatorUrl: coordinator.agentsUrl,
      coordinatorToken: 'not-the-token',
      stateDir: mkdtempSync(path.join(os.tmpdir(), 'agent-state-')),
    });
    try {
      await waitFor(() => (wrong.agent.link!.status().connectAttempts >= 1 && !wrong.agent.link!.status().connected ? true : undefined), 'a refused attempt');
      await new Promise((r) => setTimeout(r, 500));
      expect(wrong.agent.link!.status().connectAttempts).toBe(1); // no hammering after a refusal
      expect((await getJson(`${coordinator.url}/nodes`, auth)).json.nodes).toHaveLength(1);
      expect((await postJson(`${wrong.url}/v2/models/identity_fp32/infer`, fp32)).status).toBe(200);
    } finally {
      await wrong.close();
    }
  });
});
