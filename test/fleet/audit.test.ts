/**
 * The audit trail and node registry in SQLite: every command and node state change is a row
 * (who, what, target, when, result, duration), the table refuses UPDATE/DELETE, and a
 * restarted coordinator still has the trail and lists the fleet (Unknown until reconnected).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { createLogger } from '../../src/util/logger.js';
import { makeRepository } from '../helpers/agent.js';
import { get, post, spawnAgent, waitFor, type AgentProcess } from './helpers.js';

const ADMIN = 'admin-token-456';
const admin = { authorization: `Bearer ${ADMIN}` };
const stateDir = mkdtempSync(path.join(os.tmpdir(), 'coordinator-state-'));
let repo: string;
let coordinator: RunningCoordinator;
let agent: AgentProcess;
let nodeId: string;

const start = (port = 0) => startCoordinator({ port, token: ADMIN, stateDir, logger: createLogger('silent'), heartbeatIntervalMs: 200, heartbeatTimeoutMs: 3000 });

beforeAll(async () => {
  repo = await makeRepository();
  coordinator = await start();
  agent = await spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32']);
  nodeId = await waitFor(() => coordinator.nodes().find((n) => n.url === agent.url)?.nodeId, 'the agent to register', 30_000);
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await coordinator?.close();
});

describe('audit trail', () => {
  it('records every command with identity, target, result and duration', async () => {
    const since = Date.now();
    const cmd = (body: unknown) => post(`${coordinator.url}/nodes/${nodeId}/commands`, body, admin);
    expect((await cmd({ type: 'ping' })).json.ok).toBe(true);
    expect((await cmd({ type: 'cordon' })).json.ok).toBe(true);
    expect((await cmd({ type: 'uncordon' })).json.ok).toBe(true);
    expect((await cmd({ type: 'load_model', model: 'nope' })).json.ok).toBe(false);
    expect((await cmd({ type: 'unload_model', model: 'identity_fp32' })).json.ok).toBe(true);
    expect((await post(`${coordinator.url}/nodes/not-a-node/commands`, { type: 'ping' }, admin)).status).toBe(404);

    const { status, json } = await get(`${coordinator.url}/audit?node=${nodeId}&since=${new Date(since).toISOString()}`, admin);
    expect(status).toBe(200);
    const commands = json.entries.filter((e: { kind: string }) => e.kind === 'command');
    expect(commands.map((e: { action: string; result: string }) => `${e.action}:${e.result}`)).toEqual(['ping:ok', 'cordon:ok', 'uncordon:ok', 'load_model:not_found', 'unload_model:ok']);
    for (const e of commands) {
      expect(e).toMatchObject({ nodeId, identity: 'admin', commandId: expect.any(String), durationMs: expect.any(Number) });
      expect(Date.parse(e.at)).toBeGreaterThanOrEqual(since);
    }
    expect(commands[3]).toMatchObject({ target: 'nope', error: expect.stringMatching(/nope/) });
    const states = json.entries.filter((e: { kind: string }) => e.kind === 'node_state').map((e: { action: string; target: string }) => `${e.target}->${e.action}`);
    expect(states).toEqual(['ready->cordoned', 'cordoned->ready']);
    const refused = (await get(`${coordinator.url}/audit?node=not-a-node`, admin)).json.entries;
    expect(refused).toEqual([expect.objectContaining({ action: 'ping', result: 'refused', error: 'unknown node' })]);
    expect((await get(`${coordinator.url}/audit?since=yesterday`, admin)).status).toBe(400);
    expect((await get(`${coordinator.url}/audit`)).status).toBe(401);
  });

  it('is append-only: the database refuses UPDATE and DELETE', () => {
    const db = new Database(path.join(stateDir, 'coordinator.db'));
    try {
      expect(() => db.prepare("UPDATE audit SET result = 'ok'").run()).toThrow(/append-only/);
      expect(() => db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    } finally {
      db.close();
    }
  });

  it('survives a coordinator restart: the trail stays, the node is listed as Unknown until it reconnects', async () => {
    const before = coordinator.audit().length;
    const port = coordinator.port;
    await agent.stop();
    await coordinator.close();
    coordinator = await start(port);
    const listed = coordinator.nodes().find((n) => n.nodeId === nodeId);
    expect(listed).toMatchObject({ state: 'Unknown', connected: false, url: agent.url });
    expect(coordinator.audit().length).toBeGreaterThanOrEqual(before);
    expect(coordinator.audit().filter((e) => e.kind === 'command').length).toBe(6);

    agent = await spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32'], agent.stateDir);
    await waitFor(() => coordinator.nodes().find((n) => n.nodeId === nodeId && n.state === 'Ready'), 'the same node to come back Ready');
    const health = coordinator.audit({ nodeId }).filter((e) => e.kind === 'node_health').map((e) => `${e.target}->${e.action}`);
    expect(health[0]).toBe('Unknown->Ready'); // first registration
    expect(health.at(-1)).toBe('Unknown->Ready'); // reconnect after the restart
  }, 60_000);
});
