/**
 * Request bodies through the routing gateway (gateway/body.ts), with a real agent behind a real
 * coordinator whose limits are set low: a body within the retry buffer is kept whole, a larger
 * one streams to the node, one past the gateway's maximum gets a 413, and a client that leaves
 * mid-body costs the coordinator nothing.
 */
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { readBody, type GatewayBody } from '../../src/coordinator/gateway/body.js';
import { createLogger } from '../../src/util/logger.js';
import { makeRepository } from '../helpers/agent.js';
import { post, spawnAgent, waitFor, type AgentProcess } from './helpers.js';

const ADMIN = 'admin-token-bodies';
const CLIENT = 'client-token-bodies';
const RETRY_BUFFER = 2048;
const MAX_BODY = 64 * 1024;

let coordinator: RunningCoordinator;
let agent: AgentProcess;

/** identity_var ([batch, n]) with one row of `n` values: about 3 bytes of JSON per value. */
const wideBody = (n: number) => ({ inputs: [{ name: 'INPUT0', shape: [1, n], datatype: 'FP32', data: Array.from({ length: n }, (_, i) => i % 97) }] });
const infer = (body: unknown) => post(`${coordinator.url}/v2/models/identity_var/infer`, body, { authorization: `Bearer ${CLIENT}` });

beforeAll(async () => {
  const repo = await makeRepository();
  coordinator = await startCoordinator({
    port: 0, token: ADMIN, logger: createLogger('silent'), heartbeatTimeoutMs: 3000, heartbeatIntervalMs: 200,
    gateway: { clientTokens: { bodies: CLIENT }, retryBufferBytes: RETRY_BUFFER, maxBodyBytes: MAX_BODY },
  });
  agent = await spawnAgent(repo, coordinator.agentsUrl, ADMIN, ['--load-models', 'identity_var']);
  await waitFor(() => coordinator.nodes().some((n) => n.models.some((m) => m.name === 'identity_var' && m.state === 'READY')), 'the agent registered with identity_var READY', 60_000);
}, 90_000);

afterAll(async () => {
  await agent?.stop();
  await coordinator?.close();
});

describe('gateway request bodies', () => {
  it('keeps a body within the retry buffer whole and streams a larger one to the node, both answered like the node', async () => {
    for (const n of [16, 2000]) {
      const body = wideBody(n);
      expect(JSON.stringify(body).length > RETRY_BUFFER).toBe(n === 2000);
      const r = await infer(body);
      expect(r.json.error).toBeUndefined();
      expect(r.status).toBe(200);
      expect(r.json.outputs[0].shape).toEqual([1, n]);
      expect(r.json.outputs[0].data).toEqual(body.inputs[0].data);
    }
  });

  it('answers 413 with the limit for a body past the gateway maximum, and goes on serving', async () => {
    const big = wideBody(30000);
    expect(JSON.stringify(big).length).toBeGreaterThan(MAX_BODY);
    const r = await infer(big);
    expect(r.status).toBe(413);
    expect(r.json.error).toContain(`limit of ${MAX_BODY} bytes`);
    expect((await infer(wideBody(1))).status).toBe(200);
  });

  it('answers 413 for a chunked body (no length stated) that passes the maximum while it streams', async () => {
    const bytes = Buffer.from(JSON.stringify(wideBody(30000)));
    // 3,000-byte chunks: past the retry buffer at the first (so it streams to the node), past
    // the maximum only later, while the node is already reading it.
    const chunks = Array.from({ length: Math.ceil(bytes.length / 3000) }, (_, i) => bytes.subarray(i * 3000, (i + 1) * 3000));
    const res = await fetch(`${coordinator.url}/v2/models/identity_var/infer`, {
      method: 'POST', headers: { authorization: `Bearer ${CLIENT}`, 'content-type': 'application/json' }, duplex: 'half',
      body: new ReadableStream({ pull(c) { const next = chunks.shift(); if (next) c.enqueue(next); else c.close(); } }),
    } as RequestInit);
    expect(res.status).toBe(413);
    expect((await res.json() as { error: string }).error).toContain(`limit of ${MAX_BODY} bytes`);
    expect((await infer(wideBody(2))).status).toBe(200);
  });

  it('a client that leaves mid-body costs nothing: the next request is answered', async () => {
    const { port } = new URL(coordinator.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /v2/models/identity_var/infer HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${CLIENT}\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{"inputs": [`);
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    const r = await infer(wideBody(3));
    expect(r.status).toBe(200);
    expect(r.json.outputs[0].shape).toEqual([1, 3]);
  });
});

describe('readBody (gateway/body.ts) on real streams', () => {
  const read = (source: PassThrough, limit: number, max: number) =>
    new Promise<GatewayBody>((resolve, reject) => readBody(source, limit, max, (err, body) => (err ? reject(err) : resolve(body!))));
  const collect = async (s: NodeJS.ReadableStream) => {
    const parts: Buffer[] = [];
    for await (const c of s) parts.push(c as Buffer);
    return Buffer.concat(parts).toString();
  };

  it('no bytes: none; within the limit: one buffer of every chunk', async () => {
    const empty = new PassThrough();
    const p0 = read(empty, 10, 100);
    empty.end();
    expect((await p0).kind).toBe('none');
    const s = new PassThrough();
    const p = read(s, 10, 100);
    s.write('abc');
    s.end('def');
    const b = await p;
    expect(b.kind === 'buffered' && b.bytes.toString()).toBe('abcdef');
  });

  it('past the limit: a stream of the prefix and the rest; past the maximum, in the stream too: BodyTooLarge', async () => {
    const s = new PassThrough();
    const p = read(s, 4, 100);
    s.write('0123456');
    const b = await p;
    expect(b.kind).toBe('stream');
    s.end('789');
    expect(await collect((b as Extract<GatewayBody, { kind: 'stream' }>).stream)).toBe('0123456789');

    const late = new PassThrough();
    const pl = read(late, 4, 12);
    late.write('0123456');
    const bl = (await pl) as Extract<GatewayBody, { kind: 'stream' }>;
    late.end('789abcdef');
    await expect(collect(bl.stream)).rejects.toThrow(/limit of 12 bytes/);

    const early = new PassThrough();
    const pe = read(early, 100, 5);
    early.write('0123456');
    await expect(pe).rejects.toThrow(/limit of 5 bytes/);
  });

  it('a source that closes before its end: an error, not a hang', async () => {
    const s = new PassThrough();
    const p = read(s, 100, 1000);
    s.write('partial');
    s.destroy();
    await expect(p).rejects.toThrow(/ended early/);
  });
});
