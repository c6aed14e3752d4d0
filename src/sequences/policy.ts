/**
 * The sequence scheduler's decisions as pure functions of what is live and the time now (no
 * timers, no I/O), so they are tested with a fake clock. The runtime (sequence-batcher.ts)
 * holds the queues and calls these.
 *
 * Contracts:
 * - one chunk of a sequence runs at a time, in arrival order: only a sequence that is not
 *   running and has a pending chunk is a candidate, and only with its oldest chunk;
 * - a batch takes at most one chunk per sequence, up to max_batch_size, chunks of equal shape;
 * - `oldest`: candidates in order of their chunk's arrival; `direct`: in slot order (each
 *   sequence holds a slot from its start to its end);
 * - a batch goes when it is full, when it reaches a preferred size, when every live sequence
 *   is in it (nobody else could join), or when its oldest chunk has waited max_queue_delay;
 *   otherwise the scheduler waits for the rest of that delay.
 */

export interface SequenceView {
  readonly key: string;
  /** A chunk of this sequence is executing now. */
  readonly running: boolean;
  /** Its oldest pending chunk, if any. */
  readonly head?: { readonly enqueuedAt: number; readonly shapeKey: string } | undefined;
  /** Clock time of its last chunk's arrival or completion. */
  readonly lastActive: number;
  /** direct: the slot it holds. */
  readonly slot: number;
}

export interface SequencePolicySettings {
  readonly strategy: 'direct' | 'oldest';
  /** Chunks in one batch at most (1 for a model without a batch dimension). */
  readonly maxBatchSize: number;
  readonly preferredBatchSizes: readonly number[];
  readonly maxQueueDelayMs: number;
  /** Live sequences at most (max_candidate_sequences, or the slots of `direct`). */
  readonly maxSequences: number;
  readonly idleMs: number;
}

export type SequenceDecision =
  | { readonly kind: 'dispatch'; readonly keys: readonly string[] }
  | { readonly kind: 'wait'; readonly ms: number }
  | { readonly kind: 'none' };

export function decideSequenceBatch(views: readonly SequenceView[], now: number, s: SequencePolicySettings): SequenceDecision {
  const candidates = views.filter((v) => v.head && !v.running);
  if (candidates.length === 0) return { kind: 'none' };
  const byArrival = [...candidates].sort((a, b) => a.head!.enqueuedAt - b.head!.enqueuedAt);
  const oldest = byArrival[0]!;
  const shapeKey = oldest.head!.shapeKey;
  const order = s.strategy === 'direct' ? [...candidates].sort((a, b) => a.slot - b.slot) : byArrival;
  const same = order.filter((v) => v.head!.shapeKey === shapeKey);
  // The oldest chunk always goes in; fill the rest in strategy order.
  const picked = [oldest, ...same.filter((v) => v !== oldest)].slice(0, Math.max(1, s.maxBatchSize));
  const keys = (s.strategy === 'direct' ? [...picked].sort((a, b) => a.slot - b.slot) : picked).map((v) => v.key);
  const n = keys.length;
  const waited = now - oldest.head!.enqueuedAt;
  const full = n >= s.maxBatchSize;
  const preferred = s.preferredBatchSizes.includes(n) && n === same.length;
  const everyone = n === views.length;
  if (full || preferred || everyone || waited >= s.maxQueueDelayMs) return { kind: 'dispatch', keys };
  return { kind: 'wait', ms: s.maxQueueDelayMs - waited };
}

/** Sequences idle past the timeout (nothing pending, nothing running): they end. */
export function expiredSequences(views: readonly SequenceView[], now: number, idleMs: number): string[] {
  return views.filter((v) => !v.running && !v.head && now - v.lastActive >= idleMs).map((v) => v.key);
}

/** When the next idle sequence would expire (Infinity when none can). */
export function nextExpiry(views: readonly SequenceView[], idleMs: number): number {
  let at = Infinity;
  for (const v of views) if (!v.running && !v.head) at = Math.min(at, v.lastActive + idleMs);
  return at;
}

export type Admission = { readonly ok: true; readonly slot: number } | { readonly ok: false; readonly reason: string };

/** May a new sequence start? It gets the lowest free slot (`direct`) or is refused at the limit. */
export function admitSequence(taken: ReadonlySet<number>, s: SequencePolicySettings): Admission {
  if (taken.size >= s.maxSequences) {
    const what = s.strategy === 'direct' ? `all ${s.maxSequences} sequence slots (max_batch_size × instances) are taken` : `max_candidate_sequences (${s.maxSequences}) sequences are live`;
    return { ok: false, reason: `${what}; retry after a sequence ends` };
  }
  let slot = 0;
  while (taken.has(slot)) slot++;
  return { ok: true, slot };
}
