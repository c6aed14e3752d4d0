/**
 * The agent's end of the coordinator link: one outbound WebSocket that registers the node,
 * sends heartbeats and events, and runs the coordinator's commands through a
 * {@link NodeController} the agent implements.
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
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { z } from 'zod';
import { messageOf } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { DEFAULT_BACKOFF, reconnectDelay, type BackoffSettings } from './link-backoff.js';
import { DropOldestBuffer } from './drop-oldest-buffer.js';
import type { CoordinatorLinkOptions, LinkState, LinkStatus, NodeDescription, NodeHeartbeat } from './link-types.js';
import {
  admitCommand, CommandDedup, CommandResultCode, redactPaths, resultCodeOf, type FinishedResult, type RunningCommand,
} from './command-policy.js';
import {
  AGENT_CAPABILITIES,
  AgentMessageSchema,
  CloseCode,
  COMMAND_DEDUP_WINDOW_MS,
  CommandIdSchema,
  decodeCoordinatorMessage,
  ErrorCodes,
  formatIssues,
  GpuInfoSchema,
  ID_PATTERN,
  ModelInfoSchema,
  ModelLoadSchema,
  PROTOCOL_VERSION,
  REFUSAL_CLOSE_CODES,
  TelemetrySchema,
  type AgentEvent,
  type AgentMessage,
  type Command,
  type CommandMessage,
  type RegisteredMessage,
  type Telemetry,
} from './protocol.js';

export { backoffDelay, DEFAULT_BACKOFF, reconnectDelay, type BackoffSettings } from './link-backoff.js';
export { DropOldestBuffer } from './drop-oldest-buffer.js';
export type { CoordinatorLinkOptions, LinkState, LinkStatus, NodeController, NodeDescription, NodeHeartbeat } from './link-types.js';

/** Thrown into a pending drain when uncordon ends it. */
class DrainCancelled extends Error {
  constructor(message: string, readonly drainId: string) {
    super(message);
    this.name = 'DrainCancelled';
  }
}

interface Connection {
  readonly ws: WebSocket;
  registered: boolean;
  registeredAt: number;
  awaitingPong: boolean;
  httpStatus: number | undefined;
  error: string | undefined;
  cancelPing: (() => void) | undefined;
  cancelRegister: (() => void) | undefined;
}

const MAX_ERROR_CHARS = 4000;
const noop = () => undefined;

export class CoordinatorLink {
  readonly nodeId: string;
  readonly sessionId: string;
  private readonly opts: CoordinatorLinkOptions;
  private readonly log: Logger;
  private readonly WS: typeof WebSocket;
  private readonly rng: () => number;
  private readonly clock: Clock;
  private readonly backoff: BackoffSettings;
  private readonly refusedRetryMs: number;
  private readonly pingIntervalMs: number;
  private readonly registerTimeoutMs: number;
  private readonly buffer: DropOldestBuffer<AgentMessage>;
  private readonly inflight = new Set<string>();
  private readonly running = new Map<string, RunningCommand>();
  private readonly pendingDrains = new Map<string, (e: DrainCancelled) => void>();
  private readonly dedup: CommandDedup;
  private readonly warned = new Set<string>();
  private heartbeatMs: number;
  private state: LinkState = 'idle';
  private conn: Connection | undefined;
  private attempt = 0;
  /** Since when the node has had no registered connection (start, or the loss of the last one). */
  private disconnectedSince = 0;
  private connectAttempts = 0;
  private registrations = 0;
  private seq = 0;
  private lastError: string | undefined;
  private closed = false;
  private dropWarned = false;
  private cancelRetry: (() => void) | undefined;
  private cancelHeartbeat: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  /** Throws (a configuration error, at startup) only for a URL that is not ws:/wss:, an empty token or an invalid node id. */
  constructor(opts: CoordinatorLinkOptions) {
    let protocol: string;
    try {
      protocol = new URL(opts.url).protocol;
    } catch {
      throw new TypeError(`coordinator URL '${opts.url}' is not a URL; expected ws://host:port/agents`);
    }
    if (protocol !== 'ws:' && protocol !== 'wss:') throw new TypeError(`coordinator URL '${opts.url}' must start with ws:// or wss://`);
    if (!opts.token) throw new TypeError('a coordinator token is required');
    if (!ID_PATTERN.test(opts.nodeId)) throw new TypeError(`invalid node id '${opts.nodeId}'`);
    const sessionId = opts.sessionId ?? randomUUID();
    if (!ID_PATTERN.test(sessionId)) throw new TypeError(`invalid session id '${sessionId}'`);
    this.opts = opts;
    this.nodeId = opts.nodeId;
    this.sessionId = sessionId;
    this.log = opts.logger.child({ component: 'coordinator-link' });
    this.WS = opts.WebSocket ?? WebSocket;
    this.rng = opts.rng ?? Math.random;
    this.clock = opts.clock ?? systemClock;
    this.dedup = new CommandDedup(this.clock, COMMAND_DEDUP_WINDOW_MS);
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.refusedRetryMs = opts.refusedRetryMs ?? 60_000;
    this.pingIntervalMs = opts.pingIntervalMs ?? 15_000;
    this.registerTimeoutMs = opts.registerTimeoutMs ?? 10_000;
    this.heartbeatMs = opts.heartbeatIntervalMs ?? 5_000;
    this.buffer = new DropOldestBuffer(opts.bufferSize ?? 500);
  }

  /** Connect and keep connected until close()/destroy(). Idempotent. */
  start(): void {
    if (this.closed || this.state !== 'idle') return;
    this.log.info({ url: this.opts.url, nodeId: this.nodeId, sessionId: this.sessionId }, 'connecting to the coordinator');
    this.scheduleHeartbeat();
    this.disconnectedSince = this.clock.now();
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
      attempt: this.attempt,
      buffered: this.buffer.size,
      dropped: this.buffer.dropped,
      heartbeatSeq: this.seq,
      heartbeatIntervalMs: this.heartbeatMs,
      lastError: this.lastError,
    };
  }

  /** Close the socket with 1000 'agent shutting down' and send nothing more (waits at most 2 s for the close handshake). */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.stopAll();
    const conn = this.conn;
    this.conn = undefined;
    this.closing = new Promise<void>((resolve) => {
      if (!conn || conn.ws.readyState === WebSocket.CLOSED) return resolve();
      const cancel = this.clock.setTimer(2_000, () => {
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
    this.cancelRetry?.();
    this.cancelHeartbeat?.();
    this.cancelRetry = this.cancelHeartbeat = undefined;
    if (this.conn) this.stopConnTimers(this.conn);
    this.buffer.takeAll();
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
    this.cancelRetry = undefined;
    if (this.closed) return;
    this.state = 'connecting';
    this.connectAttempts++;
    let ws: WebSocket;
    try {
      ws = new this.WS(this.opts.url, {
        headers: { authorization: `Bearer ${this.opts.token}` },
        handshakeTimeout: this.registerTimeoutMs,
        maxPayload: this.opts.maxPayloadBytes ?? 1024 * 1024,
        perMessageDeflate: false,
      });
    } catch (err) {
      this.lastError = messageOf(err);
      this.log.error({ err: this.lastError }, 'cannot create the coordinator WebSocket');
      this.retryAfterFailure(false);
      return;
    }
    const conn: Connection = {
      ws,
      registered: false,
      registeredAt: 0,
      awaitingPong: false,
      httpStatus: undefined,
      error: undefined,
      cancelPing: undefined,
      cancelRegister: undefined,
    };
    this.conn = conn;
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
    this.schedulePing(conn);
    conn.cancelRegister = this.clock.setTimer(this.registerTimeoutMs, () =>
      this.guard(() => {
        if (conn !== this.conn || conn.registered) return;
        conn.error = `no 'registered' from the coordinator within ${this.registerTimeoutMs} ms`;
        conn.ws.terminate();
      }),
    );
    this.spawn(() => this.register(conn));
  }

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
    let message: AgentMessage;
    try {
      message = this.registerMessage(d);
    } catch (err) {
      conn.error = `invalid node description: ${messageOf(err)}`;
      this.log.error({ err: conn.error }, 'describe() returned an invalid node description; cannot register');
      conn.ws.terminate();
      return;
    }
    const parsed = AgentMessageSchema.safeParse(message);
    if (!parsed.success) {
      conn.error = `invalid node description: ${formatIssues(parsed.error)}`;
      this.log.error({ err: conn.error }, 'describe() returned an invalid node description; cannot register');
      conn.ws.terminate();
      return;
    }
    this.sendNow(conn, parsed.data);
  }

  private registerMessage(d: NodeDescription): AgentMessage {
    return {
      type: 'register',
      protocolVersion: PROTOCOL_VERSION,
      nodeId: this.nodeId,
      sessionId: this.sessionId,
      agentVersion: this.opts.agentVersion,
      hostname: d.hostname,
      url: d.url,
      ...(d.grpcAddress ? { grpcAddress: d.grpcAddress } : {}),
      labels: { ...d.labels },
      gpus: this.validEntries(d.gpus, GpuInfoSchema, 'GPU'),
      models: this.validEntries(d.models, ModelInfoSchema, 'model'),
      capacity: d.capacity,
      nodeState: d.nodeState,
      capabilities: [...AGENT_CAPABILITIES],
    };
  }

  private onRegistered(conn: Connection, m: RegisteredMessage): void {
    if (conn.registered) {
      this.log.debug('duplicate registered message ignored');
      return;
    }
    conn.registered = true;
    conn.registeredAt = this.clock.now();
    this.attempt = 0; // the coordinator is reachable: the next loss starts the backoff afresh
    conn.cancelRegister?.();
    conn.cancelRegister = undefined;
    if (m.nodeId !== this.nodeId || m.sessionId !== this.sessionId) {
      this.log.warn({ nodeId: m.nodeId, sessionId: m.sessionId }, 'the coordinator acknowledged other ids than ours');
    }
    if (m.heartbeatIntervalMs !== undefined && m.heartbeatIntervalMs !== this.heartbeatMs) {
      this.heartbeatMs = m.heartbeatIntervalMs;
      this.scheduleHeartbeat();
    }
    this.state = 'connected';
    this.registrations++;
    this.lastError = undefined;
    this.dropWarned = false;
    const backlog = this.buffer.takeAll();
    this.log.info({ url: this.opts.url, nodeId: this.nodeId, sessionId: this.sessionId, backlog: backlog.length, dropped: this.buffer.dropped }, 'registered with the coordinator');
    for (const msg of backlog) this.sendNow(conn, msg);
    this.spawn(() => this.sendHeartbeat());
  }

  private onError(conn: Connection, err: Error): void {
    conn.error = err.message;
    const status = /Unexpected server response: (\d+)/.exec(err.message);
    if (status) conn.httpStatus = Number(status[1]);
    this.log.debug({ err: err.message }, 'coordinator WebSocket error');
  }

  private onClose(conn: Connection, code: number, reason: string): void {
    this.stopConnTimers(conn);
    if (conn !== this.conn) return;
    this.conn = undefined;
    if (this.closed) return;
    if (conn.registered) this.disconnectedSince = this.clock.now();
    const why = conn.httpStatus
      ? `HTTP ${conn.httpStatus} on the upgrade`
      : code === 1006
        ? conn.error ?? 'connection lost'
        : `closed with ${code}${reason ? ` '${reason}'` : ''}`;
    this.lastError = why;
    const authRefused = code === CloseCode.INVALID_TOKEN || conn.httpStatus === 401 || conn.httpStatus === 403;
    if (authRefused || REFUSAL_CLOSE_CODES.includes(code)) {
      const delay = Math.round(this.refusedRetryMs * (0.5 + 0.5 * this.rng()));
      this.state = 'refused';
      const msg = authRefused
        ? 'the coordinator refused our token; check the coordinator token'
        : code === CloseCode.UNSUPPORTED_VERSION
          ? `the coordinator does not support protocol version ${PROTOCOL_VERSION}; upgrade the agent or the coordinator`
          : `another agent registered with node id ${this.nodeId} (two agents sharing one state dir?)`;
      this.log.error({ reason: why, retryInMs: delay }, `${msg}; retrying slowly`);
      this.schedule(delay);
      return;
    }
    this.retryAfterFailure(conn.registered, why);
  }

  private retryAfterFailure(wasRegistered: boolean, why = this.lastError): void {
    const delay = reconnectDelay(this.attempt, this.clock.now() - this.disconnectedSince, this.rng, this.backoff);
    this.attempt++;
    this.state = 'backoff';
    this.log.warn(
      { reason: why, attempt: this.attempt, retryInMs: delay },
      wasRegistered ? 'lost the coordinator connection; reconnecting' : 'cannot reach the coordinator; retrying',
    );
    this.schedule(delay);
  }

  private schedule(delay: number): void {
    this.cancelRetry?.();
    this.cancelRetry = this.clock.setTimer(delay, () => this.guard(() => this.connect()));
  }

  private stopConnTimers(conn: Connection): void {
    conn.cancelPing?.();
    conn.cancelRegister?.();
    conn.cancelPing = conn.cancelRegister = undefined;
  }

  private schedulePing(conn: Connection): void {
    conn.cancelPing = this.clock.setTimer(this.pingIntervalMs, () =>
      this.guard(() => {
        if (conn !== this.conn) return;
        if (conn.awaitingPong) {
          conn.error = `no pong from the coordinator within ${this.pingIntervalMs} ms`;
          this.log.warn({ pingIntervalMs: this.pingIntervalMs }, 'the coordinator stopped answering pings; dropping the connection');
          conn.ws.terminate();
          return;
        }
        conn.awaitingPong = true;
        try {
          conn.ws.ping();
        } catch {
          // closing already; the close handler takes over
        }
        this.schedulePing(conn);
      }),
    );
  }

  // ---- messages -------------------------------------------------------------------------------

  private onMessage(conn: Connection, data: WebSocket.RawData, isBinary: boolean): void {
    if (conn !== this.conn) return;
    conn.awaitingPong = false;
    if (isBinary) {
      this.log.warn('binary frame from the coordinator ignored');
      this.sendNow(conn, { type: 'error', code: ErrorCodes.BAD_JSON, message: 'binary frames are not part of the protocol; send JSON text frames' });
      return;
    }
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8');
    const decoded = decodeCoordinatorMessage(text);
    if (!decoded.ok) {
      this.log.warn({ code: decoded.code, err: decoded.message }, 'malformed message from the coordinator');
      if (decoded.type === 'command' && decoded.id !== undefined && CommandIdSchema.safeParse(decoded.id).success) {
        // Answer the command itself, so that whoever sent it learns why at once.
        this.enqueue({ type: 'command_result', id: decoded.id, ok: false, code: CommandResultCode.INVALID_COMMAND, error: redactPaths(`refused: ${decoded.message}`).slice(0, MAX_ERROR_CHARS) });
      } else {
        this.sendNow(conn, { type: 'error', code: decoded.code, message: decoded.message.slice(0, MAX_ERROR_CHARS), ...(decoded.id && decoded.id.length <= 128 ? { ref: decoded.id } : {}) });
      }
      return;
    }
    const m = decoded.message;
    switch (m.type) {
      case 'registered':
        this.onRegistered(conn, m);
        return;
      case 'command':
        this.spawn(() => this.runCommand(m));
        return;
      case 'error':
        this.log.warn({ code: m.code, err: m.message, ref: m.ref }, 'the coordinator reported an error');
        return;
    }
  }

  private sendNow(conn: Connection, message: AgentMessage): void {
    try {
      conn.ws.send(JSON.stringify(message), (err) => {
        if (err) this.log.debug({ err: err.message, type: message.type }, 'send to the coordinator failed');
      });
    } catch (err) {
      this.log.debug({ err: messageOf(err), type: message.type }, 'send to the coordinator failed');
    }
  }

  /** Send now when registered, else keep in the drop-oldest buffer. Invalid messages are dropped with an error log. */
  private enqueue(message: AgentMessage): void {
    if (this.closed) return;
    const parsed = AgentMessageSchema.safeParse(message);
    if (!parsed.success) {
      this.log.error({ type: message.type, err: formatIssues(parsed.error) }, 'dropping an invalid outgoing message');
      return;
    }
    const conn = this.conn;
    if (conn?.registered && conn.ws.readyState === WebSocket.OPEN) {
      this.sendNow(conn, parsed.data);
      return;
    }
    if (this.buffer.push(parsed.data) !== undefined && !this.dropWarned) {
      this.dropWarned = true;
      this.log.warn({ capacity: this.buffer.capacity }, 'coordinator unreachable and the buffer is full: dropping the oldest messages');
    }
  }

  /**
   * Keep the entries that pass the schema, so that one odd model or GPU never stops the node
   * from registering; warn once per rejected entry.
   */
  private validEntries<T>(entries: readonly T[], schema: z.ZodType, what: string): T[] {
    if (!Array.isArray(entries)) return [];
    return entries.filter((e) => {
      const parsed = schema.safeParse(e);
      if (parsed.success) return true;
      const key = `${what}:${String((e as { name?: unknown }).name)}`;
      if (!this.warned.has(key)) {
        this.warned.add(key);
        this.log.warn({ [what]: (e as { name?: unknown }).name, err: formatIssues(parsed.error) }, `${what} left out of coordinator reports: it does not fit the protocol`);
      }
      return false;
    });
  }

  /** Invalid telemetry is reported as null (with one warning per kind of problem), never drops the heartbeat. */
  private validTelemetry(t: Telemetry | null | undefined): Telemetry | null {
    if (t === null || t === undefined) return null;
    const parsed = TelemetrySchema.safeParse(t);
    if (parsed.success) return parsed.data;
    const err = formatIssues(parsed.error);
    if (!this.warned.has(`telemetry:${err}`)) {
      this.warned.add(`telemetry:${err}`);
      this.log.warn({ err }, 'telemetry does not fit the protocol; heartbeats carry telemetry: null');
    }
    return null;
  }

  private scheduleHeartbeat(): void {
    this.cancelHeartbeat?.();
    this.cancelHeartbeat = this.clock.setTimer(this.heartbeatMs, () => {
      if (this.closed) return;
      this.spawn(() => this.sendHeartbeat());
      this.scheduleHeartbeat();
    });
  }

  private async sendHeartbeat(): Promise<void> {
    let h: NodeHeartbeat;
    try {
      h = await this.opts.controller.heartbeat();
      if (typeof h !== 'object' || h === null) throw new Error(`expected an object, got ${String(h)}`);
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, 'heartbeat(): the node could not report its state; heartbeat skipped');
      return;
    }
    if (this.closed) return;
    this.seq++;
    this.enqueue({
      type: 'heartbeat',
      seq: this.seq,
      at: Date.now(),
      nodeState: h.nodeState,
      telemetry: this.validTelemetry(h.telemetry),
      models: this.validEntries(h.models, ModelLoadSchema, 'model'),
    });
  }

  // ---- commands -------------------------------------------------------------------------------

  /**
   * One command: a repeated id gets the first result again (within the dedup window) or, while
   * the first is still running, no second answer; a command the node state or a running
   * command excludes is refused with its code (command-policy.ts); everything else runs
   * concurrently with other commands.
   */
  private async runCommand(m: CommandMessage): Promise<void> {
    const { id, command } = m;
    if (this.inflight.has(id)) {
      this.log.warn({ id, command: command.type }, 'command already in progress; duplicate ignored (the one result answers both)');
      return;
    }
    const seen = this.dedup.get(id);
    if (seen) {
      this.log.info({ id, command: command.type }, 'command id seen before; answering its first result again');
      this.enqueue({ type: 'command_result', id, ...seen });
      return;
    }
    const fields = { id, command: command.type, ...('model' in command ? { model: command.model } : {}) };
    const refusal = admitCommand(command, this.opts.controller.state?.() ?? 'ready', [...this.running.values()]);
    if (refusal) {
      this.log.warn({ ...fields, code: refusal.code, err: refusal.error }, 'coordinator command refused');
      this.finishCommand(id, { ok: false, code: refusal.code, error: refusal.error });
      return;
    }
    this.inflight.add(id);
    this.running.set(id, { id, command });
    this.log.info(fields, 'coordinator command');
    let result: FinishedResult = { ok: true, code: CommandResultCode.OK };
    try {
      await this.execute(command, id);
    } catch (err) {
      const code = err instanceof DrainCancelled ? CommandResultCode.CANCELLED : resultCodeOf(err);
      result = { ok: false, code, error: redactPaths(messageOf(err) || 'failed').slice(0, MAX_ERROR_CHARS) };
    } finally {
      this.inflight.delete(id);
      this.running.delete(id);
    }
    if (result.ok) this.log.info(fields, 'coordinator command done');
    else this.log.warn({ ...fields, code: result.code, err: result.error }, 'coordinator command failed');
    this.finishCommand(id, result);
  }

  private finishCommand(id: string, result: FinishedResult): void {
    this.dedup.remember(id, result);
    this.enqueue({ type: 'command_result', id, ...result });
  }

  /** Node-state commands send a heartbeat before their result, so the coordinator sees the new state first. */
  private async execute(command: Command, id: string): Promise<void> {
    const ctl = this.opts.controller;
    switch (command.type) {
      case 'load_model':
        return ctl.loadModel(command.model, command.source);
      case 'rollback_model':
        if (!ctl.rollbackModel) throw new Error('this agent cannot roll back models');
        return ctl.rollbackModel(command.model, command.version);
      case 'unload_model':
        return ctl.unloadModel(command.model);
      case 'cordon':
        await ctl.cordon();
        return this.sendHeartbeat();
      case 'uncordon':
        await ctl.uncordon();
        // A pending drain ends here: it answers cancelled, not ok (the node was never empty).
        for (const [drainId, cancel] of this.pendingDrains) cancel(new DrainCancelled(`the drain was ended by uncordon (command ${id}) before the node was empty`, drainId));
        return this.sendHeartbeat();
      case 'drain': {
        const drained = Promise.resolve(ctl.drain());
        drained.catch(noop); // awaited below; keeps an early rejection from being "unhandled"
        let cancel!: (e: DrainCancelled) => void;
        const cancelled = new Promise<never>((_, reject) => (cancel = reject));
        cancelled.catch(noop);
        this.pendingDrains.set(id, cancel);
        try {
          await this.sendHeartbeat();
          await Promise.race([drained, cancelled]);
        } finally {
          this.pendingDrains.delete(id);
        }
        return this.sendHeartbeat();
      }
      case 'ping':
        return;
      default: {
        const unknown: never = command;
        throw new Error(`unknown command '${(unknown as { type: string }).type}'`);
      }
    }
  }
}
