/**
 * --gateway-processes: the gateway served by processes of its own on a second port, in front of
 * real agents (CLI processes, CPU models) and a real coordinator on 127.0.0.1. The processes
 * route from the primary's node snapshots, send load-on-demand commands through it, report each
 * answer to its cost accounting, refuse spent budgets, and are restarted when they die.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCoordinatorArgs } from '../../src/coordinator/coordinator-cli.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { createLogger } from '../../src/util/logger.js';
import { makeRepository } from '../helpers/agent.js';
import { sha256, startSourceServer, type SourceServer } from '../sources/source-server.js';
import { fp32, spawnAgent, waitFor, type AgentProcess } from './helpers.js';

const ADMIN = 'admin-token-procs';
const ALICE = 'alice-token-procs';
const BOB = 'bob-token-procs-0';

let coordinator: RunningCoordinator;
let repo: string;
let source: SourceServer;
let a: AgentProcess; // identity_fp32 loaded; add_sub in its repository, not loaded
let b: AgentProcess; // identity_fp32

/** POST on a connection of its own (so the primary hands each request to the next process). */
function post(path: string, body: unknown, token: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  const url = new URL(path, coordinator.gatewayUrl);
  const bytes = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': bytes.length, authorization: `Bearer ${token}` } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        resolve({ status: res.statusCode!, headers: res.headers, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(bytes);
  });
}
const infer = (model: string, token = ALICE, body: unknown = fp32) => post(`/v2/models/${model}/infer`, body, token);

beforeAll(async () => {
  repo = await makeRepository();
  source = await startSourceServer();
  coordinator = await startCoordinator({
    port: 0, token: ADMIN, logger: createLogger('silent'), heartbeatTimeoutMs: 3000, heartbeatIntervalMs: 200,
    gateway: { clientTokens: { alice: ALICE, bob: BOB } },
    cost: { prices: {}, budgets: { bob: 0 } },
    gatewayProcesses: { count: 2, port: 0, logLevel: 'silent' },
  });
  [a, b] = await Promise.all([
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32', '--allow-http']),
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_fp32', '--allow-http']),
  ]);
  await waitFor(() => coordinator.nodes().filter((n) => n.models.some((m) => m.name === 'identity_fp32' && m.state === 'READY')).length === 2, 'two agents with identity_fp32 READY', 60_000);
  // The processes see the nodes one broadcast later.
  await waitFor(async () => (await infer('identity_fp32')).status === 200, 'the gateway processes route to the nodes', 10_000);
}, 90_000);

afterAll(async () => {
  await Promise.all([a, b].map((p) => p?.stop()));
  await coordinator?.close();
  await source?.close();
});

describe('gateway processes', () => {
  it('serve the gateway on their own port: answers like the node, spread over both nodes', async () => {
    expect(coordinator.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(coordinator.gatewayProcessPids()).toHaveLength(2);
    const nodes = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await infer('identity_fp32');
      expect(r.status).toBe(200);
      expect(r.json.outputs[0].data).toEqual([1, 2, 3, 4]);
      nodes.add(String(r.headers['x-gateway-node']));
    }
    expect(nodes.size).toBe(2);
  });

  it('report every answer to the coordinator\'s cost accounting', async () => {
    const before = coordinator.costs().byClient.alice?.requests ?? 0;
    for (let i = 0; i < 10; i++) expect((await infer('identity_fp32')).status).toBe(200);
    await waitFor(() => (coordinator.costs().byClient.alice?.requests ?? 0) >= before + 10, 'ten more requests of alice in the cost report', 5_000);
    expect(coordinator.costs().byClient.alice!.computeSeconds).toBeGreaterThan(0);
  });

  it('refuse a client whose budget is spent, with the reason', async () => {
    const r = await infer('identity_fp32', BOB);
    expect(r.status).toBe(429);
    expect(r.json.error).toMatch(/client 'bob' has used its budget/);
  });

  it('load a model on demand through the coordinator: the command is audited', async () => {
    const addSub = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(2) }, { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(1) }] };
    const r = await infer('add_sub', ALICE, addSub);
    expect(r.json.error).toBeUndefined();
    expect(r.status).toBe(200);
    expect(r.json.outputs.find((o: { name: string }) => o.name === 'OUTPUT0').data).toEqual(new Array(16).fill(3));
    expect(coordinator.audit().some((x) => x.kind === 'command' && x.action === 'load_model' && x.target === 'add_sub')).toBe(true);
  });

  it('pull a model by a manifest the coordinator learned after they started', async () => {
    const bytes = readFileSync(path.join(repo, 'simple/1/model.onnx'));
    source.add('/pulled/model.onnx', bytes);
    const manifest = { name: 'pulled_simple', version: 1, files: [{ path: 'model.onnx', uri: `${source.url}/pulled/model.onnx`, sha256: sha256(bytes), size: bytes.length }] };
    const put = await fetch(`${coordinator.url}/models/pulled_simple/manifest`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(manifest) });
    expect(put.status).toBe(200);
    const int32 = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(1) }, { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: Array(16).fill(2) }] };
    // Until the next broadcast a process answers that it knows no manifest; then it pulls.
    const r = await waitFor(async () => {
      const x = await infer('pulled_simple', ALICE, int32);
      return x.status === 200 ? x : undefined;
    }, 'an answer from the pulled model', 30_000);
    expect(r.json.outputs.find((o: { name: string }) => o.name === 'OUTPUT0').data).toEqual(Array(16).fill(3));
    expect(coordinator.audit().some((x) => x.kind === 'command' && x.action === 'load_model' && x.target === 'pulled_simple')).toBe(true);
  });

  it('answer 404 with the reason for a route they do not serve', async () => {
    const r = await post('/nodes', {}, ADMIN);
    expect(r.status).toBe(404);
    expect(r.json.error).toMatch(/admin API and dashboard are on the coordinator's main port/);
  });

  it('a killed process is replaced, and clients on new connections see no failure', async () => {
    const [victim] = coordinator.gatewayProcessPids();
    process.kill(victim!, 'SIGKILL');
    await waitFor(() => !coordinator.gatewayProcessPids().includes(victim!), 'the killed process gone from the list', 5_000);
    for (let i = 0; i < 10; i++) expect((await infer('identity_fp32')).status).toBe(200);
    await waitFor(() => coordinator.gatewayProcessPids().length === 2, 'a new process in its place', 10_000);
    for (let i = 0; i < 10; i++) expect((await infer('identity_fp32')).status).toBe(200);
  });
});

describe('gpu-agent coordinator --gateway-processes', () => {
  it('parses the flags, with errors that name them', () => {
    expect(parseCoordinatorArgs(['--token', ADMIN, '--gateway-processes', '3', '--gateway-port', '0'], {})!.gatewayProcesses).toEqual({ count: 3, port: 0, logLevel: 'info' });
    expect(parseCoordinatorArgs(['--token', ADMIN, '--gateway-processes', '2'], {})!.gatewayProcesses).toMatchObject({ count: 2, port: 9100 });
    expect(parseCoordinatorArgs(['--token', ADMIN], { GPU_AGENT_GATEWAY_PROCESSES: '0' })!.gatewayProcesses).toBeUndefined();
    expect(() => parseCoordinatorArgs(['--token', ADMIN, '--gateway-processes', 'many'], {})).toThrow(/--gateway-processes: 'many' is not a positive integer/);
    expect(() => parseCoordinatorArgs(['--token', ADMIN, '--gateway-port', '9100'], {})).toThrow(/--gateway-port needs --gateway-processes/);
  });

  it('the real CLI starts the processes, logs their URL, and takes them down on SIGTERM', async () => {
    const cli = path.resolve(import.meta.dirname, '../../dist/src/cli.js');
    const child = spawn(process.execPath, [cli, 'coordinator', '--port', '0', '--token', ADMIN, '--client-tokens', `alice=${ALICE}`, '--gateway-processes', '2', '--gateway-port', '0',
      '--state-dir', mkdtempSync(path.join(os.tmpdir(), 'gw-procs-cli-'))], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const url = await waitFor(() => /"url":"(http:[^"]+)","processes":2,"msg":"gateway processes listening"/.exec(out)?.[1], 'the gateway processes\' URL in the log', 20_000);
    await waitFor(() => (out.match(/gateway process ready/g) ?? []).length === 2, 'both processes ready', 20_000);
    const pids = [...out.matchAll(/"pid":(\d+),"msg":"gateway process ready"/g)].map((m) => Number(m[1]));
    const health = await fetch(`${url}/v2/health/ready`, { headers: { authorization: `Bearer ${ALICE}` } });
    expect(health.status).toBe(503); // no node yet: the processes answer themselves
    expect(((await health.json()) as { nodes: number }).nodes).toBe(0);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
    await waitFor(() => pids.every((p) => !alive(p)), 'the gateway processes gone with the coordinator', 10_000);
  });
});
