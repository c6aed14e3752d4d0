/**
 * The dynamic batching decision, as a pure function of the queue and the clock (Triton's
 * "decide, then return a wait time", without shared mutable state). The batcher calls it
 * whenever a request arrives, an execution slot frees up, or a wait it asked for ends.
 *
 * Rules, in order (the README repeats them for users):
 * 1. Without dynamic batching (or with max_batch_size 0) every request runs alone, in order.
 * 2. A batch is a prefix of the queue whose requests share the head's shape key (the
 *    non-batch dims and datatypes of every input: differently shaped requests never merge)
 *    and whose rows add up to at most max_batch_size (a request may carry several rows).
 * 3. Dispatch now when the batch cannot grow: it is full, or the next request is of
 *    another shape or would overflow it.
 * 4. Dispatch now the longest prefix whose row count is a preferred batch size, if any.
 * 5. Dispatch now everything that fits once the oldest request has waited
 *    max_queue_delay (0 = never wait: batches form from what queued while the model was busy).
 * 6. Otherwise wait until the oldest request's delay runs out.
 */

export interface PendingView {
  /** Rows this request contributes along dim 0. */
  readonly rows: number;
  /** Requests merge only with requests of the same key. */
  readonly shapeKey: string;
  /** Clock time (ms) at which it was queued. */
  readonly enqueuedAt: number;
}

export interface BatchingSettings {
  /** false: each request runs alone. */
  readonly dynamic: boolean;
  /** Most rows in one execution (0 = the model takes no batch dimension). */
  readonly maxBatchSize: number;
  readonly preferredBatchSizes: readonly number[];
  readonly maxQueueDelayMs: number;
}

export type Decision =
  | { readonly kind: 'dispatch'; readonly count: number }
  | { readonly kind: 'wait'; readonly ms: number }
  | { readonly kind: 'idle' };

export function decideNextBatch(queue: readonly PendingView[], now: number, s: BatchingSettings): Decision {
  const head = queue[0];
  if (!head) return { kind: 'idle' };
  if (!s.dynamic || s.maxBatchSize === 0) return { kind: 'dispatch', count: 1 };

  let rows = 0;
  let count = 0;
  let preferredCount = 0;
  let canGrow = true;
  for (const e of queue) {
    if (e.shapeKey !== head.shapeKey || rows + e.rows > s.maxBatchSize) {
      canGrow = false;
      break;
    }
    rows += e.rows;
    count++;
    if (s.preferredBatchSizes.includes(rows)) preferredCount = count;
  }
  // A head larger than max_batch_size is refused at validation; never stall on one anyway.
  if (count === 0) return { kind: 'dispatch', count: 1 };
  if (rows >= s.maxBatchSize || !canGrow) return { kind: 'dispatch', count };
  if (preferredCount > 0) return { kind: 'dispatch', count: preferredCount };
  const waited = now - head.enqueuedAt;
  if (waited >= s.maxQueueDelayMs) return { kind: 'dispatch', count };
  return { kind: 'wait', ms: s.maxQueueDelayMs - waited };
}
