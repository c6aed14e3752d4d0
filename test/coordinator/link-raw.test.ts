/**
 * The link against a hand-played coordinator (a bare ws server): what goes on the wire,
 * malformed and hostile messages, dead peers, refused upgrades, controller failures.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { CoordinatorLink } from '../../src/coordinator/link.js';
import {
  acceptRegistration,
  captureLogger,
  countingWebSocket,
  FakeController,
  fastLinkOptions,
  sleep,
  startLink,
  startRawServer,
  TOKEN,
  waitFor,
  type RawServer,
} from './helpers.js';

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function server(options: Parameters<typeof startRawServer>[0] = {}): Promise<RawServer> {
  const s = await startRawServer(options);
  cleanup.push(() => s.close());
  return s;
}

function link(...args: Parameters<typeof fastLinkOptions>): CoordinatorLink {
  const l = startLink(fastLinkOptions(...args));
  cleanup.push(() => l.destroy());
  return l;
}

async function connected(options: Partial<Parameters<typeof fastLinkOptions>[2]> = {}) {
  const s = await server();
  const ctl = new FakeController();
  const l = link(s.url, ctl, { heartbeatIntervalMs: 3_600_000, ...options });
  const conn = await s.nextConn(0);
  const reg = await acceptRegistration(conn);
  await waitFor(() => l.status().connected, 'registered');
  return { s, ctl, l, conn, reg };
}

describe('the wire', () => {
  it('sends the bearer token and a full register first; nothing else before registered', async () => {
    const s = await server();
    const l = link(s.url, new FakeController(), { heartbeatIntervalMs: 30 });
    const conn = await s.nextConn(0);
    expect(conn.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const reg = await conn.next((m) => m.type === 'register');
    expect(reg).toEqual({
      type: 'register',
      protocolVersion: 1,
      nodeId: l.nodeId,
      sessionId: l.sessionId,
      agentVersion: '0.1.0',
      hostname: 'gpu-box-1',
      url: 'http://127.0.0.1:8000',
      labels: { zone: 'eu-1a', gpu: 'h100' },
      gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-0000', memoryTotalBytes: 85_899_345_920 }],
      models: [
        { name: 'add_sub', version: '1', state: 'READY', provider: 'cpu' },
        { name: 'mlp', state: 'UNAVAILABLE', reason: 'not loaded' },
      ],
      capacity: { gpuCount: 1, gpuMemoryTotalBytes: 85_899_345_920, memoryBudgetBytes: 64_000_000_000 },
      nodeState: 'ready',
      capabilities: ['command_dedup', 'command_result_code', 'compute_time'],
    });
    await sleep(200); // heartbeats are produced, but held until registered
    expect(conn.messages.map((m) => m.type)).toEqual(['register']);
    expect(l.status().buffered).toBeGreaterThan(0);
    conn.send({ type: 'registered', protocolVersion: 1, nodeId: reg.nodeId, sessionId: reg.sessionId });
    await waitFor(() => conn.messages.filter((m) => m.type === 'heartbeat').length >= 3, 'heartbeats');
    const seqs = conn.messages.filter((m) => m.type === 'heartbeat').map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('re-registers with full state after every reconnect; heartbeat seq keeps increasing', async () => {
    const s = await server();
    const ctl = new FakeController();
    const l = link(s.url, ctl, { heartbeatIntervalMs: 30 });
    const first = await s.nextConn(0);
    await acceptRegistration(first);
    await waitFor(() => first.messages.filter((m) => m.type === 'heartbeat').length >= 2, 'heartbeats');
    ctl.models.set('mlp', { name: 'mlp', version: '1', state: 'READY', provider: 'cuda' });
    first.ws.terminate();
    const second = await s.nextConn(1);
    const reg = await acceptRegistration(second);
    expect(reg.sessionId).toBe(l.sessionId);
    expect(reg.models).toContainEqual({ name: 'mlp', version: '1', state: 'READY', provider: 'cuda' });
    await waitFor(() => second.messages.filter((m) => m.type === 'heartbeat').length >= 2, 'heartbeats again');
    const seqs = [...first.messages, ...second.messages].filter((m) => m.type === 'heartbeat').map((m) => m.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
    expect(l.status().registrations).toBe(2);
  });
});

describe('what the controller reports', () => {
  it('passes null and extra GPU fields through, leaves out entries that do not fit, and never loses the heartbeat over telemetry', async () => {
    const s = await server();
    const ctl = new FakeController();
    const log = captureLogger();
    ctl.models.set('bad name', { name: 'bad name', state: 'READY' });
    const describe = ctl.describe.bind(ctl);
    ctl.describe = () => ({
      ...describe(),
      gpus: [
        { index: 0, name: 'NVIDIA A10', uuid: 'GPU-1', memoryTotalBytes: null, pciBusId: '00000000:18:00.0' },
        { index: -1, name: 'broken' },
      ],
    });
    let telemetry: unknown = { gpus: 'not an array' };
    ctl.heartbeat = () => ({ nodeState: 'ready', telemetry: telemetry as never, models: [{ name: '../x', queueDepth: 0, inFlight: 0, throughput: 0 }] });
    link(s.url, ctl, { logger: log.logger, heartbeatIntervalMs: 50 });
    const conn = await s.nextConn(0);
    const reg = await acceptRegistration(conn);
    expect(reg.gpus).toEqual([{ index: 0, name: 'NVIDIA A10', uuid: 'GPU-1', memoryTotalBytes: null, pciBusId: '00000000:18:00.0' }]);
    expect(reg.models.map((m: { name: string }) => m.name)).toEqual(['add_sub', 'mlp']);
    const hb = await conn.next((m) => m.type === 'heartbeat');
    expect(hb).toMatchObject({ telemetry: null, models: [] });
    telemetry = { gpus: [{ index: 0, utilizationGpuPct: null, temperatureC: 41, processes: [] }] };
    const good = await conn.next((m) => m.type === 'heartbeat' && m.telemetry !== null);
    expect(good.telemetry).toEqual(telemetry);
    const warnings = log.lines.filter((x) => x.level === 40).map((x) => String(x.msg));
    expect(warnings).toContain('model left out of coordinator reports: it does not fit the protocol');
    expect(warnings).toContain('GPU left out of coordinator reports: it does not fit the protocol');
    expect(warnings.filter((w) => /^telemetry does not fit/.test(w))).toHaveLength(1);
  });
});

describe('malformed and hostile coordinator messages', () => {
  it('answers invalid JSON, unknown types, schema errors and binary frames with error messages, and stays usable', async () => {
    const { conn } = await connected();
    conn.send('{not json');
    expect(await conn.next((m) => m.type === 'error' && m.code === 'bad_json')).toMatchObject({ message: expect.stringMatching(/not valid JSON/) });
    conn.send({ type: 'reboot_everything', id: 'x1' });
    expect(await conn.next((m) => m.type === 'error' && m.code === 'unknown_type')).toMatchObject({ ref: 'x1', message: expect.stringMatching(/unknown message type 'reboot_everything'/) });
    conn.send({ type: 'registered', protocolVersion: 'one' });
    expect(await conn.next((m) => m.type === 'error' && m.code === 'invalid_message')).toMatchObject({ message: expect.stringMatching(/invalid 'registered' message/) });
    conn.send([1, 2, 3]);
    await conn.next((m) => m.type === 'error' && /JSON object/.test(m.message), 'error for an array');
    conn.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await conn.next((m) => m.type === 'error' && /binary/.test(m.message), 'error for a binary frame');
    conn.send({ type: 'command', id: 'p1', command: { type: 'ping' } });
    expect(await conn.next((m) => m.type === 'command_result' && m.id === 'p1')).toEqual({ type: 'command_result', id: 'p1', ok: true, code: 'ok' });
    expect(conn.closed).toBeUndefined();
  });

  it('refuses commands naming a path or unknown commands with a command_result error, never calling the controller', async () => {
    const { conn, ctl } = await connected();
    const cases: [string, unknown][] = [
      ['c1', { type: 'load_model', model: '../x' }],
      ['c2', { type: 'load_model', model: '/etc/passwd' }],
      ['c3', { type: 'unload_model', model: 'models/../../secret' }],
      ['c4', { type: 'load_model' }],
      ['c5', { type: 'format_disk' }],
      ['c6', { type: 'load_model', model: 'x'.repeat(200) }],
    ];
    for (const [id, command] of cases) conn.send({ type: 'command', id, command });
    for (const [id] of cases) {
      const r = await conn.next((m) => m.type === 'command_result' && m.id === id, `result ${id}`);
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/^refused: invalid 'command' message: command/);
    }
    expect(conn.messages.find((m) => m.id === 'c1').error).toMatch(/never a path/);
    expect(ctl.calls).toEqual([]);
  });

  it('runs each command once per id and answers controller errors', async () => {
    const { conn, ctl } = await connected();
    let release!: () => void;
    ctl.loadGate = new Promise<void>((r) => (release = r));
    conn.send({ type: 'command', id: 'same', command: { type: 'load_model', model: 'mlp' } });
    conn.send({ type: 'command', id: 'same', command: { type: 'load_model', model: 'mlp' } });
    await waitFor(() => ctl.calls.length === 1, 'load called');
    release();
    await conn.next((m) => m.type === 'command_result' && m.id === 'same');
    await sleep(100);
    expect(conn.messages.filter((m) => m.type === 'command_result' && m.id === 'same')).toHaveLength(1);
    expect(ctl.calls).toEqual(['load:mlp']);
    ctl.cordon = () => {
      throw new Error('cannot cordon: shutting down');
    };
    conn.send({ type: 'command', id: 'k', command: { type: 'cordon' } });
    expect(await conn.next((m) => m.type === 'command_result' && m.id === 'k')).toEqual({ type: 'command_result', id: 'k', ok: false, code: 'failed', error: 'cannot cordon: shutting down' });
  });

  it('sends the new node state before the result of cordon', async () => {
    const { conn } = await connected();
    conn.send({ type: 'command', id: 'c', command: { type: 'cordon' } });
    await conn.next((m) => m.type === 'command_result' && m.id === 'c');
    const types = conn.messages.map((m) => m.type);
    const hb = conn.messages.findLastIndex((m) => m.type === 'heartbeat');
    expect(conn.messages[hb].nodeState).toBe('cordoned');
    expect(hb).toBeLessThan(types.lastIndexOf('command_result'));
  });
});

describe('failures', () => {
  it('terminates a peer that stops answering pings, then reconnects', async () => {
    const s = await server({ autoPong: false });
    const log = captureLogger();
    const l = link(s.url, new FakeController(), { pingIntervalMs: 100, heartbeatIntervalMs: 3_600_000, logger: log.logger });
    await acceptRegistration(await s.nextConn(0));
    await waitFor(() => s.conns[0]!.closed, 'dead peer dropped');
    await acceptRegistration(await s.nextConn(1));
    expect(log.messages()).toContain('the coordinator stopped answering pings; dropping the connection');
    await waitFor(() => l.status().connected, 'connected again');
  });

  it('gives up on a coordinator that never acknowledges register, and retries', async () => {
    const s = await server();
    const l = link(s.url, new FakeController(), { registerTimeoutMs: 150 });
    await s.nextConn(0);
    await waitFor(() => s.conns[0]!.closed, 'first connection dropped');
    await s.nextConn(1);
    expect(l.status().lastError).toBe("no 'registered' from the coordinator within 150 ms");
  });

  it('treats HTTP 401 on the upgrade as a refused token (slow retry)', async () => {
    const http = createServer((_req, res) => res.writeHead(404).end());
    http.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => http.close(() => r())));
    const port = (http.address() as AddressInfo).port;
    const { WebSocket, count } = countingWebSocket();
    const l = link(`ws://127.0.0.1:${port}/agents`, new FakeController(), { WebSocket, backoff: { baseMs: 5, capMs: 10 } });
    await waitFor(() => l.status().state === 'refused', 'refused');
    await sleep(500);
    expect(count()).toBe(1);
    expect(l.status().lastError).toBe('HTTP 401 on the upgrade');
  });

  it('never throws when the controller fails to describe the node; it logs and retries', async () => {
    const s = await server();
    const ctl = new FakeController();
    ctl.describeError = new Error('repository unreadable');
    const log = captureLogger();
    const l = link(s.url, ctl, { logger: log.logger });
    await s.nextConn(1);
    expect(s.conns[0]!.messages).toEqual([]);
    expect(log.lines.some((x) => x.level === 50 && x.err === 'repository unreadable')).toBe(true);
    ctl.describeError = undefined;
    const conn = await waitFor(() => s.conns.find((c) => !c.closed && c.messages.some((m) => m.type === 'register')), 'a register');
    await acceptRegistration(conn);
    await waitFor(() => l.status().connected, 'connected');
  });

  it('reconnect attempts back off instead of spinning while nothing listens', async () => {
    const s = await server();
    const url = s.url;
    await s.close();
    const { WebSocket, count } = countingWebSocket();
    const l = link(url, new FakeController(), { WebSocket, backoff: { baseMs: 50, capMs: 400 }, rng: () => 1 });
    await sleep(1_000);
    // delays 50, 100, 200, 400, 400 … → about 5 attempts in a second; far from a busy loop.
    expect(count()).toBeGreaterThanOrEqual(3);
    expect(count()).toBeLessThanOrEqual(7);
    expect(l.status().state).toBe('backoff');
  });

  it('rejects a coordinator URL that is not ws:// at construction (a configuration error)', () => {
    expect(() => startLink(fastLinkOptions('http://127.0.0.1:9000/agents', new FakeController()))).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => startLink(fastLinkOptions('ws://127.0.0.1:9000/agents', new FakeController(), { token: '' }))).toThrow(/token/);
  });
});

describe('command semantics (command-policy.ts)', () => {
  it('a pending drain ended by uncordon answers cancelled; uncordon answers ok', async () => {
    const { conn } = await connected();
    conn.send({ type: 'command', id: 'd1', command: { type: 'drain' } });
    await waitFor(() => conn.messages.some((m) => m.type === 'heartbeat' && m.nodeState === 'draining'), 'draining heartbeat');
    conn.send({ type: 'command', id: 'u1', command: { type: 'uncordon' } });
    const u = await conn.next((m) => m.type === 'command_result' && m.id === 'u1');
    const d = await conn.next((m) => m.type === 'command_result' && m.id === 'd1');
    expect(u).toEqual({ type: 'command_result', id: 'u1', ok: true, code: 'ok' });
    expect(d).toMatchObject({ ok: false, code: 'cancelled', error: expect.stringMatching(/ended by uncordon \(command u1\)/) });
  });

  it('a finished command id sent again gets the first result, without running again', async () => {
    const { conn, ctl } = await connected();
    conn.send({ type: 'command', id: 'L', command: { type: 'load_model', model: 'nope' } });
    const first = await conn.next((m) => m.type === 'command_result' && m.id === 'L');
    conn.send({ type: 'command', id: 'L', command: { type: 'load_model', model: 'nope' } });
    const second = await conn.next((m) => m.type === 'command_result' && m.id === 'L');
    expect(second).toEqual(first);
    expect(ctl.calls).toEqual(['load:nope']);
  });

  it('unload_model while the same model loads is refused with conflict', async () => {
    const { conn, ctl } = await connected();
    let release!: () => void;
    ctl.loadGate = new Promise<void>((r) => (release = r));
    conn.send({ type: 'command', id: 'l', command: { type: 'load_model', model: 'mlp' } });
    await waitFor(() => ctl.calls.includes('load:mlp'), 'load started');
    conn.send({ type: 'command', id: 'u', command: { type: 'unload_model', model: 'mlp' } });
    expect(await conn.next((m) => m.type === 'command_result' && m.id === 'u')).toMatchObject({ ok: false, code: 'conflict' });
    release();
    expect(await conn.next((m) => m.type === 'command_result' && m.id === 'l')).toMatchObject({ ok: true, code: 'ok' });
    expect(ctl.calls).toEqual(['load:mlp']);
  });
});
