/**
 * The reference coordinator against hand-played agents (bare ws clients): authentication,
 * the register-first rule, malformed messages after registration, dead agents.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startCoordinator, type CoordinatorOptions, type RunningCoordinator } from '../../src/coordinator/server.js';
import { api, captureLogger, rawAgent, registerMessage, silentLogger, sleep, TOKEN, waitFor } from './helpers.js';

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

async function agent(c: RunningCoordinator, ...rest: Parameters<typeof rawAgent> extends [string, ...infer R] ? R : never) {
  const a = await rawAgent(c.agentsUrl, ...rest);
  cleanup.push(() => a.ws.terminate());
  return a;
}

describe('authentication and the register-first rule', () => {
  it('closes with 4001 for a missing or wrong token', async () => {
    const c = await coordinator();
    const none = await agent(c, {});
    expect(await none.closed).toEqual({ code: 4001, reason: 'missing token' });
    const wrong = await agent(c, { authorization: 'Bearer not-the-token' });
    expect(await wrong.closed).toEqual({ code: 4001, reason: 'invalid token' });
    const basic = await agent(c, { authorization: `Basic ${TOKEN}` });
    expect((await basic.closed).code).toBe(4001);
  });

  it('closes with 4002 when the first message is not a valid register, after an error message that says why', async () => {
    const c = await coordinator();
    const hb = await agent(c);
    hb.send({ type: 'heartbeat', seq: 1 });
    expect(await hb.closed).toEqual({ code: 4002, reason: 'protocol error: the first message must be register, got "heartbeat"' });
    expect(hb.messages).toEqual([{ type: 'error', code: 'unexpected', message: 'the first message must be register, got "heartbeat"' }]);

    const junk = await agent(c);
    junk.send('}{');
    expect((await junk.closed).code).toBe(4002);

    const invalid = await agent(c);
    invalid.send(registerMessage({ nodeId: '../../etc', models: [{ name: '/etc/passwd', state: 'READY' }] }));
    const closed = await invalid.closed;
    expect(closed.code).toBe(4002);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(invalid.messages[0].message).toMatch(/invalid 'register' message: nodeId: .*models\.0\.name: must be a model name/);
    expect((await api(c, '/nodes')).body.nodes).toEqual([]);
  });

  it('closes with 4003 for another protocol version', async () => {
    const c = await coordinator();
    const a = await agent(c);
    a.send(registerMessage({ protocolVersion: 2 }));
    expect(await a.closed).toEqual({ code: 4003, reason: 'unsupported protocol version 2; this coordinator speaks 1' });
  });

  it('closes with 4002 when no register arrives in time', async () => {
    const c = await coordinator({ registerTimeoutMs: 100 });
    const a = await agent(c);
    expect(await a.closed).toEqual({ code: 4002, reason: 'protocol error: no register message within 100 ms' });
  });

  it('refuses upgrades on other paths with 404', async () => {
    const c = await coordinator();
    await expect(rawAgent(c.agentsUrl.replace('/agents', '/other'))).rejects.toThrow(/404/);
  });
});

describe('after registration', () => {
  async function registeredAgent(c: RunningCoordinator) {
    const a = await agent(c);
    a.send(registerMessage());
    expect(await a.next((m) => m.type === 'registered')).toEqual({ type: 'registered', protocolVersion: 1, nodeId: 'raw-node-1', sessionId: 'raw-session-1' });
    return a;
  }

  it('answers malformed, unknown and invalid messages with error messages and keeps the connection', async () => {
    const log = captureLogger();
    const c = await coordinator({ logger: log.logger });
    const a = await registeredAgent(c);
    a.send('not json at all');
    expect(await a.next((m) => m.code === 'bad_json')).toMatchObject({ type: 'error', message: expect.stringMatching(/not valid JSON/) });
    a.send({ type: 'telemetry_v9', id: 'm1' });
    expect(await a.next((m) => m.code === 'unknown_type')).toMatchObject({ ref: 'm1', message: expect.stringMatching(/unknown message type 'telemetry_v9'/) });
    a.send({ type: 'heartbeat', seq: -1, at: 0, nodeState: 'sleeping', telemetry: null, models: [] });
    expect(await a.next((m) => m.code === 'invalid_message')).toMatchObject({ message: expect.stringMatching(/invalid 'heartbeat' message: seq: .*nodeState/) });
    a.send({ type: 'command_result', id: 'x', ok: false });
    await a.next((m) => m.code === 'invalid_message' && /error must be present/.test(m.message), 'refinement error');
    a.send(registerMessage());
    expect(await a.next((m) => m.code === 'unexpected')).toMatchObject({ message: expect.stringMatching(/already registered/) });
    a.ws.send(Buffer.from('binary'), { binary: true });
    await a.next((m) => /binary frames/.test(m.message ?? ''), 'binary refused');
    a.send({ type: 'command_result', id: 'never-sent', ok: true }); // ignored
    a.send({ type: 'heartbeat', seq: 1, at: Date.now(), nodeState: 'ready', telemetry: null, models: [], futureField: 1 });
    const node = await waitFor(async () => {
      const { body } = await api(c, '/nodes/raw-node-1');
      return body.heartbeats === 1 && body;
    }, 'the valid heartbeat');
    expect(node).toMatchObject({ state: 'Ready', connected: true });
    expect(node.lastHeartbeat).not.toHaveProperty('futureField');
    expect(log.lines.filter((x) => x.msg === 'malformed message from agent').length).toBeGreaterThanOrEqual(4);
  });

  it('terminates an agent that stops answering pings', async () => {
    const c = await coordinator({ pingIntervalMs: 100 });
    const a = await rawAgent(c.agentsUrl, { authorization: `Bearer ${TOKEN}` }, { autoPong: false });
    cleanup.push(() => a.ws.terminate());
    a.send(registerMessage());
    await a.next((m) => m.type === 'registered');
    expect((await a.closed).code).toBe(1006);
    await waitFor(async () => (await api(c, '/nodes/raw-node-1')).body.connected === false, 'disconnected');
  });

  it('sends commands and matches results by id; a restarted agent fails what its old session owed', async () => {
    const c = await coordinator();
    const a = await registeredAgent(c);
    const first = c.sendCommand('raw-node-1', { type: 'ping' });
    const cmd = await a.next((m) => m.type === 'command');
    expect(cmd).toEqual({ type: 'command', id: expect.any(String), command: { type: 'ping' } });
    a.send({ type: 'command_result', id: cmd.id, ok: true });
    expect(await first).toEqual({ id: cmd.id, ok: true, code: 'ok' }); // an agent without codes: the coordinator fills in ok

    const owed = c.sendCommand('raw-node-1', { type: 'drain' });
    await a.next((m) => m.type === 'command' && m.command.type === 'drain');
    a.ws.terminate();
    const b = await agent(c);
    b.send(registerMessage({ sessionId: 'raw-session-2' }));
    expect(await owed).toMatchObject({ ok: false, error: 'the agent restarted (new session) before answering' });
    await sleep(10);
    await expect(c.sendCommand('raw-node-1', { type: 'load_model', model: '../x' })).rejects.toMatchObject({ status: 400 });
  });
});
