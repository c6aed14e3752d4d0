/**
 * The agent's link against the reference coordinator, over real WebSockets on 127.0.0.1:
 * registration, heartbeats, every command, auth refusal, restarts, buffering, node states.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CoordinatorLink } from '../../src/coordinator/link.js';
import { startCoordinator, type CoordinatorOptions, type RunningCoordinator } from '../../src/coordinator/server.js';
import {
  api,
  captureLogger,
  countingWebSocket,
  FakeController,
  fastLinkOptions,
  silentLogger,
  sleep,
  startLink,
  TOKEN,
  waitFor,
} from './helpers.js';

const NODE_ID = '6f1c2b1e-8d1a-4c53-9a57-1b2f3c4d5e6f';

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function coordinator(options: Partial<CoordinatorOptions> = {}): Promise<RunningCoordinator> {
  const c = await startCoordinator({ port: 0, token: TOKEN, logger: silentLogger, ...options });
  cleanup.push(() => c.close());
  return c;
}

function link(...args: Parameters<typeof fastLinkOptions>): CoordinatorLink {
  const l = startLink(fastLinkOptions(...args));
  cleanup.push(() => l.close());
  return l;
}

async function registered(c: RunningCoordinator, nodeId = NODE_ID) {
  return waitFor(async () => {
    const r = await api(c, `/nodes/${nodeId}`);
    return r.status === 200 && r.body.connected && r.body;
  }, `node ${nodeId} registered`);
}

describe('registration and heartbeats', () => {
  it('registers the node with its full description, visible in GET /nodes', async () => {
    const c = await coordinator();
    const ctl = new FakeController();
    const l = link(c.agentsUrl, ctl);
    await registered(c);
    const { status, body } = await api(c, '/nodes');
    expect(status).toBe(200);
    expect(body.nodes).toHaveLength(1);
    const node = body.nodes[0];
    expect(node).toMatchObject({
      nodeId: NODE_ID,
      sessionId: l.sessionId,
      state: 'Ready',
      nodeState: 'ready',
      connected: true,
      hostname: 'gpu-box-1',
      url: 'http://127.0.0.1:8000',
      agentVersion: '0.1.0',
      protocolVersion: 1,
      labels: { zone: 'eu-1a', gpu: 'h100' },
      gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-0000', memoryTotalBytes: 85_899_345_920 }],
      capacity: { gpuCount: 1, memoryBudgetBytes: 64_000_000_000 },
    });
    expect(node.models).toEqual([
      { name: 'add_sub', version: '1', state: 'READY', provider: 'cpu' },
      { name: 'mlp', state: 'UNAVAILABLE', reason: 'not loaded' },
    ]);
    expect(l.status()).toMatchObject({ state: 'connected', connected: true, registrations: 1 });
  });

  it('refuses the HTTP API without the token', async () => {
    const c = await coordinator();
    expect((await api(c, '/nodes', { headers: { authorization: '' } })).status).toBe(401);
    const wrong = await api(c, '/nodes', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toMatch(/bearer token/);
    expect((await api(c, '/healthz', { headers: { authorization: '' } })).status).toBe(200);
    expect((await api(c, '/nodes/nope')).status).toBe(404);
  });

  it('sends heartbeats with increasing sequence numbers and the latest telemetry', async () => {
    const c = await coordinator();
    link(c.agentsUrl, new FakeController());
    await registered(c);
    const seqs: number[] = [];
    await waitFor(async () => {
      const { body } = await api(c, `/nodes/${NODE_ID}`);
      const seq = body.lastHeartbeat?.seq;
      if (seq !== undefined && seq !== seqs[seqs.length - 1]) seqs.push(seq);
      return seqs.length >= 4;
    }, 'four heartbeats');
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    const { body } = await api(c, `/nodes/${NODE_ID}`);
    expect(body.heartbeats).toBeGreaterThanOrEqual(4);
    expect(body.lastHeartbeat).toMatchObject({
      type: 'heartbeat',
      nodeState: 'ready',
      telemetry: { gpus: [{ index: 0, utilizationGpuPct: 37, vendorField: 'kept' }] },
      models: [{ name: 'add_sub', version: '1', queueDepth: 2, inFlight: 1, throughput: 12.5 }],
    });
    expect(typeof body.lastHeartbeat.receivedAt).toBe('string');
  });

  it('uses the heartbeat interval the coordinator asks for', async () => {
    const c = await coordinator({ heartbeatIntervalMs: 150 });
    const l = link(c.agentsUrl, new FakeController(), { heartbeatIntervalMs: 60_000 });
    await registered(c);
    await waitFor(() => l.status().heartbeatIntervalMs === 150, 'interval from registered');
    await waitFor(async () => (await api(c, `/nodes/${NODE_ID}`)).body.heartbeats >= 3, 'heartbeats at the new interval');
  });

  it('records events and applies model state changes to the node view', async () => {
    const c = await coordinator();
    const l = link(c.agentsUrl, new FakeController());
    await registered(c);
    l.sendEvent({ kind: 'model_state', model: 'mlp', version: '1', state: 'READY', provider: 'cuda' });
    l.sendEvent({ kind: 'gpu_error', gpu: 0, xid: 79, error: 'GPU has fallen off the bus' });
    l.sendEvent({ kind: 'model_state', model: '../etc', state: 'READY' } as never); // invalid: logged and dropped
    const node = await waitFor(async () => {
      const { body } = await api(c, `/nodes/${NODE_ID}`);
      return body.events.length >= 2 && body;
    }, 'events');
    expect(node.events.map((e: any) => e.event)).toEqual([
      { kind: 'model_state', model: 'mlp', version: '1', state: 'READY', provider: 'cuda' },
      { kind: 'gpu_error', gpu: 0, xid: 79, error: 'GPU has fallen off the bus' },
    ]);
    expect(node.models).toContainEqual({ name: 'mlp', version: '1', state: 'READY', provider: 'cuda' });
  });
});

describe('commands', () => {
  async function setup() {
    const c = await coordinator();
    const ctl = new FakeController();
    const l = link(c.agentsUrl, ctl);
    await registered(c);
    const command = (body: unknown, query = '') => api(c, `/nodes/${NODE_ID}/commands${query}`, { body });
    return { c, ctl, l, command };
  }

  it('load_model and unload_model answer ok, or an error that says why', async () => {
    const { ctl, command } = await setup();
    const load = await command({ type: 'load_model', model: 'mlp' });
    expect(load.status).toBe(200);
    expect(load.body).toEqual({ id: expect.any(String), ok: true, code: 'ok' });
    const unload = await command({ type: 'unload_model', model: 'add_sub' });
    expect(unload.body).toMatchObject({ ok: true });
    const missing = await command({ type: 'load_model', model: 'nope' });
    expect(missing.status).toBe(200);
    expect(missing.body).toEqual({ id: expect.any(String), ok: false, code: 'failed', error: "model 'nope' is not in the model repository" });
    expect(ctl.calls).toEqual(['load:mlp', 'unload:add_sub', 'load:nope']);
    expect(load.body.id).not.toBe(unload.body.id);
  });

  it('cordon and uncordon change the node state seen right after the result', async () => {
    const { c, command } = await setup();
    expect((await command({ type: 'cordon' })).body).toMatchObject({ ok: true });
    expect((await api(c, `/nodes/${NODE_ID}`)).body.nodeState).toBe('cordoned');
    expect((await api(c, `/nodes/${NODE_ID}`)).body.lastHeartbeat.nodeState).toBe('cordoned');
    expect((await command({ type: 'uncordon' })).body).toMatchObject({ ok: true });
    expect((await api(c, `/nodes/${NODE_ID}`)).body.nodeState).toBe('ready');
  });

  it('drain answers only once the controller has drained', async () => {
    const { c, ctl, command } = await setup();
    let settled = false;
    const pending = command({ type: 'drain' }).then((r) => {
      settled = true;
      return r;
    });
    await waitFor(() => ctl.drainDone, 'drain() called');
    await waitFor(async () => (await api(c, `/nodes/${NODE_ID}`)).body.nodeState === 'draining', 'draining reported');
    await sleep(200);
    expect(settled).toBe(false);
    ctl.drainDone!.resolve();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true });
  });

  it('a failed drain answers the error', async () => {
    const { ctl, command } = await setup();
    const pending = command({ type: 'drain' });
    await waitFor(() => ctl.drainDone, 'drain() called');
    ctl.drainDone!.reject(new Error('a batch failed while draining'));
    expect((await pending).body).toMatchObject({ ok: false, error: 'a batch failed while draining' });
  });

  it('ping answers ok', async () => {
    const { command } = await setup();
    expect((await command({ type: 'ping' })).body).toEqual({ id: expect.any(String), ok: true, code: 'ok' });
  });

  it('refuses commands naming a path, without reaching the agent', async () => {
    const { ctl, command } = await setup();
    for (const model of ['../x', '/etc/passwd', 'a/b', '.hidden', '']) {
      const r = await command({ type: 'load_model', model });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(/model: must be a model name .*never a path/);
    }
    expect((await command({ type: 'unload_model', model: '../../models' })).status).toBe(400);
    expect((await command({ type: 'reboot' })).status).toBe(400);
    expect((await command('not an object')).status).toBe(400);
    expect(ctl.calls).toEqual([]);
  });

  it('answers 404 for an unknown node, 504 when the result is late, 400 for a bad timeout', async () => {
    const { c, ctl, command } = await setup();
    expect((await api(c, '/nodes/nope/commands', { body: { type: 'ping' } })).status).toBe(404);
    expect((await command({ type: 'ping' }, '?timeoutMs=abc')).status).toBe(400);
    ctl.loadGate = new Promise(() => undefined); // never loads
    const late = await command({ type: 'load_model', model: 'mlp' }, '?timeoutMs=100');
    expect(late.status).toBe(504);
    expect(late.body).toMatchObject({ ok: false, error: expect.stringMatching(/no result from the agent within 100 ms/) });
  });
});

describe('resilience', () => {
  it('a refused token stops fast retries: at most one reconnect in a second, an error logged', async () => {
    const c = await coordinator();
    const { WebSocket, count } = countingWebSocket();
    const log = captureLogger();
    const l = link(c.agentsUrl, new FakeController(), {
      token: 'wrong-token',
      WebSocket,
      logger: log.logger,
      backoff: { baseMs: 5, capMs: 20 }, // would be dozens of attempts per second without the refusal rule
    });
    await waitFor(() => l.status().state === 'refused', 'refused state');
    await sleep(1_000);
    expect(count()).toBeLessThanOrEqual(2);
    expect(l.status().lastError).toBe("closed with 4001 'invalid token'");
    expect(log.lines.some((x) => x.level === 50 && /refused our token/.test(String(x.msg)))).toBe(true);
    expect((await api(c, '/nodes')).body.nodes).toEqual([]);
  });

  it('re-registers after the coordinator is killed and restarted on the same port', async () => {
    const first = await startCoordinator({ port: 0, token: TOKEN, logger: silentLogger });
    const port = first.port;
    const ctl = new FakeController();
    const l = link(first.agentsUrl, ctl);
    await registered(first);
    const seqBefore = (await api(first, `/nodes/${NODE_ID}`)).body.lastHeartbeat?.seq ?? 0;
    await first.close();
    await waitFor(() => !l.status().connected, 'link notices');
    ctl.nodeState = 'cordoned'; // state changed while the coordinator was away
    l.sendEvent({ kind: 'node_state', state: 'cordoned', reason: 'operator' });
    await sleep(300);
    const second = await coordinator({ port });
    const node = await registered(second);
    expect(node).toMatchObject({ nodeId: NODE_ID, sessionId: l.sessionId, nodeState: 'cordoned', hostname: 'gpu-box-1' });
    expect(l.status().registrations).toBe(2);
    const after = await waitFor(async () => {
      const { body } = await api(second, `/nodes/${NODE_ID}`);
      return body.lastHeartbeat && body.events.length > 0 && body;
    }, 'buffered messages after re-registration');
    expect(after.lastHeartbeat.seq).toBeGreaterThan(seqBefore);
    expect(after.events[0].event).toEqual({ kind: 'node_state', state: 'cordoned', reason: 'operator' });
  });

  it('keeps at most bufferSize messages while disconnected, dropping the oldest', async () => {
    const probe = await startCoordinator({ port: 0, token: TOKEN, logger: silentLogger });
    const port = probe.port;
    await probe.close(); // nothing listens on `port` now
    const l = link(`ws://127.0.0.1:${port}/agents`, new FakeController(), { bufferSize: 3, heartbeatIntervalMs: 3_600_000 });
    for (let i = 1; i <= 5; i++) l.sendEvent({ kind: 'gpu_error', gpu: 0, error: `e${i}` });
    expect(l.status()).toMatchObject({ buffered: 3, dropped: 2, connected: false });
    const c = await coordinator({ port });
    const node = await waitFor(async () => {
      const r = await api(c, `/nodes/${NODE_ID}`);
      return r.status === 200 && r.body.events.length >= 3 && r.body;
    }, 'buffered events delivered');
    expect(node.events.map((e: any) => e.event.error)).toEqual(['e3', 'e4', 'e5']);
    expect(l.status().buffered).toBe(0);
  });

  it('marks a silent node Unknown, a disconnected node Unknown then Gone; commands to it get 409', async () => {
    const c = await coordinator({ heartbeatTimeoutMs: 300, goneAfterMs: 1_500 });
    const ctl = new FakeController();
    const l = link(c.agentsUrl, ctl, { heartbeatIntervalMs: 50 });
    await registered(c);
    expect((await api(c, `/nodes/${NODE_ID}`)).body.state).toBe('Ready');
    ctl.heartbeatError = new Error('sampler stuck'); // heartbeats stop, the socket stays up
    const silent = await waitFor(async () => {
      const { body } = await api(c, `/nodes/${NODE_ID}`);
      return body.state === 'Unknown' && body;
    }, 'Unknown while connected');
    expect(silent.connected).toBe(true);
    ctl.heartbeatError = undefined;
    await waitFor(async () => (await api(c, `/nodes/${NODE_ID}`)).body.state === 'Ready', 'Ready again');
    l.destroy();
    const gone = await waitFor(async () => {
      const { body } = await api(c, `/nodes/${NODE_ID}`);
      return !body.connected && body;
    }, 'disconnected');
    expect(gone.state).toBe('Unknown');
    const r = await api(c, `/nodes/${NODE_ID}/commands`, { body: { type: 'ping' } });
    expect(r.status).toBe(409);
    expect(r.body.error).toMatch(/not connected \(state Unknown\)/);
    await waitFor(async () => (await api(c, `/nodes/${NODE_ID}`)).body.state === 'Gone', 'Gone', 5_000);
  });

  it('close() says goodbye with 1000 and sends nothing more', async () => {
    const log = captureLogger();
    const c = await coordinator({ logger: log.logger });
    const l = link(c.agentsUrl, new FakeController());
    await registered(c);
    await l.close();
    const gone = await waitFor(async () => {
      const { body } = await api(c, `/nodes/${NODE_ID}`);
      return !body.connected && body;
    }, 'disconnected');
    const heartbeats = gone.heartbeats;
    l.sendEvent({ kind: 'gpu_error', error: 'after close' });
    await sleep(300);
    const { body } = await api(c, `/nodes/${NODE_ID}`);
    expect(body.heartbeats).toBe(heartbeats);
    expect(body.events).toEqual([]);
    expect(l.status().state).toBe('closed');
    expect(log.lines.find((x) => x.msg === 'agent disconnected')).toMatchObject({ code: 1000, reason: 'agent shutting down' });
  });

  it('a second agent with the same node id supersedes the first (4004), which then retries slowly', async () => {
    const c = await coordinator();
    const a = link(c.agentsUrl, new FakeController());
    await registered(c);
    const b = link(c.agentsUrl, new FakeController());
    await waitFor(() => a.status().state === 'refused', 'first link refused');
    expect(a.status().lastError).toBe("closed with 4004 'superseded by a new session'");
    await waitFor(async () => (await api(c, `/nodes/${NODE_ID}`)).body.sessionId === b.sessionId, 'second session');
    expect(b.status().connected).toBe(true);
  });
});
