/**
 * The reference coordinator: accepts agents on `ws://<host>:<port>/agents`, keeps the fleet (and
 * its registry and audit trail in SQLite, audit/), and exposes it over HTTP (fastify): the admin
 * API (admin-routes.ts, the agents' token), the routing gateway for inference clients
 * (gateway/, client tokens), cost accounting (cost/) and the dashboard (dashboard/). This file
 * wires them together and owns the agent connections and commands.
 *
 * Node states (the coordinator's view, like Kubernetes' Ready condition):
 * - Ready: connected (registered) and a message (register, heartbeat, event, result) arrived
 *   within `heartbeatTimeoutMs` (default 15 s = 3 agent heartbeats).
 * - Unknown: disconnected, or connected but silent for longer than `heartbeatTimeoutMs`.
 * - Gone: nothing heard for `goneAfterMs` (default 5 min). Gone nodes stay listed until the
 *   coordinator restarts (or they register again and are Ready).
 * The agent's own `nodeState` (ready | cordoned | draining) is reported separately.
 *
 * Protocol enforcement (codes in protocol.ts CloseCode): a wrong or missing token is accepted
 * at the upgrade and closed at once with 4001 ('invalid token' / 'missing token'); the first
 * message must be a valid `register` within `registerTimeoutMs`, else an `error` message and
 * close 4002; a protocol version other than ours closes with 4003; a second connection with the
 * same node id closes the older one with 4004. After registration, a malformed, unknown or
 * invalid message is answered with an `error` message and the connection stays open.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyReply } from 'fastify';
import { registerAdminRoutes } from './admin-routes.js';
import type { CoordinatorOptions, RunningCoordinator } from './coordinator-options.js';
import { MAX_PAYLOAD, nodeDetail, nodeView, positive, restoredRecord, type AgentConn, type NodeRecord } from './node-record.js';
import { tokenMatches } from './auth.js';
import { CommandRefused, type CommandOutcome, type NodeDetail, type NodeHealth, type NodeView } from './fleet-types.js';
import { CoordinatorStore } from './audit/store.js';
import { COMPUTE_TIME_HEADER, CostLedger } from './cost/ledger.js';
import { LiveFeed } from './dashboard/live-feed.js';
import { isDashboardAsset, registerDashboard } from './dashboard/routes.js';
import { createGateway, type GatewayHooks } from './gateway/gateway.js';
import { startGrpcGateway, type GrpcGateway } from './grpc-gateway/server.js';
import { ManifestRegistry } from './manifests/registry.js';
import { registerManifestRoutes } from './manifests/routes.js';
import type { GatewayFleet, GatewayNode } from './gateway/fleet.js';
import WebSocket, { WebSocketServer } from 'ws';
import { messageOf } from '../errors.js';
import { systemClock } from '../util/clock.js';
import { createLogger } from '../util/logger.js';
import {
  AGENTS_PATH,
  CloseCode,
  CommandSchema,
  decodeAgentMessage,
  ErrorCodes,
  formatIssues,
  PROTOCOL_VERSION,
  truncateUtf8,
  type Command,
  type CoordinatorMessage,
  type EventMessage,
  type NodeState,
  type RegisterMessage,
} from './protocol.js';

export { CommandRefused, type CommandOutcome, type NodeDetail, type NodeHealth, type NodeView } from './fleet-types.js';
export type { CoordinatorOptions, RunningCoordinator } from './coordinator-options.js';



/** Start the reference coordinator; resolves once it listens. */
export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  if (typeof options.token !== 'string' || options.token.length === 0) throw new TypeError('the coordinator needs a token (agents and HTTP clients send it as a bearer token)');
  const token = options.token;
  const clock = options.clock ?? systemClock;
  const log = (options.logger ?? createLogger('info')).child({ component: 'coordinator' });
  const heartbeatTimeoutMs = positive('heartbeatTimeoutMs', options.heartbeatTimeoutMs, 15_000);
  const goneAfterMs = positive('goneAfterMs', options.goneAfterMs, 300_000);
  const commandTimeoutMs = positive('commandTimeoutMs', options.commandTimeoutMs, 60_000);
  const pingIntervalMs = positive('pingIntervalMs', options.pingIntervalMs, 15_000);
  const registerTimeoutMs = positive('registerTimeoutMs', options.registerTimeoutMs, 10_000);
  const maxEvents = Math.max(1, Math.floor(options.maxEvents ?? 100));

  const nodes = new Map<string, NodeRecord>();
  const conns = new Set<AgentConn>();
  let closed = false;
  const store = new CoordinatorStore(options.stateDir);
  const manifests = new ManifestRegistry(store, options.manifests ?? []);

  /** The agent's ready/cordoned/draining changed: keep it, and record it in the audit trail. */
  const setNodeState = (n: NodeRecord, state: NodeState, identity: string, reason: string) => {
    if (n.nodeState === state) return;
    store.append({ kind: 'node_state', at: Date.now(), nodeId: n.nodeId, identity, action: state, target: n.nodeState, result: reason });
    n.nodeState = state;
    feed.markDirty(n.nodeId);
  };
  const setHealth = (n: NodeRecord, health: NodeHealth, reason: string) => {
    if (n.health === health) return;
    store.append({ kind: 'node_health', at: Date.now(), nodeId: n.nodeId, identity: 'coordinator', action: health, target: n.health, result: reason });
    n.health = health;
    feed.markDirty(n.nodeId);
  };

  // ---- the gateway's view of the fleet ---------------------------------------------------------

  const modelListeners = new Set<(nodeId: string) => void>();
  const modelsChanged = (nodeId: string) => {
    for (const l of modelListeners) l(nodeId);
  };
  // One live adapter per node record (getters, no copy), and one list of them rebuilt only when a
  // node is added: routing reads the fleet on every request, so it must not allocate per node.
  const adapters = new WeakMap<NodeRecord, GatewayNode>();
  const gatewayNode = (n: NodeRecord): GatewayNode => {
    let a = adapters.get(n);
    if (!a) {
      a = {
        nodeId: n.nodeId,
        get url() { return n.info.url; },
        get grpcAddress() { return n.info.grpcAddress; },
        get health() { return healthOf(n); },
        get nodeState() { return n.nodeState; },
        get models() { return n.info.models; },
        get load() { return n.lastHeartbeat?.models ?? []; },
        get labels() { return n.info.labels; },
        get gpus() { return n.lastHeartbeat?.telemetry?.gpus ?? []; },
      };
      adapters.set(n, a);
    }
    return a;
  };
  let gatewayList: GatewayNode[] | undefined; // reset whenever `nodes` gains an entry
  const fleet: GatewayFleet = {
    nodes: () => (gatewayList ??= [...nodes.values()].map(gatewayNode)),
    sendCommand: (nodeId, command, opts) => sendCommand(nodeId, command, opts),
    onModelsChanged: (l) => {
      modelListeners.add(l);
      return () => modelListeners.delete(l);
    },
  };
  const ledger = new CostLedger(options.cost);
  const feed = new LiveFeed({
    nodes: () => [...nodes.values()].map(viewOf),
    node: (id) => {
      const n = nodes.get(id);
      return n && viewOf(n);
    },
    auditAfter: (id) => store.query({ afterId: id, limit: 500 }),
    latestAudit: (limit) => store.latest(limit),
    costs: () => ledger.report(),
  }, clock, options.dashboardIntervalMs ?? 500);
  const gatewayHooks: GatewayHooks = {
    admitClient: (client) => ledger.refusal(client),
    manifestOf: (model) => manifests.get(model)?.manifest,
    onRouted: (r) => {
      if (r.kind === 'metadata') return;
      const n = r.nodeId ? nodes.get(r.nodeId) : undefined;
      const us = Number(r.nodeHeaders?.[COMPUTE_TIME_HEADER] ?? 0);
      ledger.record({
        model: r.model, client: r.identity, status: r.status,
        node: n && { nodeId: n.nodeId, labels: n.info.labels, hostname: n.info.hostname },
        computeUs: Number.isFinite(us) && us > 0 ? us : 0,
        latencyMs: r.latencyMs,
      });
    },
  };
  const gateway = createGateway(fleet, token, options.gateway ?? {}, log, clock, gatewayHooks);
  let grpcDoor: GrpcGateway | undefined; // started once the HTTP port listens (--grpc-port)

  // ---- fleet state --------------------------------------------------------------------------

  const healthOf = (n: NodeRecord): NodeHealth => {
    const silent = clock.now() - n.lastSeenMono;
    if (n.conn && silent <= heartbeatTimeoutMs) return 'Ready';
    return silent < goneAfterMs ? 'Unknown' : 'Gone';
  };

  const viewOf = (n: NodeRecord): NodeView => nodeView(n, healthOf(n), gateway.routing(n.nodeId));
  const detailOf = (n: NodeRecord): NodeDetail => nodeDetail(n, healthOf(n), gateway.routing(n.nodeId));

  /** Log state transitions (states themselves are computed on read). */
  const sweepMs = Math.min(1_000, Math.max(20, heartbeatTimeoutMs / 4));
  let cancelSweep: (() => void) | undefined; // started once listening
  const sweep = () => {
    for (const n of nodes.values()) {
      const h = healthOf(n);
      if (h === n.health) continue;
      const silentMs = Math.round(clock.now() - n.lastSeenMono);
      if (h === 'Ready') log.info({ nodeId: n.nodeId }, 'node is Ready');
      else log.warn({ nodeId: n.nodeId, connected: n.conn !== undefined, silentMs }, `node is ${h}`);
      setHealth(n, h, n.conn ? `silent for ${silentMs} ms` : `disconnected, silent for ${silentMs} ms`);
      if (h !== 'Ready') store.touch(n.nodeId, n.lastSeen);
    }
    if (!closed) cancelSweep = clock.setTimer(sweepMs, sweep);
  };

  // ---- agent connections --------------------------------------------------------------------

  const send = (conn: AgentConn, message: CoordinatorMessage) => {
    try {
      conn.ws.send(JSON.stringify(message), (err) => {
        if (err) log.debug({ err: err.message, type: message.type }, 'send to agent failed');
      });
    } catch (err) {
      log.debug({ err: messageOf(err), type: message.type }, 'send to agent failed');
    }
  };

  const closeWith = (conn: AgentConn, code: number, reason: string) => {
    try {
      conn.ws.close(code, truncateUtf8(reason, 123));
    } catch {
      conn.ws.terminate();
    }
  };

  /** Explain in an `error` message, then close with 4002 (or the given code). */
  const refuse = (conn: AgentConn, code: number, errorCode: string, detail: string) => {
    log.warn({ remote: conn.remote, nodeId: conn.node?.nodeId, code, err: detail }, 'closing agent connection');
    send(conn, { type: 'error', code: errorCode, message: detail.slice(0, 4000) });
    closeWith(conn, code, code === CloseCode.PROTOCOL_ERROR ? `protocol error: ${detail}` : detail);
  };

  const stopConnTimers = (conn: AgentConn) => {
    conn.cancelPing?.();
    conn.cancelRegister?.();
    conn.cancelPing = conn.cancelRegister = undefined;
  };

  const schedulePing = (conn: AgentConn) => {
    conn.cancelPing = clock.setTimer(pingIntervalMs, () => {
      if (conn.awaitingPong) {
        log.warn({ remote: conn.remote, nodeId: conn.node?.nodeId }, 'agent stopped answering pings; terminating its connection');
        conn.ws.terminate();
        return;
      }
      conn.awaitingPong = true;
      try {
        conn.ws.ping();
      } catch {
        // closing
      }
      schedulePing(conn);
    });
  };

  const register = (conn: AgentConn, m: RegisterMessage) => {
    conn.cancelRegister?.();
    conn.cancelRegister = undefined;
    const now = Date.now();
    let node = nodes.get(m.nodeId);
    const known = node !== undefined;
    if (node?.conn && node.conn !== conn) {
      log.warn({ nodeId: m.nodeId, old: node.conn.remote, new: conn.remote }, 'a new connection registered this node id; closing the old one');
      closeWith(node.conn, CloseCode.SUPERSEDED, 'superseded by a new session');
    }
    if (!node) {
      node = {
        nodeId: m.nodeId,
        sessionId: m.sessionId,
        info: m,
        registeredAt: now,
        lastSeen: now,
        lastSeenMono: clock.now(),
        conn,
        nodeState: m.nodeState,
        heartbeats: 0,
        lastHeartbeat: undefined,
        events: [],
        pending: new Map(),
        health: 'Unknown',
      };
      nodes.set(m.nodeId, node);
      gatewayList = undefined;
    } else if (node.sessionId !== m.sessionId) {
      // A new agent process: what the old one was asked will never be answered.
      for (const [id, settle] of node.pending) settle({ id, ok: false, code: 'agent_restarted', error: 'the agent restarted (new session) before answering' });
      node.pending.clear();
      node.lastHeartbeat = undefined;
      node.heartbeats = 0;
    }
    node.sessionId = m.sessionId;
    node.info = m;
    node.registeredAt = now;
    node.lastSeen = now;
    node.lastSeenMono = clock.now();
    node.conn = conn;
    setNodeState(node, m.nodeState, 'agent', 'register');
    setHealth(node, 'Ready', known ? 're-registered' : 'registered');
    store.saveNode(m, now, now);
    conn.node = node;
    modelsChanged(node.nodeId);
    send(conn, {
      type: 'registered',
      protocolVersion: PROTOCOL_VERSION,
      nodeId: m.nodeId,
      sessionId: m.sessionId,
      ...(options.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
    });
    log.info(
      { nodeId: m.nodeId, sessionId: m.sessionId, hostname: m.hostname, url: m.url, gpus: m.gpus.length, models: m.models.length, nodeState: m.nodeState, remote: conn.remote },
      known ? 'agent re-registered' : 'agent registered',
    );
  };

  const onFirstMessage = (conn: AgentConn, text: string) => {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return refuse(conn, CloseCode.PROTOCOL_ERROR, ErrorCodes.BAD_JSON, 'the first message must be a register message (got invalid JSON)');
    }
    const obj = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    if (obj.type !== 'register') {
      return refuse(conn, CloseCode.PROTOCOL_ERROR, ErrorCodes.UNEXPECTED, `the first message must be register, got ${JSON.stringify(obj.type ?? null).slice(0, 40)}`);
    }
    if (obj.protocolVersion !== PROTOCOL_VERSION) {
      return refuse(conn, CloseCode.UNSUPPORTED_VERSION, ErrorCodes.INVALID_MESSAGE, `unsupported protocol version ${JSON.stringify(obj.protocolVersion ?? null).slice(0, 20)}; this coordinator speaks ${PROTOCOL_VERSION}`);
    }
    const d = decodeAgentMessage(text);
    if (!d.ok) return refuse(conn, CloseCode.PROTOCOL_ERROR, d.code, d.message);
    register(conn, d.message as RegisterMessage);
  };

  const onEvent = (node: NodeRecord, m: EventMessage) => {
    node.events.push({ receivedAt: Date.now(), message: m });
    if (node.events.length > maxEvents) node.events.splice(0, node.events.length - maxEvents);
    const e = m.event;
    switch (e.kind) {
      case 'model_state': {
        const models = [...node.info.models];
        const i = models.findIndex((x) => x.name === e.model && (e.version === undefined || x.version === undefined || x.version === e.version));
        const entry = { name: e.model, version: e.version ?? models[i]?.version, state: e.state, reason: e.reason, provider: e.provider ?? models[i]?.provider, progress: e.progress, provenance: e.provenance ?? models[i]?.provenance };
        const clean = Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)) as unknown as (typeof models)[number];
        const stateChanged = models[i]?.state !== e.state;
        if (i >= 0) models[i] = clean;
        else models.push(clean);
        node.info = { ...node.info, models };
        modelsChanged(node.nodeId);
        // Download progress arrives a few times a second: log state changes only.
        if (stateChanged || !e.progress) log.info({ nodeId: node.nodeId, model: e.model, version: e.version, state: e.state, reason: e.reason }, 'model state');
        break;
      }
      case 'node_state':
        setNodeState(node, e.state, 'agent', `node_state event${e.reason ? `: ${e.reason}` : ''}`);
        log.info({ nodeId: node.nodeId, nodeState: e.state, reason: e.reason }, 'node state');
        break;
      case 'model_load_failed':
      case 'gpu_error':
        log.warn({ nodeId: node.nodeId, event: e }, e.kind === 'gpu_error' ? 'GPU error reported' : 'model load failed');
        break;
    }
  };

  const onMessage = (conn: AgentConn, data: WebSocket.RawData, isBinary: boolean) => {
    conn.awaitingPong = false;
    if (isBinary) {
      if (!conn.node) return refuse(conn, CloseCode.PROTOCOL_ERROR, ErrorCodes.BAD_JSON, 'the first message must be a register JSON text frame (got a binary frame)');
      send(conn, { type: 'error', code: ErrorCodes.BAD_JSON, message: 'binary frames are not part of the protocol; send JSON text frames' });
      return;
    }
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8');
    if (!conn.node) return onFirstMessage(conn, text);
    const node = conn.node;
    if (node.conn !== conn) return; // superseded; closing
    node.lastSeen = Date.now();
    node.lastSeenMono = clock.now();
    feed.markDirty(node.nodeId);
    const d = decodeAgentMessage(text);
    if (!d.ok) {
      log.warn({ nodeId: node.nodeId, code: d.code, err: d.message }, 'malformed message from agent');
      send(conn, { type: 'error', code: d.code, message: d.message.slice(0, 4000), ...(d.id && d.id.length <= 128 ? { ref: d.id } : {}) });
      return;
    }
    const m = d.message;
    switch (m.type) {
      case 'register':
        send(conn, { type: 'error', code: ErrorCodes.UNEXPECTED, message: 'already registered on this connection; reconnect to register again' });
        return;
      case 'heartbeat':
        node.heartbeats++;
        if (!node.lastHeartbeat || m.seq > node.lastHeartbeat.seq) {
          node.lastHeartbeat = { ...m, receivedAt: node.lastSeen };
          setNodeState(node, m.nodeState, 'agent', 'heartbeat');
        } else {
          log.debug({ nodeId: node.nodeId, seq: m.seq, last: node.lastHeartbeat.seq }, 'out-of-order heartbeat kept out of the node view');
        }
        return;
      case 'event':
        onEvent(node, m);
        return;
      case 'command_result': {
        const settle = node.pending.get(m.id);
        if (!settle) {
          log.debug({ nodeId: node.nodeId, id: m.id }, 'result for an unknown or timed-out command');
          return;
        }
        node.pending.delete(m.id);
        settle(m.ok ? { id: m.id, ok: true, code: m.code ?? 'ok' } : { id: m.id, ok: false, code: m.code ?? 'failed', error: m.error ?? 'failed' });
        return;
      }
      case 'error':
        log.warn({ nodeId: node.nodeId, code: m.code, err: m.message, ref: m.ref }, 'agent reported an error');
        return;
    }
  };

  const onConnection = (ws: WebSocket, req: IncomingMessage) => {
    let markClosed!: () => void;
    const conn: AgentConn = {
      ws,
      remote: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`,
      node: undefined,
      awaitingPong: false,
      cancelPing: undefined,
      cancelRegister: undefined,
      closed: new Promise<void>((resolve) => (markClosed = resolve)),
    };
    conns.add(conn);
    ws.on('error', (err) => log.debug({ remote: conn.remote, err: err.message }, 'agent WebSocket error'));
    ws.on('close', (code, reason) => {
      conns.delete(conn);
      stopConnTimers(conn);
      markClosed();
      const node = conn.node;
      if (node && node.conn === conn) {
        node.conn = undefined;
        feed.markDirty(node.nodeId);
        log.info({ nodeId: node.nodeId, code, reason: reason.toString('utf8') }, 'agent disconnected');
      }
    });
    if (closed) return closeWith(conn, CloseCode.GOING_AWAY, 'coordinator shutting down');
    if (!tokenMatches(req.headers.authorization, token)) {
      const reason = req.headers.authorization ? 'invalid token' : 'missing token';
      log.warn({ remote: conn.remote }, `agent refused: ${reason}`);
      return closeWith(conn, CloseCode.INVALID_TOKEN, reason);
    }
    ws.on('message', (data, isBinary) => {
      try {
        onMessage(conn, data, isBinary);
      } catch (err) {
        log.error({ err: messageOf(err) }, 'coordinator: unexpected error handling an agent message');
      }
    });
    ws.on('pong', () => {
      conn.awaitingPong = false;
    });
    schedulePing(conn);
    conn.cancelRegister = clock.setTimer(registerTimeoutMs, () => {
      if (!conn.node) refuse(conn, CloseCode.PROTOCOL_ERROR, ErrorCodes.UNEXPECTED, `no register message within ${registerTimeoutMs} ms`);
    });
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: false });

  // ---- commands -----------------------------------------------------------------------------

  /** What an ok cordon/uncordon/drain means for routing at once (the heartbeat confirms it later). */
  const STATE_AFTER: Partial<Record<Command['type'], NodeState>> = { cordon: 'cordoned', uncordon: 'ready', drain: 'draining' };

  const sendCommand = (nodeId: string, command: Command, opts: { timeoutMs?: number; identity?: string } = {}): Promise<CommandOutcome> => {
    const identity = opts.identity ?? 'api';
    const startedAt = Date.now();
    const startedMono = clock.now();
    const audit = (action: string, target: string | undefined, result: string, error?: string, id?: string) =>
      store.append({ kind: 'command', at: startedAt, nodeId, identity, action, target, result, error, durationMs: clock.now() - startedMono, commandId: id });
    const parsed = CommandSchema.safeParse(command);
    if (!parsed.success) return Promise.reject(new CommandRefused(400, `invalid command: ${formatIssues(parsed.error)}`));
    const what = parsed.data.type;
    const model = 'model' in parsed.data ? parsed.data.model : undefined;
    const node = nodes.get(nodeId);
    if (!node) {
      audit(what, model, 'refused', 'unknown node');
      return Promise.reject(new CommandRefused(404, `unknown node '${nodeId}'`));
    }
    const conn = node.conn;
    if (!conn || closed) {
      audit(what, model, 'refused', `not connected (state ${healthOf(node)})`);
      return Promise.reject(new CommandRefused(409, `node '${nodeId}' is not connected (state ${healthOf(node)}); commands need a connected agent`));
    }
    const timeoutMs = opts.timeoutMs ?? commandTimeoutMs;
    const id = randomUUID();
    return new Promise<CommandOutcome>((resolve) => {
      const cancel = clock.setTimer(timeoutMs, () => {
        node.pending.delete(id);
        log.warn({ nodeId, id, command: what, timeoutMs }, 'command timed out');
        audit(what, model, 'timed_out', `no result within ${timeoutMs} ms`, id);
        resolve({ id, ok: false, code: 'timeout', error: `no result from the agent within ${timeoutMs} ms`, timedOut: true });
      });
      const after = STATE_AFTER[what];
      // A cordon or drain takes the node out of routing as soon as it is sent, not at the next heartbeat.
      if (after && after !== 'ready') setNodeState(node, after, identity, `${what} sent`);
      node.pending.set(id, (outcome) => {
        cancel();
        audit(what, model, outcome.ok ? 'ok' : outcome.code ?? 'failed', outcome.error, id);
        if (outcome.ok && after) setNodeState(node, after, identity, `${what} ok`);
        resolve(outcome);
      });
      log.info({ nodeId, id, command: parsed.data }, 'sending command');
      send(conn, { type: 'command', id, command: parsed.data });
    });
  };

  // ---- HTTP API -----------------------------------------------------------------------------

  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      pathname = '';
    }
    if (pathname !== AGENTS_PATH) {
      socket.end(`HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nagents connect to ${AGENTS_PATH}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });

  const unauthorized = (reply: FastifyReply) =>
    reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or invalid bearer token (Authorization: Bearer <token>)' });

  app.addHook('onRequest', async (req, reply) => {
    if (req.url === '/healthz' || isDashboardAsset(req.url)) return;
    // The gateway's inference routes check client tokens themselves (the admin token is refused there).
    if (req.url.startsWith('/v2/') || req.url === '/v2' || req.url.startsWith('/v1/')) return;
    if (!tokenMatches(req.headers.authorization, token)) return unauthorized(reply);
  });

  app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status === 500) log.error({ err: err.message }, 'coordinator HTTP error');
    return reply.code(status).send({ error: err.message ?? 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));

  app.get('/costs', async () => ledger.report());
  app.get('/costs.csv', async (_req, reply) => reply.type('text/csv; charset=utf-8').send(ledger.csv()));
  app.get('/metrics', async (_req, reply) => reply.type(ledger.registry.contentType).send(await ledger.registry.metrics()));
  registerAdminRoutes(app, {
    audit: (filter) => store.query(filter),
    nodes: () => [...nodes.values()].map(viewOf),
    node: (id) => {
      const n = nodes.get(id);
      return n && detailOf(n);
    },
    sendCommand,
  });
  registerManifestRoutes(app, manifests);
  await gateway.register(app);
  await registerDashboard(app, feed);

  // The registry of the previous run: every node is listed at once, Unknown until it reconnects.
  for (const stored of store.loadNodes()) {
    const silentMs = Math.max(0, Date.now() - stored.lastSeen);
    gatewayList = undefined;
    nodes.set(stored.info.nodeId, restoredRecord(stored, clock.now() - silentMs, silentMs < goneAfterMs ? 'Unknown' : 'Gone'));
  }
  if (nodes.size) log.info({ nodes: nodes.size, file: store.file }, 'node registry restored; nodes are Unknown until they reconnect');

  let address: string;
  try {
    address = await app.listen({ port: options.port ?? 9000, host: options.host ?? '127.0.0.1' });
  } catch (err) {
    wss.close();
    await app.close().catch(() => undefined);
    store.close();
    throw err;
  }
  if (options.grpcPort !== undefined) {
    try {
      grpcDoor = await startGrpcGateway(gateway, fleet, options.gateway ?? {}, gatewayHooks, log, clock, { host: options.host ?? '127.0.0.1', port: options.grpcPort });
    } catch (err) {
      wss.close();
      await app.close().catch(() => undefined);
      await gateway.close();
      store.close();
      throw err;
    }
  }
  cancelSweep = clock.setTimer(sweepMs, sweep);
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port ?? 9000;
  const agentsUrl = `${address.replace(/^http/, 'ws')}${AGENTS_PATH}`;
  log.info({ url: address, agentsUrl }, 'coordinator listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      cancelSweep?.();
      feed.close();
      for (const node of nodes.values()) {
        for (const [id, settle] of node.pending) settle({ id, ok: false, code: 'coordinator_shutting_down', error: 'the coordinator is shutting down' });
        node.pending.clear();
      }
      const open = [...conns];
      for (const conn of open) {
        stopConnTimers(conn);
        closeWith(conn, CloseCode.GOING_AWAY, 'coordinator shutting down');
      }
      await Promise.race([Promise.all(open.map((c) => c.closed)), new Promise<void>((r) => clock.setTimer(1_000, r))]);
      for (const conn of conns) conn.ws.terminate();
      wss.close();
      await grpcDoor?.close();
      await app.close();
      await gateway.close();
      store.close();
      log.info('coordinator closed');
    })();
    return closing;
  };

  return {
    url: address,
    agentsUrl,
    port,
    ...(grpcDoor ? { grpcAddress: grpcDoor.address } : {}),
    nodes: () => [...nodes.values()].map(viewOf),
    node: (id) => {
      const n = nodes.get(id);
      return n && detailOf(n);
    },
    audit: (filter) => store.query(filter),
    costs: () => ledger.report(),
    sendCommand,
    close,
  };
}
