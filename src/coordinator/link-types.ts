/**
 * The link's contracts with the agent: what the agent describes about its node, what each
 * heartbeat carries, the controller that runs commands, and the link's options (with
 * {@link resolveLinkOptions}, which checks them and applies their defaults) and status.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { Manifest } from '../sources/manifest.js';
import { DEFAULT_BACKOFF, type BackoffSettings } from './link-backoff.js';
import { ID_PATTERN, type Capacity, type GpuInfo, type ModelInfo, type ModelLoad, type NodeState, type Telemetry } from './protocol.js';

/** What `register` says about the node (the link adds ids, versions and the protocol version). */
export interface NodeDescription {
  readonly hostname: string;
  /** Advertised base URL of the agent's HTTP API. */
  readonly url: string;
  /** Advertised host:port of the agent's gRPC API, when it has one. */
  readonly grpcAddress?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly gpus: readonly GpuInfo[];
  /** Every model of the repository with its state (models with names that are not valid model names are left out, with a warning). */
  readonly models: readonly ModelInfo[];
  readonly capacity: Capacity;
  readonly nodeState: NodeState;
}

/** What each heartbeat carries (the link adds `seq` and `at`). */
export interface NodeHeartbeat {
  readonly nodeState: NodeState;
  readonly telemetry: Telemetry | null;
  readonly models: readonly ModelLoad[];
}

/**
 * The agent as the link sees it. Methods may throw or reject: the error message becomes the
 * command's `error`. Model names reaching `loadModel`/`unloadModel` already match
 * MODEL_NAME_PATTERN (never a path); the controller still decides whether the repository has it.
 */
export interface NodeController {
  describe(): NodeDescription | Promise<NodeDescription>;
  heartbeat(): NodeHeartbeat | Promise<NodeHeartbeat>;
  /** Resolves when the model is READY. */
  loadModel(name: string, source?: Manifest): Promise<void>;
  /** Resolves when the earlier pulled version is READY again (from the cache only). */
  rollbackModel?(name: string, version?: number): Promise<void>;
  /** Resolves when the model is unloaded (its queued and running requests finished). */
  unloadModel(name: string): Promise<void>;
  /** Stop taking new work; the next heartbeat reports 'cordoned'. */
  cordon(): void | Promise<void>;
  /** The node's state now (for the command table); without it the link assumes 'ready'. */
  state?(): NodeState;
  /** Take new work again (also ends a drain); the next heartbeat reports 'ready'. */
  uncordon(): void | Promise<void>;
  /**
   * Stop taking new work at once (node state 'draining' before this returns its promise), and
   * resolve once everything queued and running has finished.
   */
  drain(): Promise<void>;
}

export type LinkState = 'idle' | 'connecting' | 'registering' | 'connected' | 'backoff' | 'refused' | 'closed';

export interface LinkStatus {
  readonly state: LinkState;
  readonly nodeId: string;
  readonly sessionId: string;
  /** Registered and open. */
  readonly connected: boolean;
  /** Connection attempts since start. */
  readonly connectAttempts: number;
  /** Successful registrations since start. */
  readonly registrations: number;
  /** Consecutive failures feeding the backoff. */
  readonly attempt: number;
  readonly buffered: number;
  readonly dropped: number;
  readonly heartbeatSeq: number;
  readonly heartbeatIntervalMs: number;
  readonly lastError: string | undefined;
}

export interface CoordinatorLinkOptions {
  /** `ws://host:port/agents` or `wss://…`. */
  readonly url: string;
  /** Bearer token sent in the upgrade request (never logged). */
  readonly token: string;
  /** Persistent node id (see loadOrCreateNodeId). */
  readonly nodeId: string;
  /** New per process; default: a random UUID per link. */
  readonly sessionId?: string;
  readonly agentVersion: string;
  readonly controller: NodeController;
  readonly logger: Logger;
  /** Default 5000; the coordinator's `registered.heartbeatIntervalMs` overrides it. */
  readonly heartbeatIntervalMs?: number;
  /** Default {@link DEFAULT_BACKOFF}. */
  readonly backoff?: Partial<BackoffSettings>;
  /** Retry interval after a refusal (bad token, unsupported version, superseded). Default 60000. */
  readonly refusedRetryMs?: number;
  /** WebSocket ping interval, and the deadline for its pong. Default 15000. */
  readonly pingIntervalMs?: number;
  /** Deadline for the upgrade and for the `registered` ack. Default 10000. */
  readonly registerTimeoutMs?: number;
  /** Messages kept while disconnected (drop-oldest). Default 500. */
  readonly bufferSize?: number;
  /** Largest incoming frame. Default 1 MiB. */
  readonly maxPayloadBytes?: number;
  /** Injected for tests; default ws's WebSocket. */
  readonly WebSocket?: typeof WebSocket;
  /** Injected for tests; default Math.random. */
  readonly rng?: () => number;
  /** Timers and monotonic time; default the system clock. */
  readonly clock?: Clock;
}

/** The options with every default applied. */
export interface ResolvedLinkOptions extends CoordinatorLinkOptions {
  readonly sessionId: string;
  readonly heartbeatIntervalMs: number;
  readonly backoff: BackoffSettings;
  readonly refusedRetryMs: number;
  readonly pingIntervalMs: number;
  readonly registerTimeoutMs: number;
  readonly bufferSize: number;
  readonly maxPayloadBytes: number;
  readonly WebSocket: typeof WebSocket;
  readonly rng: () => number;
  readonly clock: Clock;
}

/**
 * Check `opts` and apply the defaults documented above. Throws a TypeError (a configuration
 * error, at startup) only for a URL that is not ws:/wss:, an empty token, or an invalid node or
 * session id; a missing session id becomes a random UUID.
 */
export function resolveLinkOptions(opts: CoordinatorLinkOptions): ResolvedLinkOptions {
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
  return {
    ...opts,
    sessionId,
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 5_000,
    backoff: { ...DEFAULT_BACKOFF, ...opts.backoff },
    refusedRetryMs: opts.refusedRetryMs ?? 60_000,
    pingIntervalMs: opts.pingIntervalMs ?? 15_000,
    registerTimeoutMs: opts.registerTimeoutMs ?? 10_000,
    bufferSize: opts.bufferSize ?? 500,
    maxPayloadBytes: opts.maxPayloadBytes ?? 1024 * 1024,
    WebSocket: opts.WebSocket ?? WebSocket,
    rng: opts.rng ?? Math.random,
    clock: opts.clock ?? systemClock,
  };
}
