/**
 * The coordinator's fleet: every node record by id, its health (computed on read from the
 * last message's time), the state changes that go to the audit trail, the periodic sweep that
 * logs and records health transitions, and the gateway's allocation-free view of the nodes.
 *
 * Node health (the coordinator's view, like Kubernetes' Ready condition):
 * - Ready: connected (registered) and a message (register, heartbeat, event, result) arrived
 *   within `heartbeatTimeoutMs` (default 15 s = 3 agent heartbeats).
 * - Unknown: disconnected, or connected but silent for longer than `heartbeatTimeoutMs`.
 * - Gone: nothing heard for `goneAfterMs` (default 5 min). Gone nodes stay listed until the
 *   coordinator restarts (or they register again and are Ready).
 * The agent's own `nodeState` (ready | cordoned | draining) is kept separately.
 */
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { CoordinatorStore } from './audit/store.js';
import type { NodeHealth } from './fleet-types.js';
import type { GatewayNode } from './gateway/fleet.js';
import { restoredRecord, type NodeRecord } from './node-record.js';
import type { NodeState } from './protocol.js';

export interface FleetTiming {
  readonly heartbeatTimeoutMs: number;
  readonly goneAfterMs: number;
}

export class FleetState {
  readonly nodes = new Map<string, NodeRecord>();
  /** Called whenever a node's view changed (the dashboard's live feed); set once the feed exists. */
  onDirty: (nodeId: string) => void = () => undefined;
  private readonly modelListeners = new Set<(nodeId: string) => void>();
  private readonly adapters = new WeakMap<NodeRecord, GatewayNode>();
  private gatewayList: GatewayNode[] | undefined; // reset whenever `nodes` gains an entry
  private cancelSweep: (() => void) | undefined;
  private stopped = false;

  constructor(private readonly store: CoordinatorStore, private readonly clock: Clock, private readonly log: Logger, private readonly timing: FleetTiming) {}

  healthOf(n: NodeRecord): NodeHealth {
    const silent = this.clock.now() - n.lastSeenMono;
    if (n.conn && silent <= this.timing.heartbeatTimeoutMs) return 'Ready';
    return silent < this.timing.goneAfterMs ? 'Unknown' : 'Gone';
  }

  add(node: NodeRecord): void {
    this.nodes.set(node.nodeId, node);
    this.gatewayList = undefined;
  }

  /** The agent's ready/cordoned/draining changed: keep it, and record it in the audit trail. */
  setNodeState(n: NodeRecord, state: NodeState, identity: string, reason: string): void {
    if (n.nodeState === state) return;
    this.store.append({ kind: 'node_state', at: Date.now(), nodeId: n.nodeId, identity, action: state, target: n.nodeState, result: reason });
    n.nodeState = state;
    this.onDirty(n.nodeId);
  }

  setHealth(n: NodeRecord, health: NodeHealth, reason: string): void {
    if (n.health === health) return;
    this.store.append({ kind: 'node_health', at: Date.now(), nodeId: n.nodeId, identity: 'coordinator', action: health, target: n.health, result: reason });
    n.health = health;
    this.onDirty(n.nodeId);
  }

  /** A node's models changed (register, model_state event): routing rebuilds its per-model lists. */
  modelsChanged(nodeId: string): void {
    for (const l of this.modelListeners) l(nodeId);
  }

  onModelsChanged(listener: (nodeId: string) => void): () => void {
    this.modelListeners.add(listener);
    return () => this.modelListeners.delete(listener);
  }

  /**
   * The gateway's view: one live adapter per node record (getters, no copy), in one list rebuilt
   * only when a node is added. Routing reads the fleet on every request, so it must not
   * allocate per node.
   */
  gatewayNodes(): readonly GatewayNode[] {
    return (this.gatewayList ??= [...this.nodes.values()].map((n) => this.gatewayNode(n)));
  }

  /** The registry of the previous run: every node is listed at once, Unknown until it reconnects. */
  restore(): void {
    for (const stored of this.store.loadNodes()) {
      const silentMs = Math.max(0, Date.now() - stored.lastSeen);
      this.add(restoredRecord(stored, this.clock.now() - silentMs, silentMs < this.timing.goneAfterMs ? 'Unknown' : 'Gone'));
    }
    if (this.nodes.size) this.log.info({ nodes: this.nodes.size, file: this.store.file }, 'node registry restored; nodes are Unknown until they reconnect');
  }

  /** Log and record health transitions every `sweepMs` (states themselves are computed on read). */
  startSweep(): void {
    const sweepMs = Math.min(1_000, Math.max(20, this.timing.heartbeatTimeoutMs / 4));
    const sweep = () => {
      for (const n of this.nodes.values()) {
        const h = this.healthOf(n);
        if (h === n.health) continue;
        const silentMs = Math.round(this.clock.now() - n.lastSeenMono);
        if (h === 'Ready') this.log.info({ nodeId: n.nodeId }, 'node is Ready');
        else this.log.warn({ nodeId: n.nodeId, connected: n.conn !== undefined, silentMs }, `node is ${h}`);
        this.setHealth(n, h, n.conn ? `silent for ${silentMs} ms` : `disconnected, silent for ${silentMs} ms`);
        if (h !== 'Ready') this.store.touch(n.nodeId, n.lastSeen);
      }
      if (!this.stopped) this.cancelSweep = this.clock.setTimer(sweepMs, sweep);
    };
    this.cancelSweep = this.clock.setTimer(sweepMs, sweep);
  }

  stopSweep(): void {
    this.stopped = true;
    this.cancelSweep?.();
  }

  private gatewayNode(n: NodeRecord): GatewayNode {
    let a = this.adapters.get(n);
    if (!a) {
      const fleet = this;
      a = {
        nodeId: n.nodeId,
        get url() { return n.info.url; },
        get grpcAddress() { return n.info.grpcAddress; },
        get health() { return fleet.healthOf(n); },
        get nodeState() { return n.nodeState; },
        get models() { return n.info.models; },
        get load() { return n.lastHeartbeat?.models ?? []; },
        get labels() { return n.info.labels; },
        get gpus() { return n.lastHeartbeat?.telemetry?.gpus ?? []; },
      };
      this.adapters.set(n, a);
    }
    return a;
  }
}
