/**
 * Cost per request: every answer the gateway relays carries the node's `x-compute-time-us`
 * (the request's share of its batch's compute time); cost = compute seconds × the node's price
 * per hour ÷ 3600. Totals are kept per model, per node and per client token, exported as JSON,
 * CSV and Prometheus text, and checked against an optional budget per client.
 *
 * Price of a node, first that applies: the coordinator's `prices` entry for the node id, for its
 * hostname, the node's own `price_per_hour` label, the coordinator's entry `gpu=<gpu label>`;
 * otherwise 0 (compute time is still counted).
 */
import { Counter, Registry } from 'prom-client';
import type { GatewayNode } from '../gateway/fleet.js';

export { COMPUTE_TIME_HEADER } from '../../protocol/compute-time.js';

export interface CostOptions {
  /** Price per hour by node id, hostname or `gpu=<label value>`. */
  readonly prices?: Readonly<Record<string, number>>;
  /** Budget per client name, in the price's currency. */
  readonly budgets?: Readonly<Record<string, number>>;
}

export interface CostTotals {
  requests: number;
  errors: number;
  computeSeconds: number;
  cost: number;
}

export interface CostReport {
  readonly byModel: Record<string, CostTotals & { p99Ms?: number }>;
  readonly byNode: Record<string, CostTotals & { pricePerHour: number }>;
  readonly byClient: Record<string, CostTotals & { budget?: number; remaining?: number }>;
  readonly total: CostTotals;
}

const zero = (): CostTotals => ({ requests: 0, errors: 0, computeSeconds: 0, cost: 0 });

export function priceOf(node: Pick<GatewayNode, 'nodeId' | 'labels'> & { hostname?: string }, prices: Readonly<Record<string, number>> = {}): number {
  const label = Number(node.labels.price_per_hour);
  const candidates = [prices[node.nodeId], node.hostname !== undefined ? prices[node.hostname] : undefined, Number.isFinite(label) && node.labels.price_per_hour !== undefined ? label : undefined, node.labels.gpu !== undefined ? prices[`gpu=${node.labels.gpu}`] : undefined];
  for (const c of candidates) if (c !== undefined && Number.isFinite(c) && c >= 0) return c;
  return 0;
}

export class CostLedger {
  private readonly byModel = new Map<string, CostTotals>();
  private readonly byNode = new Map<string, CostTotals & { pricePerHour: number }>();
  private readonly byClient = new Map<string, CostTotals>();
  private readonly total = zero();
  /** The latest LATENCY_SAMPLES gateway latencies per model (for p99). */
  private readonly latencies = new Map<string, { values: number[]; next: number }>();
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'gpu_coordinator_requests_total', help: 'requests answered by the gateway', labelNames: ['model', 'node', 'client', 'code'], registers: [this.registry] });
  private readonly compute = new Counter({ name: 'gpu_coordinator_compute_seconds_total', help: 'compute seconds the nodes reported for gateway requests', labelNames: ['model', 'node', 'client'], registers: [this.registry] });
  private readonly children = new Map<string, { requests: Map<number, Counter.Internal>; compute: Counter.Internal; cost: Counter.Internal; labels: Record<string, string> }>();
  private readonly costs = new Counter({ name: 'gpu_coordinator_cost_total', help: 'cost of gateway requests (compute seconds × node price per hour / 3600)', labelNames: ['model', 'node', 'client'], registers: [this.registry] });

  constructor(private readonly options: CostOptions = {}) {
    for (const [name, b] of Object.entries(options.budgets ?? {})) if (!Number.isFinite(b) || b < 0) throw new RangeError(`budget of client '${name}' must be a non-negative number`);
  }

  /** Why the client may not send more (429), or undefined. */
  refusal(client: string): string | undefined {
    const budget = this.options.budgets?.[client];
    if (budget === undefined) return undefined;
    const spent = this.byClient.get(client)?.cost ?? 0;
    return spent >= budget ? `client '${client}' has used its budget: spent ${spent.toFixed(6)} of ${budget} (ask the operator to raise --budgets)` : undefined;
  }

  /** Account one answered request. `computeUs` from the node's header; `node` undefined when no node answered. */
  record(r: { model: string; client: string; status: number; node: { nodeId: string; labels: Readonly<Record<string, string>>; hostname?: string } | undefined; computeUs: number; latencyMs?: number }): void {
    if (r.latencyMs !== undefined) {
      const ring = getOr(this.latencies, r.model, () => ({ values: [] as number[], next: 0 }));
      if (ring.values.length < LATENCY_SAMPLES) ring.values.push(r.latencyMs);
      else ring.values[ring.next] = r.latencyMs;
      ring.next = (ring.next + 1) % LATENCY_SAMPLES;
    }
    const price = r.node ? priceOf(r.node, this.options.prices) : 0;
    const seconds = r.computeUs / 1e6;
    const cost = (seconds * price) / 3600;
    const failed = r.status >= 400 ? 1 : 0;
    const add = (t: CostTotals) => {
      t.requests++;
      t.errors += failed;
      t.computeSeconds += seconds;
      t.cost += cost;
    };
    add(this.total);
    add(getOr(this.byModel, r.model, zero));
    add(getOr(this.byClient, r.client, zero));
    const nodeId = r.node?.nodeId ?? '-';
    const n = getOr(this.byNode, nodeId, () => ({ ...zero(), pricePerHour: price }));
    n.pricePerHour = price;
    add(n);
    // The labelled children are looked up once per label set (prom-client hashes the label
    // object on every inc otherwise: a few µs per request on the gateway's hot path).
    const key = `${r.model}\u0000${nodeId}\u0000${r.client}`;
    let c = this.children.get(key);
    if (!c) {
      const labels = { model: r.model, node: nodeId, client: r.client };
      c = { requests: new Map(), compute: this.compute.labels(labels), cost: this.costs.labels(labels), labels };
      this.children.set(key, c);
    }
    let byCode = c.requests.get(r.status);
    if (!byCode) c.requests.set(r.status, (byCode = this.requests.labels({ ...c.labels, code: String(r.status) })));
    byCode.inc();
    if (seconds > 0) {
      c.compute.inc(seconds);
      c.cost.inc(cost);
    }
  }

  report(): CostReport {
    const clients: CostReport['byClient'] = {};
    for (const [k, v] of this.byClient) {
      const budget = this.options.budgets?.[k];
      clients[k] = { ...v, ...(budget !== undefined ? { budget, remaining: Math.max(0, budget - v.cost) } : {}) };
    }
    const models: CostReport['byModel'] = {};
    for (const [k, v] of this.byModel) {
      const p99 = percentile(this.latencies.get(k)?.values, 0.99);
      models[k] = { ...v, ...(p99 !== undefined ? { p99Ms: p99 } : {}) };
    }
    return { byModel: models, byNode: Object.fromEntries(this.byNode), byClient: clients, total: { ...this.total } };
  }

  /** One row per (dimension, key): dimension,key,requests,errors,compute_seconds,cost. */
  csv(): string {
    const rows = ['dimension,key,requests,errors,compute_seconds,cost'];
    const r = this.report();
    for (const [dim, map] of [['model', r.byModel], ['node', r.byNode], ['client', r.byClient]] as const) {
      for (const [k, v] of Object.entries(map)) rows.push([dim, csvField(k), v.requests, v.errors, v.computeSeconds.toFixed(6), v.cost.toFixed(9)].join(','));
    }
    rows.push(['total', '', r.total.requests, r.total.errors, r.total.computeSeconds.toFixed(6), r.total.cost.toFixed(9)].join(','));
    return `${rows.join('\n')}\n`;
  }
}

const LATENCY_SAMPLES = 512;

function percentile(values: readonly number[] | undefined, q: number): number | undefined {
  if (!values || values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function getOr<V>(m: Map<string, V>, k: string, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = make()));
  return v;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
