/**
 * What the gateway needs from the coordinator's fleet, as an interface: the gateway never
 * touches agent connections, only this view (so it is tested against a real coordinator, and
 * the coordinator's registry can change without the gateway noticing).
 */
import type { CommandOutcome, NodeHealth } from '../fleet-types.js';
import type { Command, GpuSample, ModelInfo, ModelLoad, NodeState } from '../protocol.js';

export interface GatewayNode {
  readonly nodeId: string;
  /** The agent's advertised HTTP base URL. */
  readonly url: string;
  /** The agent's advertised gRPC host:port (register.grpcAddress); undefined when it has no gRPC. */
  readonly grpcAddress: string | undefined;
  readonly health: NodeHealth;
  readonly nodeState: NodeState;
  readonly models: readonly ModelInfo[];
  /** Per-model load from the latest heartbeat (empty before the first). */
  readonly load: readonly ModelLoad[];
  readonly labels: Readonly<Record<string, string>>;
  /** GPU samples of the latest heartbeat (empty before the first, and on CPU nodes). */
  readonly gpus: readonly GpuSample[];
}

export interface GatewayFleet {
  /** Every node the coordinator knows, in registration order. */
  nodes(): readonly GatewayNode[];
  sendCommand(nodeId: string, command: Command, options?: { timeoutMs?: number; identity?: string }): Promise<CommandOutcome>;
  /** Called on every model_state event (and on register); returns an unsubscribe function. */
  onModelsChanged(listener: (nodeId: string) => void): () => void;
}
