/**
 * The reference coordinator's public types: a node as the HTTP API shows it, the outcome of a
 * command, and the error for a command that could not be sent.
 */
import type { RoutingView } from './gateway/router.js';
import type { AgentEvent, HeartbeatMessage, NodeState, RegisterMessage } from './protocol.js';

export type NodeHealth = 'Ready' | 'Unknown' | 'Gone';

/** A node as GET /nodes shows it. Times are ISO 8601 strings. */
export interface NodeView {
  readonly nodeId: string;
  readonly sessionId: string;
  readonly state: NodeHealth;
  /** As the agent last reported it (or as the last ok cordon/uncordon/drain set it). */
  readonly nodeState: NodeState;
  readonly connected: boolean;
  readonly hostname: string;
  readonly url: string;
  /** The agent's advertised gRPC host:port, when it serves gRPC (the gateway's gRPC door routes there). */
  readonly grpcAddress?: string;
  readonly agentVersion: string;
  readonly protocolVersion: number;
  readonly labels: Record<string, string>;
  readonly gpus: RegisterMessage['gpus'];
  /** From register, updated by model_state events. */
  readonly models: RegisterMessage['models'];
  readonly capacity: RegisterMessage['capacity'];
  readonly registeredAt: string;
  readonly lastSeen: string;
  readonly heartbeats: number;
  readonly lastHeartbeat: (HeartbeatMessage & { receivedAt: string }) | null;
  /** The gateway's view: requests outstanding on the node and its circuit breaker. */
  readonly routing: RoutingView;
}

/** GET /nodes/{id}: the view plus recent events, oldest first. */
export interface NodeDetail extends NodeView {
  readonly events: { receivedAt: string; at: string; event: AgentEvent }[];
}

export interface CommandOutcome {
  readonly id: string;
  readonly ok: boolean;
  /** The agent's result code (ok, not_found, conflict, …), or the coordinator's: timeout, agent_restarted, coordinator_shutting_down. */
  readonly code?: string;
  readonly error?: string;
  /** No result arrived in time (HTTP 504). */
  readonly timedOut?: boolean;
}

/** A command that could not be sent: `status` is the HTTP status to answer. */
export class CommandRefused extends Error {
  constructor(readonly status: 400 | 404 | 409, message: string) {
    super(message);
    this.name = 'CommandRefused';
  }
}
