/**
 * The gateway's routing state: per node its outstanding requests and circuit breaker, per
 * (node, model) a latency estimate. Which nodes may take a model, and which one does, is
 * decided here with the pure functions of policy.ts; this file only keeps the counters.
 */
import type { Clock } from '../../util/clock.js';
import type { GatewayFleet, GatewayNode } from './fleet.js';
import {
  breakerAllows, breakerOnSend, breakerRecord, CLOSED_BREAKER, ewma, pickTwoChoices,
  type BreakerOptions, type BreakerState, type Candidate,
} from './policy.js';

export interface RoutedCandidate extends Candidate {
  readonly node: GatewayNode;
}

/** What /nodes shows per node about routing. */
export interface RoutingView {
  readonly outstanding: number;
  readonly circuit: { readonly state: BreakerState['state']; readonly consecutiveFailures: number; readonly opened: number; readonly openForMs?: number };
}

export class Router {
  private readonly outstanding = new Map<string, number>();
  private readonly breakers = new Map<string, BreakerState>();
  private readonly latency = new Map<string, number>();
  /**
   * Per model, the nodes that list it READY: routing looks only at these, not at the whole
   * fleet. Cleared on every model change and registration (fleet.onModelsChanged).
   */
  private readonly withModel = new Map<string, GatewayNode[]>();

  constructor(
    private readonly fleet: GatewayFleet,
    private readonly clock: Clock,
    private readonly breaker: BreakerOptions,
    private readonly rng: () => number = Math.random,
  ) {
    fleet.onModelsChanged(() => this.withModel.clear());
  }

  private nodesWith(model: string): GatewayNode[] {
    let list = this.withModel.get(model);
    if (!list) {
      list = this.fleet.nodes().filter((n) => n.models.some((m) => m.name === model && m.state === 'READY'));
      this.withModel.set(model, list);
    }
    return list;
  }

  /** Heartbeat queue + in-flight for the model on the node, plus what this gateway has outstanding there. */
  loadOf(node: GatewayNode, model: string, version: string | undefined): number {
    let reported = 0;
    for (const l of node.load) if (l.name === model && (version === undefined || l.version === undefined || l.version === version)) reported += l.queueDepth + l.inFlight;
    return reported + (this.outstanding.get(node.nodeId) ?? 0);
  }

  /** A node takes new work: connected and fresh (Ready), not cordoned or draining, breaker allows. */
  takesWork(node: GatewayNode): boolean {
    return node.health === 'Ready' && node.nodeState === 'ready' && breakerAllows(this.breakerOf(node.nodeId), this.clock.now());
  }

  /** Nodes that take work and have the model (and version, when given) READY, minus `exclude`. */
  candidates(model: string, version: string | undefined, exclude: ReadonlySet<string> = new Set()): RoutedCandidate[] {
    const out: RoutedCandidate[] = [];
    for (const node of this.nodesWith(model)) {
      if (exclude.has(node.nodeId) || !this.takesWork(node)) continue;
      if (!node.models.some((m) => m.name === model && m.state === 'READY' && (version === undefined || m.version === version))) continue;
      out.push({ nodeId: node.nodeId, node, load: this.loadOf(node, model, version) });
    }
    return out;
  }

  /** Nodes that take work and list the model in their repository (any state): where it could be loaded. */
  loadable(model: string): RoutedCandidate[] {
    return this.workers((node) => node.models.some((m) => m.name === model));
  }

  /** Nodes that take work (and pass `filter`), with their total load: queues, in flight, outstanding. */
  workers(filter: (node: GatewayNode) => boolean = () => true): RoutedCandidate[] {
    const out: RoutedCandidate[] = [];
    for (const node of this.fleet.nodes()) {
      if (!this.takesWork(node) || !filter(node)) continue;
      let total = this.outstanding.get(node.nodeId) ?? 0;
      for (const l of node.load) total += l.queueDepth + l.inFlight;
      out.push({ nodeId: node.nodeId, node, load: total });
    }
    return out;
  }

  pick<C extends Candidate>(candidates: readonly C[]): C | undefined {
    return pickTwoChoices(candidates, this.rng);
  }

  /** Count a request as outstanding on the node; call the returned function exactly once when it ends. */
  begin(nodeId: string): () => void {
    this.outstanding.set(nodeId, (this.outstanding.get(nodeId) ?? 0) + 1);
    this.breakers.set(nodeId, breakerOnSend(this.breakerOf(nodeId), this.clock.now()));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.outstanding.get(nodeId) ?? 1) - 1;
      if (n <= 0) this.outstanding.delete(nodeId);
      else this.outstanding.set(nodeId, n);
    };
  }

  /** Record an attempt's outcome for the node's breaker (`ok`: the node answered). */
  record(nodeId: string, ok: boolean): void {
    this.breakers.set(nodeId, breakerRecord(this.breakerOf(nodeId), ok, this.clock.now(), this.breaker));
  }

  observeLatency(nodeId: string, model: string, ms: number): void {
    const key = `${nodeId}\u0000${model}`;
    this.latency.set(key, ewma(this.latency.get(key), ms));
  }

  latencyEstimate(nodeId: string, model: string): number | undefined {
    return this.latency.get(`${nodeId}\u0000${model}`);
  }

  view(nodeId: string): RoutingView {
    const b = this.breakerOf(nodeId);
    const now = this.clock.now();
    return {
      outstanding: this.outstanding.get(nodeId) ?? 0,
      circuit: {
        state: b.state === 'open' && now >= b.openUntil ? 'half_open' : b.state,
        consecutiveFailures: b.consecutiveFailures,
        opened: b.opened,
        ...(b.state === 'open' && now < b.openUntil ? { openForMs: Math.round(b.openUntil - now) } : {}),
      },
    };
  }

  private breakerOf(nodeId: string): BreakerState {
    return this.breakers.get(nodeId) ?? CLOSED_BREAKER;
  }
}
