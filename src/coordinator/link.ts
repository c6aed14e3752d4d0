/**
 * The agent's end of the coordinator link: one outbound WebSocket that registers the node,
 * sends heartbeats and events, and runs the coordinator's commands through a
 * {@link NodeController} the agent implements.
 *
 * This file is the connection lifecycle (connect, register, dispatch, close, reconnect); each
 * other job has its own file:
 * - link-backoff.ts, link-close-policy.ts: the reconnect and refusal policies (pure), and
 *   link-reconnect.ts: the retry timer they set;
 * - link-connection.ts: one attempt's socket and its keepalive;
 * - link-inbound.ts: decoding the coordinator's frames, and what a bad frame is answered;
 * - link-outbox.ts: validated sending, and the drop-oldest buffer while disconnected;
 * - link-reports.ts, link-heartbeat.ts: the register and heartbeat messages, and their timer;
 * - link-commands.ts (with command-policy.ts): running commands and answering their results;
 * - link-types.ts: the link's contracts with the agent (options and their defaults, controller,
 *   status).
 *
 * Contracts:
 * - Nothing here throws into the agent once constructed: every failure (coordinator down, a
 *   refused token, a malformed message, a controller that throws) is logged and handled. HTTP
 *   serving never depends on the link.
 * - Reconnects use full-jitter exponential backoff ({@link reconnectDelay}: base 0.5 s, cap 4 s
 *   for the first minute of a disconnection, 30 s after). A registration proves the coordinator
 *   reachable, so it resets the attempt counter: a coordinator restart costs each node one short
 *   jittered wait, not the tail of the last outage (docs/coordinator-protocol.md, "Reconnecting").
 * - A refusal (close 4001 invalid token, 4003 unsupported version, 4004 superseded, or HTTP
 *   401/403 on the upgrade) cannot be fixed by retrying fast: the link logs an error and retries
 *   only every `refusedRetryMs` (default 60 s, with jitter between half and all of it), so a
 *   rotated token is picked up without restarting the agent and without hammering the coordinator.
 * - Every (re)connect starts with a full `register`; buffered messages follow the `registered` ack.
 * - Heartbeats, events and command results produced while disconnected go to a bounded
 *   drop-oldest buffer. Inference never travels over this link.
 * - Keepalive: a WebSocket ping every `pingIntervalMs`; no pong (nor any message) by the next
 *   ping means the peer is dead and the socket is terminated (then reconnect with backoff).
 * - `close()` closes the socket with 1000 and sends nothing more; `destroy()` terminates it.
 */
import WebSocket from 'ws';
import { messageOf } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { redactPaths } from './command-policy.js';
import { closeReason, refusalOf, upgradeStatusOf } from './link-close-policy.js';
import { CommandRunner } from './link-commands.js';
import { closeGracefully, keepAlive, openSocket, stopConnTimers, type Connection } from './link-connection.js';
import { Heartbeats } from './link-heartbeat.js';
import { readFrame } from './link-inbound.js';
import { Outbox } from './link-outbox.js';
import { Reconnector } from './link-reconnect.js';
import { ReportFilter, validRegisterMessage } from './link-reports.js';
import { resolveLinkOptions, type CoordinatorLinkOptions, type LinkState, type LinkStatus, type NodeDescription, type ResolvedLinkOptions } from './link-types.js';
import type { AgentEvent, AgentMessage, RegisteredMessage } from './protocol.js';

export { backoffDelay, DEFAULT_BACKOFF, reconnectDelay, type BackoffSettings } from './link-backoff.js';
export { DropOldestBuffer } from './drop-oldest-buffer.js';
export type { CoordinatorLinkOptions, LinkState, LinkStatus, NodeController, NodeDescription, NodeHeartbeat } from './link-types.js';

export class CoordinatorLink {
  readonly nodeId: string;
  readonly sessionId: string;
  private readonly opts: ResolvedLinkOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly outbox: Outbox;
  private readonly reports: ReportFilter;
  private readonly heartbeats: Heartbeats;
  private readonly commands: CommandRunner;
  private readonly reconnect: Reconnector;
  private state: LinkState = 'idle';
  private conn: Connection | undefined;
  private connectAttempts = 0;
  private registrations = 0;
  private lastError: string | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  /** Throws (a configuration error, at startup) only for a URL that is not ws:/wss:, an empty token or an invalid node id. */
  constructor(options: CoordinatorLinkOptions) {
    const opts = resolveLinkOptions(options);
    this.opts = opts;
    this.nodeId = opts.nodeId;
    this.sessionId = opts.sessionId;
    this.log = opts.logger.child({ component: 'coordinator-link' });
    this.clock = opts.clock;
    this.outbox = new Outbox(this.log, opts.bufferSize);
    this.reports = new ReportFilter(this.log);
    const enqueue = (message: AgentMessage) => this.enqueue(message);
    const spawn = (task: () => Promise<void>) => this.spawn(task);
    this.heartbeats = new Heartbeats(
      { controller: opts.controller, log: this.log, clock: this.clock, reports: this.reports, enqueue, spawn, isClosed: () => this.closed },
      opts.heartbeatIntervalMs,
    );
    this.commands = new CommandRunner({ controller: opts.controller, log: this.log, clock: this.clock, enqueue, sendHeartbeat: () => this.heartbeats.send() });
    const { clock, rng, backoff, refusedRetryMs, nodeId } = opts;
    this.reconnect = new Reconnector({ clock, rng, backoff, refusedRetryMs, nodeId, log: this.log, connect: () => this.connect(), guard: (fn) => this.guard(fn) });
  }

  /** Connect and keep connected until close()/destroy(). Idempotent. */
  start(): void {
    if (this.closed || this.state !== 'idle') return;
    this.log.info({ url: this.opts.url, nodeId: this.nodeId, sessionId: this.sessionId }, 'connecting to the coordinator');
    this.heartbeats.start();
    this.reconnect.disconnected();
    this.connect();
  }

  /** Report an event now (or buffer it while disconnected). Invalid events are logged and dropped. */
  sendEvent(event: AgentEvent): void {
    // No server path leaves the agent: load errors and reasons often name files.
    const clean = { ...event } as AgentEvent & { error?: string; reason?: string };
    if (typeof clean.error === 'string') clean.error = redactPaths(clean.error);
    if (typeof clean.reason === 'string') clean.reason = redactPaths(clean.reason);
    this.guard(() => this.enqueue({ type: 'event', at: Date.now(), event: clean }));
  }

  status(): LinkStatus {
    return {
      state: this.state,
      nodeId: this.nodeId,
      sessionId: this.sessionId,
      connected: this.state === 'connected',
      connectAttempts: this.connectAttempts,
      registrations: this.registrations,
      attempt: this.reconnect.attempt,
      buffered: this.outbox.size,
      dropped: this.outbox.dropped,
      heartbeatSeq: this.heartbeats.seq,
      heartbeatIntervalMs: this.heartbeats.intervalMs,
      lastError: this.lastError,
    };
  }

  /** Close the socket with 1000 'agent shutting down' and send nothing more (waits at most 2 s for the close handshake). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.stopAll();
    const conn = this.conn;
    this.conn = undefined;
    this.closing = closeGracefully(conn, this.clock, 2_000);
    this.log.info('coordinator link closed');
    return this.closing;
  }

  /** Terminate the socket at once. */
  destroy(): void {
    const conn = this.conn;
    this.stopAll();
    this.conn = undefined;
    try {
      conn?.ws.terminate();
    } catch {
      // already gone
    }
    this.closing ??= Promise.resolve();
  }

  private stopAll(): void {
    this.closed = true;
    this.state = 'closed';
    this.reconnect.stop();
    this.heartbeats.stop();
    if (this.conn) stopConnTimers(this.conn);
    this.outbox.clear();
  }

  /** Run an async task whose failure must never become an unhandled rejection. */
  private spawn(task: () => Promise<void>): void {
    task().catch((err: unknown) => this.log.error({ err: messageOf(err) }, 'coordinator link: unexpected error'));
  }

  /** Run a handler; an exception is a bug, logged, never thrown into ws or the agent. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err: messageOf(err) }, 'coordinator link: unexpected error');
    }
  }

  // ---- connection lifecycle -----------------------------------------------------------------

  private connect(): void {
    if (this.closed) return;
    this.state = 'connecting';
    this.connectAttempts++;
    let conn: Connection;
    try {
      const { url, token, registerTimeoutMs, maxPayloadBytes } = this.opts;
      conn = openSocket(this.opts.WebSocket, { url, token, handshakeTimeoutMs: registerTimeoutMs, maxPayloadBytes });
    } catch (err) {
      this.lastError = messageOf(err);
      this.log.error({ err: this.lastError }, 'cannot create the coordinator WebSocket');
      this.state = 'backoff';
      this.reconnect.afterFailure(false, this.lastError);
      return;
    }
    this.conn = conn;
    const { ws } = conn;
    ws.on('open', () => this.guard(() => this.onOpen(conn)));
    ws.on('message', (data, isBinary) => this.guard(() => this.onMessage(conn, data, isBinary)));
    ws.on('pong', () => {
      conn.awaitingPong = false;
    });
    ws.on('error', (err) => this.guard(() => this.onError(conn, err)));
    ws.on('close', (code, reason) => this.guard(() => this.onClose(conn, code, reason.toString('utf8'))));
  }

  private onOpen(conn: Connection): void {
    if (conn !== this.conn) return;
    this.state = 'registering';
    keepAlive(conn, {
      clock: this.clock,
      log: this.log,
      pingIntervalMs: this.opts.pingIntervalMs,
      isCurrent: (c) => c === this.conn,
      guard: (fn) => this.guard(fn),
    });
    conn.cancelRegister = this.clock.setTimer(this.opts.registerTimeoutMs, () =>
      this.guard(() => {
        if (conn !== this.conn || conn.registered) return;
        conn.error = `no 'registered' from the coordinator within ${this.opts.registerTimeoutMs} ms`;
        conn.ws.terminate();
      }),
    );
    this.spawn(() => this.register(conn));
  }

  /** Send `register` built from the controller's description; a failure drops the socket (then backoff). */
  private async register(conn: Connection): Promise<void> {
    let d: NodeDescription;
    try {
      d = await this.opts.controller.describe();
    } catch (err) {
      conn.error = `describe() failed: ${messageOf(err)}`;
      this.log.error({ err: messageOf(err) }, 'cannot describe the node; will retry the connection');
      conn.ws.terminate();
      return;
    }
    if (conn !== this.conn || conn.ws.readyState !== WebSocket.OPEN) return;
    const built = validRegisterMessage(d, { nodeId: this.nodeId, sessionId: this.sessionId, agentVersion: this.opts.agentVersion }, this.reports);
    if (!built.ok) {
      conn.error = built.error;
      this.log.error({ err: conn.error }, 'describe() returned an invalid node description; cannot register');
      conn.ws.terminate();
      return;
    }
    this.outbox.send(conn.ws, built.message);
  }

  private onRegistered(conn: Connection, m: RegisteredMessage): void {
    if (conn.registered) {
      this.log.debug('duplicate registered message ignored');
      return;
    }
    conn.registered = true;
    conn.registeredAt = this.clock.now();
    this.reconnect.registered();
    conn.cancelRegister?.();
    conn.cancelRegister = undefined;
    if (m.nodeId !== this.nodeId || m.sessionId !== this.sessionId) {
      this.log.warn({ nodeId: m.nodeId, sessionId: m.sessionId }, 'the coordinator acknowledged other ids than ours');
    }
    if (m.heartbeatIntervalMs !== undefined) this.heartbeats.setInterval(m.heartbeatIntervalMs);
    this.state = 'connected';
    this.registrations++;
    this.lastError = undefined;
    const backlog = this.outbox.takeBacklog();
    this.log.info({ url: this.opts.url, nodeId: this.nodeId, sessionId: this.sessionId, backlog: backlog.length, dropped: this.outbox.dropped }, 'registered with the coordinator');
    for (const msg of backlog) this.outbox.send(conn.ws, msg);
    this.spawn(() => this.heartbeats.send());
  }

  private onError(conn: Connection, err: Error): void {
    conn.error = err.message;
    const status = upgradeStatusOf(err.message);
    if (status !== undefined) conn.httpStatus = status;
    this.log.debug({ err: err.message }, 'coordinator WebSocket error');
  }

  private onClose(conn: Connection, code: number, reason: string): void {
    stopConnTimers(conn);
    if (conn !== this.conn) return;
    this.conn = undefined;
    if (this.closed) return;
    if (conn.registered) this.reconnect.disconnected();
    const why = closeReason({ code, reason, httpStatus: conn.httpStatus, error: conn.error });
    this.lastError = why;
    const refusal = refusalOf({ code, httpStatus: conn.httpStatus });
    if (refusal) {
      this.state = 'refused';
      this.reconnect.afterRefusal(refusal, why);
    } else {
      this.state = 'backoff';
      this.reconnect.afterFailure(conn.registered, why);
    }
  }

  // ---- messages -------------------------------------------------------------------------------

  private onMessage(conn: Connection, data: WebSocket.RawData, isBinary: boolean): void {
    if (conn !== this.conn) return;
    conn.awaitingPong = false;
    const frame = readFrame(data, isBinary);
    if (!frame.ok) {
      if (frame.fields) this.log.warn(frame.fields, frame.warning);
      else this.log.warn(frame.warning);
      if (frame.isCommandResult) this.enqueue(frame.reply);
      else this.outbox.send(conn.ws, frame.reply);
      return;
    }
    const m = frame.message;
    switch (m.type) {
      case 'registered':
        this.onRegistered(conn, m);
        return;
      case 'command':
        this.spawn(() => this.commands.run(m));
        return;
      case 'error':
        this.log.warn({ code: m.code, err: m.message, ref: m.ref }, 'the coordinator reported an error');
        return;
    }
  }

  /** Send now when registered, else keep in the drop-oldest buffer (link-outbox.ts); nothing once closed. */
  private enqueue(message: AgentMessage): void {
    if (this.closed) return;
    const conn = this.conn;
    this.outbox.enqueue(message, conn?.registered ? conn.ws : undefined);
  }
}
