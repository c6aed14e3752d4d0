import { describe, expect, it } from 'vitest';
import { decideNextBatch, type BatchingSettings, type PendingView } from '../../src/batching/policy.js';

const settings = (over: Partial<BatchingSettings> = {}): BatchingSettings => ({
  dynamic: true,
  maxBatchSize: 8,
  preferredBatchSizes: [],
  maxQueueDelayMs: 0,
  ...over,
});

const req = (rows: number, enqueuedAt = 0, shapeKey = 'a'): PendingView => ({ rows, enqueuedAt, shapeKey });

describe('decideNextBatch', () => {
  it('is idle on an empty queue', () => {
    expect(decideNextBatch([], 0, settings())).toEqual({ kind: 'idle' });
  });

  it('runs requests one at a time without dynamic batching', () => {
    expect(decideNextBatch([req(1), req(1), req(1)], 0, settings({ dynamic: false }))).toEqual({ kind: 'dispatch', count: 1 });
    expect(decideNextBatch([req(1), req(1)], 0, settings({ maxBatchSize: 0 }))).toEqual({ kind: 'dispatch', count: 1 });
  });

  it('with no delay, takes everything that fits at once', () => {
    expect(decideNextBatch([req(1), req(2), req(1)], 0, settings())).toEqual({ kind: 'dispatch', count: 3 });
  });

  it('stops at max_batch_size, counting rows not requests', () => {
    // 3 + 4 = 7 fits, + 2 would be 9 > 8.
    expect(decideNextBatch([req(3), req(4), req(2)], 0, settings())).toEqual({ kind: 'dispatch', count: 2 });
    expect(decideNextBatch([req(4), req(4), req(1)], 0, settings())).toEqual({ kind: 'dispatch', count: 2 });
  });

  it('never merges requests of different shapes', () => {
    const q = [req(1, 0, 'a'), req(1, 0, 'a'), req(1, 0, 'b'), req(1, 0, 'a')];
    expect(decideNextBatch(q, 0, settings({ maxQueueDelayMs: 100 }))).toEqual({ kind: 'dispatch', count: 2 });
  });

  it('waits for the max queue delay of the oldest request, then sends what it has', () => {
    const s = settings({ maxQueueDelayMs: 5 });
    expect(decideNextBatch([req(1, 10), req(1, 12)], 11, s)).toEqual({ kind: 'wait', ms: 4 });
    expect(decideNextBatch([req(1, 10), req(1, 12)], 15, s)).toEqual({ kind: 'dispatch', count: 2 });
    expect(decideNextBatch([req(1, 10)], 20, s)).toEqual({ kind: 'dispatch', count: 1 });
  });

  it('sends a full batch at once, even inside the delay', () => {
    const q = Array.from({ length: 8 }, () => req(1, 0));
    expect(decideNextBatch(q, 0, settings({ maxQueueDelayMs: 1000 }))).toEqual({ kind: 'dispatch', count: 8 });
  });

  it('sends the longest prefix of a preferred size at once', () => {
    const s = settings({ preferredBatchSizes: [2, 4], maxQueueDelayMs: 1000 });
    expect(decideNextBatch([req(1), req(1), req(1)], 0, s)).toEqual({ kind: 'dispatch', count: 2 });
    expect(decideNextBatch([req(1), req(1), req(1), req(1), req(1)], 0, s)).toEqual({ kind: 'dispatch', count: 4 });
    // 3 rows is no preferred size and the delay has not run out: wait.
    expect(decideNextBatch([req(3)], 0, s)).toEqual({ kind: 'wait', ms: 1000 });
  });

  it('after the delay, sends everything when no preferred size can be formed', () => {
    const s = settings({ preferredBatchSizes: [4], maxQueueDelayMs: 10 });
    expect(decideNextBatch([req(1, 0), req(2, 1)], 10, s)).toEqual({ kind: 'dispatch', count: 2 });
  });

  it('dispatches a request that carries several rows like any other', () => {
    expect(decideNextBatch([req(8)], 0, settings({ maxQueueDelayMs: 50 }))).toEqual({ kind: 'dispatch', count: 1 });
    expect(decideNextBatch([req(6), req(3)], 0, settings({ maxQueueDelayMs: 50 }))).toEqual({ kind: 'dispatch', count: 1 });
  });

  it('does not stall on a head larger than max_batch_size', () => {
    expect(decideNextBatch([req(9)], 0, settings())).toEqual({ kind: 'dispatch', count: 1 });
  });
});
