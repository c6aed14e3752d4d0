/**
 * The sequence scheduler's pure policy (src/sequences/policy.ts) with a fake clock: in-order
 * one-at-a-time per sequence, oldest batching across sequences, direct slots, delay, idle
 * expiry, candidate limits.
 */
import { describe, expect, it } from 'vitest';
import { admitSequence, decideSequenceBatch, expiredSequences, nextExpiry, type SequencePolicySettings, type SequenceView } from '../../src/sequences/policy.js';
import { FakeClock } from '../../src/util/clock.js';

const OLDEST: SequencePolicySettings = { strategy: 'oldest', maxBatchSize: 4, preferredBatchSizes: [], maxQueueDelayMs: 0, maxSequences: 8, idleMs: 1000 };

function view(key: string, o: { at?: number; running?: boolean; shape?: string; lastActive?: number; slot?: number } = {}): SequenceView {
  return {
    key,
    running: o.running ?? false,
    head: o.at === undefined ? undefined : { enqueuedAt: o.at, shapeKey: o.shape ?? '1x512' },
    lastActive: o.lastActive ?? o.at ?? 0,
    slot: o.slot ?? 0,
  };
}

describe('decideSequenceBatch', () => {
  it('oldest: batches the next chunk of different sequences, oldest chunk first, up to max_batch_size', () => {
    const views = [view('a', { at: 3 }), view('b', { at: 1 }), view('c', { at: 2 }), view('d', { at: 5 }), view('e', { at: 4 })];
    expect(decideSequenceBatch(views, 10, OLDEST)).toEqual({ kind: 'dispatch', keys: ['b', 'c', 'a', 'e'] });
  });

  it('a running sequence is not a candidate: its next chunk waits for the one in flight (one at a time, in order)', () => {
    const views = [view('a', { at: 1, running: true }), view('b', { at: 2 })];
    expect(decideSequenceBatch(views, 10, OLDEST)).toEqual({ kind: 'dispatch', keys: ['b'] });
    expect(decideSequenceBatch([view('a', { at: 1, running: true })], 10, OLDEST)).toEqual({ kind: 'none' });
  });

  it('only chunks of the oldest chunk\'s shape join it', () => {
    const views = [view('a', { at: 1, shape: '1x256' }), view('b', { at: 2 }), view('c', { at: 3, shape: '1x256' })];
    expect(decideSequenceBatch(views, 10, OLDEST)).toEqual({ kind: 'dispatch', keys: ['a', 'c'] });
  });

  it('with max_queue_delay: waits for company for the rest of the delay, then goes; goes at once when full or when every live sequence is in', () => {
    const clock = new FakeClock();
    const s = { ...OLDEST, maxQueueDelayMs: 5 };
    const idle = view('z', { lastActive: 0 });
    const views = [view('a', { at: clock.now() }), idle];
    expect(decideSequenceBatch(views, clock.now(), s)).toEqual({ kind: 'wait', ms: 5 });
    clock.advance(2);
    expect(decideSequenceBatch(views, clock.now(), s)).toEqual({ kind: 'wait', ms: 3 });
    clock.advance(3);
    expect(decideSequenceBatch(views, clock.now(), s)).toEqual({ kind: 'dispatch', keys: ['a'] });
    // every live sequence has a chunk in the batch: nobody else could join, go now
    expect(decideSequenceBatch([view('a', { at: 0 }), view('b', { at: 0 })], 0, s)).toEqual({ kind: 'dispatch', keys: ['a', 'b'] });
    // full
    const four = ['a', 'b', 'c', 'd'].map((k) => view(k, { at: 0 }));
    expect(decideSequenceBatch([...four, idle], 0, s)).toEqual({ kind: 'dispatch', keys: ['a', 'b', 'c', 'd'] });
  });

  it('a preferred batch size goes before the delay is out', () => {
    const s = { ...OLDEST, maxQueueDelayMs: 100, preferredBatchSizes: [2] };
    const views = [view('a', { at: 0 }), view('b', { at: 0 }), view('z')];
    expect(decideSequenceBatch(views, 0, s)).toEqual({ kind: 'dispatch', keys: ['a', 'b'] });
  });

  it('direct: the batch is in slot order and always holds the oldest chunk', () => {
    const s: SequencePolicySettings = { ...OLDEST, strategy: 'direct', maxBatchSize: 2 };
    const views = [view('a', { at: 9, slot: 0 }), view('b', { at: 1, slot: 3 }), view('c', { at: 5, slot: 1 })];
    expect(decideSequenceBatch(views, 10, s)).toEqual({ kind: 'dispatch', keys: ['a', 'b'] });
  });
});

describe('idle expiry', () => {
  it('a sequence with nothing pending or running expires idleMs after its last activity', () => {
    const clock = new FakeClock();
    const views = [view('a', { lastActive: 0 }), view('b', { lastActive: 500 }), view('c', { at: 0 }), view('d', { running: true, lastActive: 0 })];
    expect(nextExpiry(views, 1000)).toBe(1000);
    clock.advance(999);
    expect(expiredSequences(views, clock.now(), 1000)).toEqual([]);
    clock.advance(1);
    expect(expiredSequences(views, clock.now(), 1000)).toEqual(['a']);
    clock.advance(500);
    // c has a chunk pending and d is running: neither is idle
    expect(expiredSequences(views, clock.now(), 1000)).toEqual(['a', 'b']);
  });
});

describe('admitSequence', () => {
  it('gives the lowest free slot and refuses at the limit with the reason', () => {
    expect(admitSequence(new Set([0, 2]), OLDEST)).toEqual({ ok: true, slot: 1 });
    const full = admitSequence(new Set([0, 1]), { ...OLDEST, maxSequences: 2 });
    expect(full).toEqual({ ok: false, reason: 'max_candidate_sequences (2) sequences are live; retry after a sequence ends' });
    const direct = admitSequence(new Set([0]), { ...OLDEST, strategy: 'direct', maxSequences: 1 });
    expect(direct.ok).toBe(false);
    expect(!direct.ok && direct.reason).toMatch(/all 1 sequence slots/);
  });
});
