/**
 * The gateway's gRPC front door: real agent processes serving gRPC on their own ports (CPU
 * models, an --api-token the gateway sends as its node token) behind a real coordinator with
 * --grpc-port, and real @grpc/grpc-js clients: the test's own, and scripts/grpc-client.mjs
 * (tritonclient.grpc's example steps) in a child process. Clients talk only to the coordinator.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTritonExampleModels } from '../../scripts/generate-models.mjs';
import { parseCoordinatorArgs } from '../../src/coordinator/coordinator-cli.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { createLogger } from '../../src/util/logger.js';
import { makeRepository } from '../helpers/agent.js';
import { bearer, call, callError, freePort, grpcClient } from '../helpers/grpc.js';
import { registeredIds, spawnAgent, type AgentProcess } from './helpers.js';

const ADMIN = 'admin-token-123';
const ALICE = 'alice-token-123';
const NODE = 'node-api-token-9';
const CLIENT = path.resolve(import.meta.dirname, '../../scripts/grpc-client.mjs');

let coordinator: RunningCoordinator;
let a: AgentProcess; // identity_fp32, add_sub
let b: AgentProcess; // identity_fp32
let ex: AgentProcess; // NVIDIA's example models (simple, simple_string, …)
let client: any;
const ids: Record<string, string> = {};
const grpcOf: Record<string, string> = {};

const fp32Request = (model = 'identity_fp32', extra: Record<string, unknown> = {}) => ({
  model_name: model, inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }], ...extra,
});
const addSub = {
  model_name: 'add_sub',
  inputs: [
    { name: 'INPUT0', datatype: 'FP32', shape: [1, 16], contents: { fp32_contents: Array.from({ length: 16 }, (_, i) => i) } },
    { name: 'INPUT1', datatype: 'FP32', shape: [1, 16], contents: { fp32_contents: Array(16).fill(1) } },
  ],
};

/** A unary call that also hands back the initial metadata (x-gateway-node, x-compute-time-us). */
function inferWithMetadata(c: any, request: unknown, metadata = bearer(ALICE)): Promise<{ res: any; md: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let md = new grpc.Metadata();
    const cl = c.ModelInfer(request, metadata, (err: Error | null, res: any) => (err ? reject(err) : resolve({ res, md })));
    cl.on('metadata', (m: grpc.Metadata) => (md = m));
  });
}

beforeAll(async () => {
  const repo = await makeRepository();
  const examples = mkdtempSync(path.join(os.tmpdir(), 'grpc-gw-examples-'));
  await generateTritonExampleModels(examples);
  const opts = parseCoordinatorArgs(['--token', ADMIN, '--grpc-port', String(await freePort())], {})!;
  expect(opts.grpcPort).toBeGreaterThan(0);
  coordinator = await startCoordinator({
    port: 0, grpcPort: 0, token: ADMIN, logger: createLogger('silent'), heartbeatTimeoutMs: 3000, heartbeatIntervalMs: 200,
    gateway: { clientTokens: { alice: ALICE }, nodeToken: NODE },
  });
  const agentArgs = async (models: string) => ['--load-models', models, '--grpc-port', String(await freePort()), '--host', '127.0.0.1', '--api-token', NODE];
  [a, b, ex] = await Promise.all([
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, await agentArgs('identity_fp32,add_sub')),
    spawnAgent(repo, coordinator.agentsUrl, ADMIN, await agentArgs('identity_fp32')),
    spawnAgent(examples, coordinator.agentsUrl, ADMIN, await agentArgs('simple,simple_string')),
  ]);
  for (const [name, id] of Object.entries(await registeredIds(coordinator, { a, b, ex }))) {
    ids[name] = id;
    grpcOf[name] = coordinator.node(id)!.grpcAddress!;
  }
  client = grpcClient(coordinator.grpcAddress!);
}, 120_000);

afterAll(async () => {
  client?.close();
  await Promise.all([a, b, ex].map((p) => p?.stop()));
  await coordinator?.close();
});

describe('gateway: gRPC front door', () => {
  it('agents advertise their gRPC address in register; the coordinator listens on --grpc-port', () => {
    expect(coordinator.grpcAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    for (const name of ['a', 'b', 'ex']) expect(grpcOf[name]).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('routes ModelInfer to the node that has the model, bytes passed through, answering like the node', async () => {
    const direct = grpcClient(grpcOf.a!);
    const want = await call(direct, 'ModelInfer', addSub, bearer(NODE));
    direct.close();
    for (let i = 0; i < 4; i++) {
      const { res, md } = await inferWithMetadata(client, addSub);
      expect(md.get('x-gateway-node')).toEqual([ids.a]);
      expect(md.get('x-gateway-attempts')).toEqual(['1']);
      expect(Number(md.get('x-compute-time-us')[0])).toBeGreaterThanOrEqual(0);
      expect(res.outputs).toEqual(want.outputs);
      expect(res.model_name).toBe('add_sub');
    }
  });

  it('answers health and readiness itself, forwards ModelMetadata, refuses what is per node', async () => {
    expect(await call(client, 'ServerLive', {})).toEqual({ live: true });
    expect(await call(client, 'ServerReady', {})).toEqual({ ready: true });
    expect(await call(client, 'ModelReady', { name: 'add_sub' }, bearer(ALICE))).toEqual({ ready: true });
    expect(await call(client, 'ModelReady', { name: 'nope' }, bearer(ALICE))).toEqual({});
    const meta = await call(client, 'ModelMetadata', { name: 'add_sub' }, bearer(ALICE));
    expect(meta).toMatchObject({ name: 'add_sub', inputs: [expect.objectContaining({ name: 'INPUT0' }), expect.objectContaining({ name: 'INPUT1' })] });
    expect(await call(client, 'ServerMetadata', {}, bearer(ALICE))).toMatchObject({ name: 'gpu-node-agent-gateway', extensions: ['binary_tensor_data'] });
    const idx = await callError(client, 'RepositoryIndex', {}, bearer(ALICE));
    expect(idx.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(idx.details).toMatch(/RepositoryIndex is a per-node operation/);
  });

  it('takes client tokens only: no token and the admin token are UNAUTHENTICATED; the node token stays in the coordinator', async () => {
    for (const md of [new grpc.Metadata(), bearer(ADMIN)]) {
      const e = await callError(client, 'ModelInfer', addSub, md);
      expect(e.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(e.details).toMatch(/missing or invalid client token/);
    }
    // The agents require NODE: every routed call above succeeded only because the gateway sent it.
    const direct = grpcClient(grpcOf.a!);
    expect((await callError(direct, 'ModelInfer', addSub, bearer(ALICE))).code).toBe(grpc.status.UNAUTHENTICATED);
    direct.close();
  });

  it('deadlines, unknown models and bad requests get the gateway\'s reasons in gRPC terms', async () => {
    const late = await callError(client, 'ModelInfer', fp32Request('identity_fp32', { parameters: { timeout: { int64_param: '1' } } }), bearer(ALICE));
    expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(late.details).toMatch(/deadline/);
    const bad = new grpc.Metadata();
    bad.set('authorization', `Bearer ${ALICE}`);
    bad.set('x-timeout-ms', 'soon');
    expect((await callError(client, 'ModelInfer', fp32Request(), bad)).details).toMatch(/x-timeout-ms must be a positive number/);
    const unknown = await callError(client, 'ModelInfer', fp32Request('no_such_model'), bearer(ALICE));
    expect(unknown.code).toBe(grpc.status.UNAVAILABLE);
    expect(unknown.details).toMatch(/no node of the fleet has model 'no_such_model'/);
    const unnamed = await callError(client, 'ModelInfer', { inputs: [] }, bearer(ALICE));
    expect(unnamed.code).toBe(grpc.status.INVALID_ARGUMENT);
    // A node's own refusal is final and passed through (not retried): a wrong input name.
    const wrong = await callError(client, 'ModelInfer', { ...addSub, inputs: addSub.inputs.slice(0, 1) }, bearer(ALICE));
    expect(wrong.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(wrong.metadata.get('x-gateway-attempts')).toEqual(['1']);
  });

  it('accounts the cost of gRPC requests from the compute time the agents report', async () => {
    const before = coordinator.costs().byModel.identity_fp32?.computeSeconds ?? 0;
    let us = 0;
    for (let i = 0; i < 10; i++) us += Number((await inferWithMetadata(client, fp32Request())).md.get('x-compute-time-us')[0]);
    const after = coordinator.costs().byModel.identity_fp32!;
    expect(us).toBeGreaterThan(0);
    expect(after.computeSeconds - before).toBeCloseTo(us / 1e6, 6);
    expect(coordinator.costs().byClient.alice!.requests).toBeGreaterThanOrEqual(10);
  });

  it('ModelStreamInfer: the stream goes to one node, every answer comes back and is accounted', async () => {
    const before = coordinator.costs().byModel.add_sub?.requests ?? 0;
    const stream = client.ModelStreamInfer(bearer(ALICE));
    const answers: any[] = [];
    let md: grpc.Metadata | undefined;
    stream.on('metadata', (m: grpc.Metadata) => (md = m));
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('data', (m: any) => answers.push(m));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    for (let i = 0; i < 3; i++) stream.write({ ...addSub, id: `req-${i}` });
    stream.end();
    await ended;
    expect(answers.map((x) => x.error_message)).toEqual(['', '', '']);
    expect(answers.map((x) => x.infer_response.id).sort()).toEqual(['req-0', 'req-1', 'req-2']);
    expect(md?.get('x-gateway-node')).toEqual([ids.a]);
    expect(coordinator.costs().byModel.add_sub!.requests - before).toBe(3);
  });

  it("tritonclient.grpc's example steps pass through the gateway (scripts/grpc-client.mjs)", async () => {
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [CLIENT, '--url', coordinator.grpcAddress!, '--token', ALICE, 'infer', 'async', 'string', 'stream']);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    for (const step of ['infer', 'async', 'string', 'stream']) expect(r.stdout).toContain(`PASS: ${step}`);
    expect(r.status).toBe(0);
  });

  it('retries on another node when one is killed under load: no client request fails', async () => {
    const seen = new Map<string, number>();
    let failed = 0;
    let retried = 0;
    let killed: Promise<void> | undefined;
    let done = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 40; i++) {
        try {
          const { md } = await inferWithMetadata(client, fp32Request());
          const node = String(md.get('x-gateway-node')[0]);
          seen.set(node, (seen.get(node) ?? 0) + 1);
          if (md.get('x-gateway-attempts')[0] === '2') retried++;
        } catch {
          failed++;
        }
        if (++done === 40) killed = b.kill();
      }
    }));
    await killed;
    expect(failed).toBe(0);
    expect(seen.get(ids.a!)).toBeGreaterThan(0);
    expect(seen.get(ids.b!) ?? 0).toBeGreaterThan(0); // b served before it died
    expect(coordinator.node(ids.b!)?.connected).toBe(false);
  });
});
