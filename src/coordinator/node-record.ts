/**
 * A node as the reference coordinator keeps it (NodeRecord), one agent connection (AgentConn),
 * and the views GET /nodes shows of them.
 */
import type WebSocket from 'ws';
import type { StoredNode } from './audit/store.js';
import type { CommandOutcome, NodeDetail, NodeHealth, NodeView } from './fleet-types.js';
import type { RoutingView } from './gateway/router.js';
import type { EventMessage, HeartbeatMessage, NodeState, RegisterMessage } from './protocol.js';

export interface AgentConn {
  readonly ws: WebSocket;
  readonly remote: string;
  node: NodeRecord | undefined;
  awaitingPong: boolean;
  cancelPing: (() => void) | undefined;
  cancelRegister: (() => void) | undefined;
  readonly closed: Promise<void>;
}

export interface NodeRecord {
  readonly nodeId: string;
  sessionId: string;
  info: RegisterMessage;
  registeredAt: number;
  lastSeen: number;
  lastSeenMono: number;
  conn: AgentConn | undefined;
  nodeState: NodeState;
  heartbeats: number;
  lastHeartbeat: (HeartbeatMessage & { receivedAt: number }) | undefined;
  readonly events: { receivedAt: number; message: EventMessage }[];
  readonly pending: Map<string, (outcome: CommandOutcome) => void>;
  health: NodeHealth;
}

/** Largest frame the reference coordinator accepts from an agent. */
export const MAX_PAYLOAD = 4 * 1024 * 1024;

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function positive(name: string, v: number | undefined, fallback: number): number {
  const value = v ?? fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}


/** The view of a node for GET /nodes (health and routing are computed by the caller). */
export function nodeView(n: NodeRecord, health: NodeHealth, routing: RoutingView): NodeView {
  return {
    nodeId: n.nodeId,
    sessionId: n.sessionId,
    state: health,
    nodeState: n.nodeState,
    connected: n.conn !== undefined,
    hostname: n.info.hostname,
    url: n.info.url,
    ...(n.info.grpcAddress ? { grpcAddress: n.info.grpcAddress } : {}),
    agentVersion: n.info.agentVersion,
    protocolVersion: n.info.protocolVersion,
    labels: n.info.labels,
    gpus: n.info.gpus,
    models: n.info.models,
    capacity: n.info.capacity,
    registeredAt: iso(n.registeredAt),
    lastSeen: iso(n.lastSeen),
    heartbeats: n.heartbeats,
    lastHeartbeat: n.lastHeartbeat ? { ...n.lastHeartbeat, receivedAt: iso(n.lastHeartbeat.receivedAt) } : null,
    routing,
  };
}

/** GET /nodes/{id}: the view plus recent events. */
export function nodeDetail(n: NodeRecord, health: NodeHealth, routing: RoutingView): NodeDetail {
  return {
    ...nodeView(n, health, routing),
    events: n.events.map((e) => ({ receivedAt: iso(e.receivedAt), at: iso(e.message.at), event: e.message.event })),
  };
}

/** A node of the previous run's registry: not connected until its agent registers again. */
export function restoredRecord(stored: StoredNode, lastSeenMono: number, health: NodeHealth): NodeRecord {
  return {
    nodeId: stored.info.nodeId,
    sessionId: stored.info.sessionId,
    info: stored.info,
    registeredAt: stored.registeredAt,
    lastSeen: stored.lastSeen,
    lastSeenMono,
    conn: undefined,
    nodeState: stored.info.nodeState,
    heartbeats: 0,
    lastHeartbeat: undefined,
    events: [],
    pending: new Map(),
    health,
  };
}
