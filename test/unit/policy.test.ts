import { describe, expect, it } from 'vitest';
import { ArrivalTracker } from '../../src/batching/arrivals.js';
import { decideNextBatch, type ArrivalView, type BatchingSettings, type PendingView } from '../../src/batching/policy.js';

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

describe('decideNextBatch, work-conserving rule', () => {
  const s = settings({ maxQueueDelayMs: 1, maxBatchSize: 64 });
  const view = (over: Partial<ArrivalView>): ArrivalView => ({ lastArrivalAt: 10, meanGapMs: 0.1, overlapShare: 1, ...over });

  it('dispatches at once when most requests arrive alone', () => {
    expect(decideNextBatch([req(1, 10)], 10, s, view({ overlapShare: 0.2 }))).toEqual({ kind: 'dispatch', count: 1 });
  });

  it('waits while arrivals are frequent and recent, until the stream would count as paused', () => {
    // Last arrival at 10, gap 0.1: paused at 10.2, before the head's due time 11.
    const d = decideNextBatch([req(1, 10)], 10.05, s, view({}));
    expect(d.kind).toBe('wait');
    expect((d as { ms: number }).ms).toBeCloseTo(0.15, 9);
  });

  it('dispatches once nothing arrived for twice the recent gap', () => {
    expect(decideNextBatch([req(1, 10), req(1, 10)], 10.2, s, view({}))).toEqual({ kind: 'dispatch', count: 2 });
  });

  it('dispatches when the next arrival is expected after the head is due', () => {
    // Gap 0.8 ms from 10: next at 10.8, head due at 10.5.
    expect(decideNextBatch([req(1, 9.5)], 10.1, s, view({ meanGapMs: 0.8 }))).toEqual({ kind: 'dispatch', count: 1 });
  });

  it('never waits past the head\'s delay', () => {
    const d = decideNextBatch([req(1, 9.5)], 10.3, s, view({ lastArrivalAt: 10.25, meanGapMs: 0.15 }));
    expect(d).toEqual({ kind: 'wait', ms: expect.closeTo(0.2, 9) });
  });

  it('the triton policy ignores the arrivals and waits the delay', () => {
    expect(decideNextBatch([req(1, 10)], 10, settings({ maxQueueDelayMs: 1, maxBatchSize: 64, policy: 'triton' }), view({ overlapShare: 0 })))
      .toEqual({ kind: 'wait', ms: 1 });
  });

  it('full batches and preferred sizes still go at once', () => {
    const q = Array.from({ length: 8 }, () => req(1, 10));
    expect(decideNextBatch(q, 10, settings({ maxQueueDelayMs: 1 }), view({}))).toEqual({ kind: 'dispatch', count: 8 });
  });
});

describe('ArrivalTracker', () => {
  it('learns the share of arrivals that find company and the gap between them', () => {
    const t = new ArrivalTracker();
    expect(t.overlapShare).toBe(0);
    for (let i = 0; i < 50; i++) t.record(i * 0.2, true);
    expect(t.overlapShare).toBeGreaterThan(0.99);
    expect(t.meanGapMs).toBeCloseTo(0.2, 9);
    expect(t.lastArrivalAt).toBeCloseTo(9.8, 9);
    for (let i = 0; i < 20; i++) t.record(20 + i, false);
    expect(t.overlapShare).toBeLessThan(0.5);
    // Lone arrivals do not change the gap between overlapping ones.
    expect(t.meanGapMs).toBeCloseTo(0.2, 9);
  });
});
