/**
 * Load on demand: no node has the model READY, so ask the least loaded node that lists it in
 * its repository (and takes work) to load it, and wait for the result up to the request's
 * deadline. Concurrent requests for the same model share one load_model command per node.
 * The command keeps running on the agent after a deadline passes, so the next request finds
 * the model READY.
 */
import type { Clock } from '../../util/clock.js';
import type { GatewayFleet } from './fleet.js';
import type { Router } from './router.js';

export type LoadResult =
  | { readonly ok: true; readonly nodeId: string }
  | { readonly ok: false; readonly status: 404 | 503 | 504; readonly error: string };

export class OnDemandLoader {
  private readonly inFlight = new Map<string, Promise<LoadResult>>();

  constructor(private readonly fleet: GatewayFleet, private readonly router: Router, private readonly commandTimeoutMs: number, private readonly clock: Clock) {}

  /** Load `model` somewhere; resolves when it is READY on a node, or why not within `waitMs`. */
  async load(model: string, waitMs: number, identity: string): Promise<LoadResult> {
    const targets = this.router.loadable(model);
    if (targets.length === 0) {
      const listed = this.fleet.nodes().some((n) => n.models.some((m) => m.name === model));
      return listed
        ? { ok: false, status: 503, error: `no node that takes work has model '${model}' (every node listing it is cordoned, draining, disconnected or out of rotation)` }
        : { ok: false, status: 404, error: `no node of the fleet has model '${model}' in its repository` };
    }
    const target = this.router.pick(targets)!;
    const key = `${target.nodeId}\u0000${model}`;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.fleet
        .sendCommand(target.nodeId, { type: 'load_model', model }, { timeoutMs: this.commandTimeoutMs, identity: `gateway (load on demand for ${identity})` })
        .then((outcome): LoadResult => (outcome.ok
          ? { ok: true, nodeId: target.nodeId }
          : { ok: false, status: 503, error: `loading '${model}' on node ${target.nodeId} failed: ${outcome.error ?? 'unknown error'}` }))
        .catch((err: Error): LoadResult => ({ ok: false, status: 503, error: `could not ask node ${target.nodeId} to load '${model}': ${err.message}` }))
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    let cancel: (() => void) | undefined;
    const deadline = new Promise<LoadResult>((resolve) => {
      cancel = this.clock.setTimer(Math.max(1, waitMs), () => resolve({ ok: false, status: 503, error: `model '${model}' is not READY on any node; node ${target.nodeId} is loading it but did not finish within the request's deadline (${Math.round(waitMs)} ms)` }));
    });
    try {
      return await Promise.race([pending, deadline]);
    } finally {
      cancel?.();
    }
  }
}
