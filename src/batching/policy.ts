/**
 * The dynamic batching decision, as a pure function of the queue, the clock and what the
 * batcher has seen of recent arrivals (Triton's "decide, then return a wait time", without
 * shared mutable state). The batcher calls it whenever a request arrives, an execution slot
 * frees up, or a wait it asked for ends.
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
 * 6. Work-conserving (the default policy): while an execution slot is free, wait only when
 *    another request is likely within the delay; dispatch now when
 *    a. most recent requests arrived alone (nothing queued or running: a closed-loop client at
 *       concurrency 1, or a light load), so waiting would only add the delay; or
 *    b. the arrival stream has paused: nothing arrived for twice the recent gap between
 *       arrivals (a burst of clients answering the previous batch is over); or
 *    c. at the recent gap, the next arrival would come after the oldest request's delay.
 *    The 'triton' policy skips rule 6: it always waits out the delay, as Triton does.
 * 7. Otherwise wait until the oldest request's delay runs out (work-conserving: or until the
 *    stream would count as paused, whichever is first).
 */

export interface PendingView {
  /** Rows this request contributes along dim 0. */
  readonly rows: number;
  /** Requests merge only with requests of the same key. */
  readonly shapeKey: string;
  /** Clock time (ms) at which it was queued. */
  readonly enqueuedAt: number;
}

/**
 * 'work_conserving': never hold a request for a batch that is not coming (rule 6);
 * 'triton': Triton's dynamic batcher, which waits the whole max_queue_delay for company.
 */
export type BatchingPolicy = 'work_conserving' | 'triton';
export const BATCHING_POLICIES: readonly BatchingPolicy[] = ['work_conserving', 'triton'];

export interface BatchingSettings {
  /** false: each request runs alone. */
  readonly dynamic: boolean;
  /** Most rows in one execution (0 = the model takes no batch dimension). */
  readonly maxBatchSize: number;
  readonly preferredBatchSizes: readonly number[];
  readonly maxQueueDelayMs: number;
  /** Default 'work_conserving'. */
  readonly policy?: BatchingPolicy;
}

/** What the batcher has seen of recent arrivals (see arrivals.ts). */
export interface ArrivalView {
  /** Clock time (ms) of the last arrival. */
  readonly lastArrivalAt: number;
  /** Recent mean gap (ms) between arrivals that found other requests queued or running. */
  readonly meanGapMs: number;
  /** Recent share (0..1) of arrivals that found other requests queued or running. */
  readonly overlapShare: number;
}

/** Below this share of arrivals finding company, requests are taken to come alone (rule 6a). */
export const ALONE_SHARE = 0.5;
/** The stream counts as paused after this many recent gaps without an arrival (rule 6b). */
export const PAUSE_GAPS = 2;

export type Decision =
  | { readonly kind: 'dispatch'; readonly count: number }
  | { readonly kind: 'wait'; readonly ms: number }
  | { readonly kind: 'idle' };

export function decideNextBatch(
  queue: readonly PendingView[],
  now: number,
  s: BatchingSettings,
  /** Without it, rule 6 does not apply (as under the 'triton' policy). */
  arrivals?: ArrivalView,
): Decision {
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
    if (s.preferredBatchSizes.length > 0 && s.preferredBatchSizes.includes(rows)) preferredCount = count;
  }
  // A head larger than max_batch_size is refused at validation; never stall on one anyway.
  if (count === 0) return { kind: 'dispatch', count: 1 };
  if (rows >= s.maxBatchSize || !canGrow) return { kind: 'dispatch', count };
  if (preferredCount > 0) return { kind: 'dispatch', count: preferredCount };
  const dueAt = head.enqueuedAt + s.maxQueueDelayMs;
  if (now >= dueAt) return { kind: 'dispatch', count };
  if (s.policy === 'triton' || !arrivals) return { kind: 'wait', ms: dueAt - now };

  // Rule 6: the caller has a free execution slot (it only asks then).
  if (arrivals.overlapShare < ALONE_SHARE) return { kind: 'dispatch', count };
  const pausedAt = arrivals.lastArrivalAt + PAUSE_GAPS * arrivals.meanGapMs;
  if (now >= pausedAt) return { kind: 'dispatch', count };
  if (arrivals.lastArrivalAt + arrivals.meanGapMs > dueAt) return { kind: 'dispatch', count };
  return { kind: 'wait', ms: Math.min(dueAt, pausedAt) - now };
}
