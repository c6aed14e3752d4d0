/**
 * The link's timing with everything injected (a fake WebSocket, a fake clock, a fixed rng):
 * the reconnect schedule, the backoff reset after a stable connection, the slow retry after a
 * refusal, dead-peer detection. No sockets, no sleeps.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { CoordinatorLink } from '../../src/coordinator/link.js';
import { FakeClock } from '../../src/util/clock.js';
import { FakeController, fastLinkOptions } from './helpers.js';

class FakeSocket extends EventEmitter {
  readyState = 0;
  readonly sent: any[] = [];
  pings = 0;
  terminated = false;

  constructor(
    readonly url: string,
    readonly options: Record<string, unknown>,
    all: FakeSocket[],
  ) {
    super();
    all.push(this);
  }

  open(): void {
    this.readyState = 1;
    this.emit('open');
  }

  receive(message: unknown): void {
    this.emit('message', Buffer.from(JSON.stringify(message)), false);
  }

  drop(code = 1006, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.emit('close', code, Buffer.from(reason));
  }

  send(data: string, cb?: (err?: Error) => void): void {
    this.sent.push(JSON.parse(data));
    cb?.();
  }

  ping(): void {
    this.pings++;
  }

  close(code: number, reason: string): void {
    queueMicrotask(() => this.drop(code, reason));
  }

  terminate(): void {
    this.terminated = true;
    queueMicrotask(() => this.drop(1006));
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));

function setup(overrides: Parameters<typeof fastLinkOptions>[2] = {}) {
  const sockets: FakeSocket[] = [];
  const clock = new FakeClock();
  const Fake = class extends FakeSocket {
    constructor(url: string, options: Record<string, unknown>) {
      super(url, options, sockets);
    }
  };
  const link = new CoordinatorLink(
    fastLinkOptions('ws://coordinator.test/agents', new FakeController(), {
      WebSocket: Fake as unknown as typeof WebSocket,
      clock,
      rng: () => 0.5,
      backoff: { baseMs: 1_000, capMs: 30_000, fastCapMs: 4_000, fastWindowMs: 60_000 },
      refusedRetryMs: 60_000,
      pingIntervalMs: 15_000,
      registerTimeoutMs: 10_000,
      heartbeatIntervalMs: 3_600_000,
      ...overrides,
    }),
  );
  link.start();
  /** Advance until the next connection attempt; returns the delay it took. */
  const nextAttempt = async (): Promise<number> => {
    const before = sockets.length;
    let waited = 0;
    while (sockets.length === before) {
      clock.advance(1);
      waited++;
      if (waited > 100_000) throw new Error('no reconnect scheduled');
    }
    await flush();
    return waited;
  };
  const last = () => sockets[sockets.length - 1]!;
  const register = async () => {
    const s = last();
    s.open();
    await flush();
    const reg = s.sent.find((m) => m.type === 'register');
    s.receive({ type: 'registered', protocolVersion: 1, nodeId: reg.nodeId, sessionId: reg.sessionId });
    await flush();
  };
  return { link, clock, sockets, nextAttempt, last, register };
}

describe('reconnect schedule (fake clock, rng = 0.5)', () => {
  it('follows full-jitter exponential backoff: the fast cap for the first minute, the long cap after', async () => {
    const { sockets, nextAttempt, last, link } = setup();
    expect(sockets).toHaveLength(1);
    expect(sockets[0]!.options.headers).toEqual({ authorization: 'Bearer test-token-123456' });
    const delays: number[] = [];
    let waited = 0;
    while (waited < 60_000) {
      last().drop(1006);
      const d = await nextAttempt();
      delays.push(d);
      waited += d;
    }
    expect(delays.slice(0, 5)).toEqual([500, 1_000, 2_000, 2_000, 2_000]); // ceilings 1, 2, 4 s, then the 4 s fast cap
    expect(Math.max(...delays)).toBe(2_000);
    for (const expected of [15_000, 15_000]) { // disconnected for a minute: the 30 s cap
      last().drop(1006);
      expect(await nextAttempt()).toBe(expected);
    }
    link.destroy();
  });

  it('a registration resets the backoff at once, however short the connection was', async () => {
    const { nextAttempt, last, register, link } = setup();
    for (let i = 0; i < 6; i++) {
      last().drop(1006);
      await nextAttempt();
    }
    await register(); // a coordinator restart: up again for a moment only
    last().drop(1006);
    expect(await nextAttempt()).toBe(500); // not the 7th failure in a row: it was reachable
    last().drop(1006);
    expect(await nextAttempt()).toBe(1_000);
    await register();
    last().drop(1001, 'coordinator shutting down');
    expect(await nextAttempt()).toBe(500);
    expect(link.status().registrations).toBe(2);
    link.destroy();
  });

  it('retries a refused token only after refusedRetryMs × [0.5, 1]', async () => {
    const { nextAttempt, last, link } = setup();
    last().open();
    last().drop(4001, 'invalid token');
    expect(link.status().state).toBe('refused');
    expect(await nextAttempt()).toBe(45_000);
    last().drop(4003, 'unsupported protocol version 1; this coordinator speaks 2');
    expect(await nextAttempt()).toBe(45_000);
    link.destroy();
  });

  it('terminates a connection whose pong does not come back before the next ping', async () => {
    const { last, register, clock, sockets, link } = setup();
    await register();
    const s = last();
    clock.advance(15_000);
    expect(s.pings).toBe(1);
    s.emit('pong');
    clock.advance(15_000);
    expect(s.pings).toBe(2);
    expect(s.terminated).toBe(false);
    clock.advance(15_000); // no pong this time
    expect(s.terminated).toBe(true);
    await flush();
    expect(link.status().state).toBe('backoff');
    clock.advance(30_000);
    expect(sockets.length).toBe(2);
    link.destroy();
  });

  it('gives up on a missing registered ack after registerTimeoutMs', async () => {
    const { last, clock, link } = setup();
    const s = last();
    s.open();
    await flush();
    clock.advance(9_999);
    expect(s.terminated).toBe(false);
    clock.advance(1);
    expect(s.terminated).toBe(true);
    await flush();
    expect(link.status().lastError).toBe("no 'registered' from the coordinator within 10000 ms");
    link.destroy();
  });

  it('close() sends a 1000 close and schedules nothing more', async () => {
    const { last, register, clock, sockets, link } = setup();
    await register();
    const sentBefore = last().sent.length;
    await link.close();
    expect(last().readyState).toBe(3);
    link.sendEvent({ kind: 'gpu_error', error: 'late' });
    clock.advance(3_600_000);
    expect(sockets).toHaveLength(1);
    expect(last().sent).toHaveLength(sentBefore);
    expect(clock.pendingTimers).toBe(0);
  });
});
