/**
 * Load on demand: no node has the model READY, so ask one node to load it, and wait for the
 * result up to the request's deadline.
 * - A node that takes work and lists the model in its repository (any state) is asked first
 *   (least loaded of two random ones): a plain `load_model`, nothing to download.
 * - Else, when the coordinator knows a manifest for the model (manifests/registry.ts), the best
 *   node with room for it is asked to pull it by URI: `load_model` with the manifest as
 *   `source` (the agent downloads the files, checks each sha256, loads the version). "Room": a
 *   node that takes work whose GPUs, when its heartbeat reports their memory, have one with at
 *   least the manifest's total file size free (CPU nodes and unknown sizes always have room);
 *   among those, power-of-two-choices on load.
 * - Else 503 with the reason: no node has the model and no manifest is known.
 * Concurrent requests for the same model share one command. The command keeps running on the
 * agent after a request's deadline passes, so a later request finds the model READY.
 */
import type { Clock } from '../../util/clock.js';
import type { Manifest } from '../../sources/manifest.js';
import type { GatewayFleet, GatewayNode } from './fleet.js';
import type { RoutedCandidate, Router } from './router.js';

export type LoadResult =
  | { readonly ok: true; readonly nodeId: string }
  | { readonly ok: false; readonly status: 503 | 504; readonly error: string };

/** Whether a node can hold `bytes` more (pure; see the file comment for the rule). */
export function hasRoomFor(node: Pick<GatewayNode, 'gpus'>, bytes: number | undefined): boolean {
  if (bytes === undefined || node.gpus.length === 0) return true;
  let known = false;
  for (const g of node.gpus) {
    if (typeof g.memoryTotalBytes !== 'number' || typeof g.memoryUsedBytes !== 'number') continue;
    known = true;
    if (g.memoryTotalBytes - g.memoryUsedBytes >= bytes) return true;
  }
  return !known;
}

/** Total size of a manifest's files, when every file states one. */
export function manifestBytes(m: Manifest): number | undefined {
  let total = 0;
  for (const f of m.files) {
    if (f.size === undefined) return undefined;
    total += f.size;
  }
  return total;
}

export class OnDemandLoader {
  private readonly inFlight = new Map<string, { nodeId: string; result: Promise<LoadResult> }>();

  constructor(
    private readonly fleet: GatewayFleet,
    private readonly router: Router,
    private readonly commandTimeoutMs: number,
    private readonly clock: Clock,
    private readonly manifestOf: (model: string) => Manifest | undefined = () => undefined,
  ) {}

  /** Load `model` somewhere; resolves when it is READY on a node, or why not within `waitMs`. */
  async load(model: string, waitMs: number, identity: string): Promise<LoadResult> {
    let pending = this.inFlight.get(model);
    if (!pending) {
      const plan = this.plan(model);
      if (!plan.ok) return plan;
      const { target, manifest } = plan;
      const result = this.fleet
        .sendCommand(target.nodeId, manifest ? { type: 'load_model', model, source: manifest } : { type: 'load_model', model }, {
          timeoutMs: this.commandTimeoutMs,
          identity: `gateway (load on demand for ${identity}${manifest ? `, pull of version ${manifest.version}` : ''})`,
        })
        .then((outcome): LoadResult => (outcome.ok
          ? { ok: true, nodeId: target.nodeId }
          : { ok: false, status: 503, error: `${manifest ? 'pulling' : 'loading'} '${model}' on node ${target.nodeId} failed: ${outcome.error ?? 'unknown error'}` }))
        .catch((err: Error): LoadResult => ({ ok: false, status: 503, error: `could not ask node ${target.nodeId} to load '${model}': ${err.message}` }))
        .finally(() => this.inFlight.delete(model));
      pending = { nodeId: target.nodeId, result };
      this.inFlight.set(model, pending);
    }
    const nodeId = pending.nodeId;
    let cancel: (() => void) | undefined;
    const deadline = new Promise<LoadResult>((resolve) => {
      cancel = this.clock.setTimer(Math.max(1, waitMs), () => resolve({ ok: false, status: 503, error: `model '${model}' is not READY on any node; node ${nodeId} is loading it but did not finish within the request's deadline (${Math.round(waitMs)} ms)` }));
    });
    try {
      return await Promise.race([pending.result, deadline]);
    } finally {
      cancel?.();
    }
  }

  private plan(model: string): { ok: true; target: RoutedCandidate; manifest?: Manifest } | (LoadResult & { ok: false }) {
    const listing = this.router.loadable(model);
    if (listing.length > 0) return { ok: true, target: this.router.pick(listing)! };
    const manifest = this.manifestOf(model);
    const listed = this.fleet.nodes().some((n) => n.models.some((m) => m.name === model));
    if (!manifest) {
      return {
        ok: false, status: 503,
        error: listed
          ? `no node that takes work has model '${model}' (every node listing it is cordoned, draining, disconnected or out of rotation), and the coordinator knows no manifest to pull it elsewhere`
          : `no node of the fleet has model '${model}' in its repository, and the coordinator knows no manifest for it (PUT /models/${model}/manifest or --manifests)`,
      };
    }
    const bytes = manifestBytes(manifest);
    const roomy = this.router.workers().filter((c) => hasRoomFor(c.node, bytes));
    if (roomy.length === 0) {
      return { ok: false, status: 503, error: `no node that takes work has room to pull '${model}' version ${manifest.version}${bytes !== undefined ? ` (${bytes} bytes)` : ''}` };
    }
    return { ok: true, target: this.router.pick(roomy)!, manifest };
  }
}
