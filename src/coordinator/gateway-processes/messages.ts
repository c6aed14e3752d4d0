/**
 * IPC between the coordinator (the primary: registry, agent sockets, costs, audit) and its
 * gateway processes (--gateway-processes N): each process serves the gateway's routes on the
 * gateway port with its own router, fed from the primary. Plain JSON over the child_process
 * channel. Types only: a gateway process loads no SQLite and no agent sockets.
 */
import type { Manifest } from '../../sources/manifest.js';
import type { CommandOutcome } from '../fleet-types.js';
import type { GatewayNode } from '../gateway/fleet.js';
import type { GatewayOptions, RoutedRequest } from '../gateway/gateway.js';
import type { Command } from '../protocol.js';

/** The gateway settings a process needs (GatewayOptions without its injected rng). */
export type WireGatewayOptions = Omit<GatewayOptions, 'rng'>;

export type ToGatewayProcess =
  | { readonly t: 'init'; readonly adminToken: string; readonly options: WireGatewayOptions; readonly logLevel: string }
  /** A connection accepted by the primary; the socket travels as the message's handle. */
  | { readonly t: 'socket' }
  /**
   * Nodes that changed since the last message (whole, as the gateway sees them; the registry
   * never drops a node). `modelsChanged`: some node's model list changed, so per-model routing
   * lists are rebuilt.
   */
  | { readonly t: 'nodes'; readonly upsert: readonly GatewayNode[]; readonly modelsChanged: boolean }
  /** Clients whose budget is spent → the 429 reason; every other client is admitted. */
  | { readonly t: 'refusals'; readonly byClient: Readonly<Record<string, string>> }
  | { readonly t: 'manifests'; readonly byModel: Readonly<Record<string, Manifest>> }
  | { readonly t: 'command_result'; readonly id: number; readonly outcome: CommandOutcome };

/** One answered request, as the primary's cost accounting needs it: the node's headers reduced to its compute time (µs). */
export type WireRouted = Omit<RoutedRequest, 'nodeHeaders'> & { readonly computeUs: string | undefined };

export type FromGatewayProcess =
  | { readonly t: 'ready' }
  | { readonly t: 'routed'; readonly batch: readonly WireRouted[] }
  | { readonly t: 'command'; readonly id: number; readonly nodeId: string; readonly command: Command; readonly options?: { readonly timeoutMs?: number; readonly identity?: string } };
