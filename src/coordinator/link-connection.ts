/**
 * One attempt's WebSocket to the coordinator and what the link tracks about it, plus the
 * keepalive that finds a dead peer.
 *
 * Contracts:
 * - `openSocket` sends the bearer token in the upgrade and bounds the upgrade by the register
 *   timeout; it throws only when ws refuses the options or URL outright.
 * - Keepalive: a WebSocket ping every `pingIntervalMs`; no pong (nor any message: the link clears
 *   `awaitingPong` on each) by the next ping means the peer is dead, and the socket is
 *   terminated (the close handler then reconnects with backoff). It stops by itself once the
 *   connection is no longer the link's current one.
 * - `closeGracefully` closes with 1000 'agent shutting down' and waits at most `graceMs` for the
 *   close handshake before terminating; it never rejects.
 */
import WebSocket from 'ws';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { CloseCode } from './protocol.js';
import { schedulePing } from './ping-loop.js';

export interface Connection {
  readonly ws: WebSocket;
  /** The coordinator acknowledged our `register`. */
  registered: boolean;
  registeredAt: number;
  /** A ping is out and neither its pong nor any message has come back. */
  awaitingPong: boolean;
  /** The status of a refused upgrade, when ws reported one. */
  httpStatus: number | undefined;
  /** The last socket error, or the link's own reason for terminating the socket. */
  error: string | undefined;
  cancelPing: (() => void) | undefined;
  cancelRegister: (() => void) | undefined;
}

export interface SocketOptions {
  readonly url: string;
  readonly token: string;
  readonly handshakeTimeoutMs: number;
  readonly maxPayloadBytes: number;
}

/** A new socket and its (unregistered) connection record; the caller attaches the handlers. */
export function openSocket(WS: typeof WebSocket, o: SocketOptions): Connection {
  const ws = new WS(o.url, {
    headers: { authorization: `Bearer ${o.token}` },
    handshakeTimeout: o.handshakeTimeoutMs,
    maxPayload: o.maxPayloadBytes,
    perMessageDeflate: false,
  });
  return {
    ws,
    registered: false,
    registeredAt: 0,
    awaitingPong: false,
    httpStatus: undefined,
    error: undefined,
    cancelPing: undefined,
    cancelRegister: undefined,
  };
}

/** Cancel the connection's ping and register timers. */
export function stopConnTimers(conn: Connection): void {
  conn.cancelPing?.();
  conn.cancelRegister?.();
  conn.cancelPing = conn.cancelRegister = undefined;
}

export interface KeepaliveDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly pingIntervalMs: number;
  /** Whether `conn` is still the link's current connection. */
  readonly isCurrent: (conn: Connection) => boolean;
  /** Runs a timer callback; an exception is logged, never thrown into the clock. */
  readonly guard: (fn: () => void) => void;
}

/** Schedule the next ping of `conn` (and, from it, every later one): ping-loop.ts. */
export function keepAlive(conn: Connection, deps: KeepaliveDeps): void {
  schedulePing(conn, deps.clock, deps.pingIntervalMs, () => {
    conn.error = `no pong from the coordinator within ${deps.pingIntervalMs} ms`;
    deps.log.warn({ pingIntervalMs: deps.pingIntervalMs }, 'the coordinator stopped answering pings; dropping the connection');
  }, (fn) => deps.guard(() => {
    if (deps.isCurrent(conn)) fn();
  }));
}

/**
 * Close `conn` (if any) with 1000 'agent shutting down'; resolves once it has closed, or after
 * `graceMs` when the socket is terminated instead. A socket still connecting is terminated.
 */
export function closeGracefully(conn: Connection | undefined, clock: Clock, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!conn || conn.ws.readyState === WebSocket.CLOSED) return resolve();
    const cancel = clock.setTimer(graceMs, () => {
      conn.ws.terminate();
      resolve();
    });
    conn.ws.once('close', () => {
      cancel();
      resolve();
    });
    try {
      if (conn.ws.readyState === WebSocket.CONNECTING) conn.ws.terminate();
      else conn.ws.close(CloseCode.NORMAL, 'agent shutting down');
    } catch {
      conn.ws.terminate();
    }
  });
}
