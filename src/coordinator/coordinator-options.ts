/** The reference coordinator's options and its running handle. */
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { AuditRow } from './audit/store.js';
import type { CostOptions, CostReport } from './cost/ledger.js';
import type { CommandOutcome, NodeDetail, NodeView } from './fleet-types.js';
import type { GatewayOptions } from './gateway/gateway.js';
import type { Command } from './protocol.js';
import type { Manifest } from '../sources/manifest.js';

export interface CoordinatorOptions {
  /** Default 9000 (0 = any free port). */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /**
   * Port of the gateway's gRPC front door (Triton's GRPCInferenceService, routed to the nodes'
   * gRPC ports); 0 = any free port. Without it there is no gRPC door.
   */
  readonly grpcPort?: number;
  /** Bearer token agents and HTTP clients must present (required). */
  readonly token: string;
  /** Silence after which a node is Unknown. Default 15000 (3 × the agent's 5 s heartbeat). */
  readonly heartbeatTimeoutMs?: number;
  /** Silence after which a node is Gone. Default 300000. */
  readonly goneAfterMs?: number;
  /** Default wait for a command's result (POST …/commands?timeoutMs= overrides it). Default 60000. */
  readonly commandTimeoutMs?: number;
  /** WebSocket ping interval and pong deadline per agent. Default 15000. */
  readonly pingIntervalMs?: number;
  /** Time an agent has to send `register` after connecting. Default 10000. */
  readonly registerTimeoutMs?: number;
  /** When set, sent in `registered`: the agents then heartbeat at this interval. */
  readonly heartbeatIntervalMs?: number;
  /** Recent events kept per node. Default 100. */
  readonly maxEvents?: number;
  /**
   * Folder of the SQLite file (coordinator.db) holding the audit trail and node registry; it
   * survives restarts. Without it both live in memory.
   */
  readonly stateDir?: string;
  /** Prices per node / GPU type and budgets per client token (cost accounting). */
  readonly cost?: CostOptions;
  /** How often the dashboard's live stream sends the changes, ms. Default 500. */
  readonly dashboardIntervalMs?: number;
  /**
   * Model manifests for load on demand (pull by URI when no node has the model), e.g. from
   * `--manifests FILE`; applied at start over the stored ones (manifests/registry.ts).
   */
  readonly manifests?: readonly Manifest[];
  /** The routing gateway's settings (client tokens, deadlines, retry buffer, breaker). */
  readonly gateway?: GatewayOptions;
  /**
   * The gateway also served by `count` processes of its own on `port` (0 = any free port), so
   * routing is not bound to the coordinator's one event loop (gateway-processes/). The main
   * port keeps its in-process gateway. `logLevel` of those processes: default 'info'.
   */
  readonly gatewayProcesses?: { readonly count: number; readonly port: number; readonly logLevel?: string };
  readonly logger?: Logger;
  readonly clock?: Clock;
}

export interface RunningCoordinator {
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:9000. */
  readonly url: string;
  /** Where agents connect, e.g. ws://127.0.0.1:9000/agents. */
  readonly agentsUrl: string;
  readonly port: number;
  /** host:port of the gRPC front door, when grpcPort was given. */
  readonly grpcAddress?: string;
  /** Base URL of the gateway processes' port, when gatewayProcesses was given. */
  readonly gatewayUrl?: string;
  /** PIDs of the running gateway processes (empty without gatewayProcesses). */
  gatewayProcessPids(): number[];
  nodes(): NodeView[];
  node(nodeId: string): NodeDetail | undefined;
  /** Cost per model, node and client token so far. */
  costs(): CostReport;
  /** The audit trail, oldest first (`since`: epoch ms). */
  audit(filter?: { nodeId?: string; since?: number; limit?: number }): AuditRow[];
  /** Send a command and wait for its result; throws CommandRefused when it cannot be sent. */
  sendCommand(nodeId: string, command: Command, options?: { timeoutMs?: number; identity?: string }): Promise<CommandOutcome>;
  /** Close every agent connection (1001), stop listening. */
  close(): Promise<void>;
}
