/**
 * Admission before the body (src/http/admission.ts), over raw TCP so the test controls how
 * much of the body is ever sent: refusals must come back from the headers alone, while the
 * body is still missing, with Retry-After where retrying helps and `Connection: close` when
 * the agent leaves a large body unread.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, makeRepository, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

let repo: string;
let a: RunningAgent;

const fp32Request = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection after the reply. */
  closed: boolean;
}

/**
 * Send the request line, headers (Content-Length `declared`) and `sent` bytes of body only,
 * then read one reply. Resolves when the reply is complete (and, if the server closes, once
 * it has closed).
 */
function partialPost(url: string, route: string, declared: number, sent: number): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let data = '';
    let reply: RawReply | undefined;
    const finish = (closed: boolean) => {
      if (!reply) return;
      socket.destroy();
      resolve({ ...reply, closed });
    };
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0 || reply) return;
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const length = Number(headers['content-length'] ?? 0);
      if (data.length - end - 4 < length) return;
      reply = { status: Number(statusLine!.split(' ')[1]), headers, body: data.slice(end + 4, end + 4 + length), closed: false };
      // A kept connection stays open: give a close a moment to show, then report it open.
      if (headers.connection !== 'close') setTimeout(() => finish(false), 50);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.write(`POST ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
    if (sent > 0) socket.write(Buffer.alloc(sent, 0x20));
  });
}

beforeAll(async () => {
  repo = await makeRepository();
  mkdirSync(path.join(repo, 'small_queue', '1'), { recursive: true });
  cpSync(path.join(repo, 'identity_fp32', '1', 'model.onnx'), path.join(repo, 'small_queue', '1', 'model.onnx'));
  // Triton's policy holds requests for the whole (long) delay, so the queue stays full.
  writeFileSync(path.join(repo, 'small_queue', 'config.pbtxt'),
    'max_batch_size: 16\ndynamic_batching { preferred_batch_size: [ 16 ] max_queue_delay_microseconds: 1500000 default_queue_policy { max_queue_size: 2 } }\n' +
    'parameters { key: "batching_policy" value: { string_value: "triton" } }\n');
  a = await startAgent(repo, { loadModels: 'small_queue,add_sub', bodyLimit: 1024 * 1024 });
});

afterAll(async () => {
  await a?.close();
});

describe('admission before the body', () => {
  it('refuses an unknown model from the headers while its large body is still unsent, and closes', async () => {
    const r = await partialPost(a.url, '/v2/models/nope/infer', 500_000, 1000);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error).toMatch(/unknown model 'nope'/);
    expect(r.headers.connection).toBe('close');
    expect(r.closed).toBe(true);
  });

  it('refuses a body over --body-limit from Content-Length alone', async () => {
    const r = await partialPost(a.url, '/v2/models/add_sub/infer', 2 * 1024 * 1024, 0);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error).toMatch(/larger than the limit of 1048576 bytes/);
    expect(r.headers.connection).toBe('close');
  });

  it('refuses with 429 + Retry-After when the queue is full, before the body, and counts it', async () => {
    const held = [postJson(`${a.url}/v2/models/small_queue/infer`, fp32Request), postJson(`${a.url}/v2/models/small_queue/infer`, fp32Request)];
    for (let i = 0; i < 200; i++) {
      if ((await getJson(`${a.url}/v2/models/small_queue/stats`)).json.model_stats[0].queue_depth === 2) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const big = await partialPost(a.url, '/v2/models/small_queue/infer', 200_000, 10);
    expect(big.status).toBe(429);
    expect(big.headers['retry-after']).toBe('1');
    expect(big.headers.connection).toBe('close');
    expect(JSON.parse(big.body).error).toMatch(/queue is full \(max_queue_size 2\)/);
    // A small body is read and dropped by Node instead: the connection stays usable.
    const small = await partialPost(a.url, '/v2/models/small_queue/infer', 100, 100);
    expect(small.status).toBe(429);
    expect(small.headers.connection).not.toBe('close');
    expect(small.closed).toBe(false);
    for (const r of await Promise.all(held)) expect(r.status).toBe(200);
    const s = (await getJson(`${a.url}/v2/models/small_queue/stats`)).json.model_stats[0];
    expect(s.failure_reasons.REJECTED).toBe(2);
  });

  it('holds a queue place from the headers: held places count as queued, and go back when the request never reaches the queue', async () => {
    const stats = async () => (await getJson(`${a.url}/v2/models/small_queue/stats`)).json.model_stats[0];
    const { hostname, port } = new URL(a.url);
    // Two requests whose bodies never finish arriving: admitted, each holding one of the 2 places.
    const slow = await Promise.all([0, 1].map(() => new Promise<net.Socket>((resolve) => {
      const sock = net.connect(Number(port), hostname, () => {
        sock.write('POST /v2/models/small_queue/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"inp');
        resolve(sock);
      });
    })));
    let s: any;
    for (let i = 0; i < 400 && (s = await stats()).queue_held < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s).toMatchObject({ queue_depth: 0, queue_held: 2 });
    // Nothing is queued, yet the queue is full: a third request is refused from its headers.
    const third = await partialPost(a.url, '/v2/models/small_queue/infer', 100, 100);
    expect(third.status).toBe(429);
    // The slow clients give up and a bad body fails its decode: every place goes back.
    for (const sock of slow) sock.destroy();
    const bad = await partialPost(a.url, '/v2/models/small_queue/infer', 12, 12);
    expect(bad.status).toBe(400);
    for (let i = 0; i < 400 && (s = await stats()).queue_held > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.queue_held).toBe(0);
    // Both places are usable again: two requests queue (and answer once the batch runs).
    const two = [postJson(`${a.url}/v2/models/small_queue/infer`, fp32Request), postJson(`${a.url}/v2/models/small_queue/infer`, fp32Request)];
    for (const r of await Promise.all(two)) expect(r.status).toBe(200);
  });

  it('a client that leaves while it waits for a place does not keep the place it is handed later', async () => {
    // A long wait for a place, so the clients are surely gone while they wait.
    const own = await startAgent(repo, { loadModels: 'small_queue', queueFullDelayMs: 3000 });
    try {
      const stats = async () => (await getJson(`${own.url}/v2/models/small_queue/stats`)).json.model_stats[0];
      const { hostname, port } = new URL(own.url);
      const headersOnly = () => new Promise<net.Socket>((resolve) => {
        const sock = net.connect(Number(port), hostname, () => {
          sock.write('POST /v2/models/small_queue/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n');
          resolve(sock);
        });
      });
      const holders = await Promise.all([headersOnly(), headersOnly()]);
      let s: any;
      for (let i = 0; i < 400 && (s = await stats()).queue_held < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(s.queue_held).toBe(2);
      const waiters = await Promise.all([headersOnly(), headersOnly(), headersOnly()]);
      await new Promise((r) => setTimeout(r, 200)); // they reach admission and wait (up to 3 s)
      for (const sock of waiters) sock.destroy(); // ...and leave while waiting
      await new Promise((r) => setTimeout(r, 200));
      for (const sock of holders) sock.destroy(); // the two places go to the (gone) waiters
      for (let i = 0; i < 400 && (s = await stats()).queue_held > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(s.queue_held).toBe(0);
      const two = [postJson(`${own.url}/v2/models/small_queue/infer`, fp32Request), postJson(`${own.url}/v2/models/small_queue/infer`, fp32Request)];
      for (const r of await Promise.all(two)) expect(r.status).toBe(200);
    } finally {
      await own.close();
    }
  });

  it('refuses new inference while draining with 503 + Retry-After, before the body', async () => {
    a.agent.node.state = 'draining';
    a.agent.node.reason = 'test';
    try {
      const r = await partialPost(a.url, '/v2/models/add_sub/infer', 300_000, 0);
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('5');
      expect(r.headers.connection).toBe('close');
    } finally {
      a.agent.node.state = 'ready';
      a.agent.node.reason = '';
    }
    const ok = await postJson(`${a.url}/v2/models/add_sub/infer`, {
      inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(1) }, { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(2) }],
    });
    expect(ok.status).toBe(200);
  });
});
