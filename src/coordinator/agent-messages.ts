/**
 * What the coordinator does with each message an agent sends on its connection: the first must
 * be a valid `register` (else an `error` message and close 4002; a protocol version other than
 * ours closes with 4003; a second connection with the same node id closes the older one with
 * 4004). After registration, heartbeats, events and command results update the node record; a
 * malformed, unknown or invalid message is answered with an `error` message and the
 * connection stays open.
 */
import type WebSocket from 'ws';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { closeConn, refuseConn, sendTo } from './agent-wire.js';
import type { CoordinatorStore } from './audit/store.js';
import type { FleetState } from './fleet-state.js';
import type { AgentConn, NodeRecord } from './node-record.js';
import {
  CloseCode, decodeAgentMessage, ErrorCodes, PROTOCOL_VERSION,
  type EventMessage, type RegisterMessage,
} from './protocol.js';

export interface AgentMessageDeps {
  readonly fleet: FleetState;
  readonly store: CoordinatorStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** Recent events kept per node. */
  readonly maxEvents: number;
  /** When set, sent in `registered`. */
  readonly heartbeatIntervalMs: number | undefined;
}

/** The handler of every frame an agent sends (the connection's `message` event). */
export function createAgentMessageHandler(deps: AgentMessageDeps): (conn: AgentConn, data: WebSocket.RawData, isBinary: boolean) => void {
  const { fleet, store, clock, log } = deps;
  const send = (conn: AgentConn, m: Parameters<typeof sendTo>[1]) => sendTo(conn, m, log);
  const refuse = (conn: AgentConn, code: number, errorCode: string, detail: string) => refuseConn(conn, code, errorCode, detail, log);

  const register = (conn: AgentConn, m: RegisterMessage) => {
    conn.cancelRegister?.();
    conn.cancelRegister = undefined;
    const now = Date.now();
    let node = fleet.nodes.get(m.nodeId);
    const known = node !== undefined;
    if (node?.conn && node.conn !== conn) {
      log.warn({ nodeId: m.nodeId, old: node.conn.remote, new: conn.remote }, 'a new connection registered this node id; closing the old one');
      closeConn(node.conn, CloseCode.SUPERSEDED, 'superseded by a new session');
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
      fleet.add(node);
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
    fleet.setNodeState(node, m.nodeState, 'agent', 'register');
    fleet.setHealth(node, 'Ready', known ? 're-registered' : 'registered');
    store.saveNode(m, now, now);
    conn.node = node;
    fleet.modelsChanged(node.nodeId);
    send(conn, {
      type: 'registered',
      protocolVersion: PROTOCOL_VERSION,
      nodeId: m.nodeId,
      sessionId: m.sessionId,
      ...(deps.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: deps.heartbeatIntervalMs } : {}),
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
    if (node.events.length > deps.maxEvents) node.events.splice(0, node.events.length - deps.maxEvents);
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
        fleet.modelsChanged(node.nodeId);
        // Download progress arrives a few times a second: log state changes only.
        if (stateChanged || !e.progress) log.info({ nodeId: node.nodeId, model: e.model, version: e.version, state: e.state, reason: e.reason }, 'model state');
        break;
      }
      case 'node_state':
        fleet.setNodeState(node, e.state, 'agent', `node_state event${e.reason ? `: ${e.reason}` : ''}`);
        log.info({ nodeId: node.nodeId, nodeState: e.state, reason: e.reason }, 'node state');
        break;
      case 'model_load_failed':
      case 'gpu_error':
        log.warn({ nodeId: node.nodeId, event: e }, e.kind === 'gpu_error' ? 'GPU error reported' : 'model load failed');
        break;
    }
  };

  return (conn: AgentConn, data: WebSocket.RawData, isBinary: boolean) => {
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
    fleet.onDirty(node.nodeId);
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
          fleet.setNodeState(node, m.nodeState, 'agent', 'heartbeat');
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
}
