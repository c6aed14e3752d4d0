import { describe, expect, it } from 'vitest';
import { Batcher, type BatchReport } from '../../src/batching/batcher.js';
import type { BatchingSettings } from '../../src/batching/policy.js';
import { AgentError } from '../../src/errors.js';
import { fromAbortSignal } from '../../src/util/cancel.js';
import { FakeClock } from '../../src/util/clock.js';
import { deferred, type Deferred } from '../../src/util/deferred.js';

/** A batcher over a fake clock whose executions finish only when the test says so. */
function setup(opts: { settings?: Partial<BatchingSettings>; maxQueueSize?: number; instances?: number; priorityLevels?: number } = {}) {
  const clock = new FakeClock();
  const runs: { payloads: number[]; rows: number; done: Deferred<number[]> }[] = [];
  const reports: BatchReport[] = [];
  const drops: string[] = [];
  const batcher = new Batcher<number, number>({
    settings: { dynamic: true, maxBatchSize: 4, preferredBatchSizes: [], maxQueueDelayMs: 0, ...opts.settings },
    maxQueueSize: opts.maxQueueSize ?? 0,
    instances: opts.instances ?? 1,
    priorityLevels: opts.priorityLevels ?? 0,
    clock,
    execute: (payloads, rows) => {
      const done = deferred<number[]>();
      runs.push({ payloads: [...payloads], rows, done });
      return done.promise;
    },
    onBatch: (r) => reports.push(r),
    onDrop: (reason) => drops.push(reason),
  });
  const finish = async (i: number, fn: (p: number) => number = (p) => p * 10) => {
    runs[i]!.done.resolve(runs[i]!.payloads.map(fn));
    await new Promise((r) => setImmediate(r));
  };
  return { clock, runs, reports, drops, batcher, finish };
}

const enqueue = (b: Batcher<number, number>, payload: number, extra: { rows?: number; shapeKey?: string; deadline?: number; signal?: AbortSignal; priority?: number } = {}) =>
  b.enqueue({ payload, rows: extra.rows ?? 1, shapeKey: extra.shapeKey ?? 'k', deadline: extra.deadline ?? Infinity, signal: extra.signal && fromAbortSignal(extra.signal), priority: extra.priority });

describe('Batcher', () => {
  it('runs a lone request at once and gives each request its own result', async () => {
    const { batcher, runs, finish } = setup();
    const a = enqueue(batcher, 1);
    expect(runs).toHaveLength(1);
    await finish(0);
    await expect(a).resolves.toBe(10);
  });

  it('batches what queued while the instance was busy, up to max batch size', async () => {
    const { batcher, runs, finish, reports } = setup();
    const first = enqueue(batcher, 1);
    const rest = [2, 3, 4, 5, 6].map((p) => enqueue(batcher, p));
    expect(runs).toHaveLength(1);
    await finish(0);
    expect(runs[1]!.payloads).toEqual([2, 3, 4, 5]);
    await finish(1);
    expect(runs[2]!.payloads).toEqual([6]);
    await finish(2);
    await expect(first).resolves.toBe(10);
    await expect(Promise.all(rest)).resolves.toEqual([20, 30, 40, 50, 60]);
    expect(reports.map((r) => r.rows)).toEqual([1, 4, 1]);
  });

  it('waits for the queue delay on the fake clock, then dispatches (triton policy)', async () => {
    const { batcher, runs, clock } = setup({ settings: { maxQueueDelayMs: 5, policy: 'triton' } });
    void enqueue(batcher, 1);
    clock.advance(2);
    void enqueue(batcher, 2);
    expect(runs).toHaveLength(0);
    clock.advance(2.9);
    expect(runs).toHaveLength(0);
    clock.advance(0.1);
    expect(runs.map((r) => r.payloads)).toEqual([[1, 2]]);
  });

  it('work-conserving: a lone client (nothing else queued or running) never waits for the delay', async () => {
    const { batcher, runs, clock, finish } = setup({ settings: { maxQueueDelayMs: 5 } });
    for (let i = 0; i < 20; i++) {
      const r = enqueue(batcher, i);
      expect(runs).toHaveLength(i + 1);
      await finish(i);
      await r;
      clock.advance(0.3);
    }
    expect(runs.every((r) => r.payloads.length === 1)).toBe(true);
  });

  it('work-conserving: while requests keep overlapping, a free slot waits for company, then dispatches when the stream pauses', async () => {
    const { batcher, runs, clock, finish } = setup({ settings: { maxQueueDelayMs: 5, maxBatchSize: 64 } });
    // Build up history: a busy model with arrivals every 0.1 ms.
    void enqueue(batcher, 0);
    for (let i = 1; i <= 20; i++) {
      clock.advance(0.1);
      void enqueue(batcher, i);
    }
    expect(runs).toHaveLength(1);
    await finish(0);
    // The slot is free, arrivals are recent and frequent: it waits rather than run 20 at once...
    expect(runs).toHaveLength(1);
    clock.advance(0.1);
    void enqueue(batcher, 21);
    expect(runs).toHaveLength(1);
    // ...and once nothing has arrived for twice the recent gap (0.2 ms), it runs what it has,
    // long before the 5 ms delay.
    clock.advance(0.25);
    expect(runs).toHaveLength(2);
    expect(runs[1]!.payloads).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
  });

  it('triton policy: the same stream waits out the whole delay, even on an idle model', async () => {
    const { batcher, runs, clock } = setup({ settings: { maxQueueDelayMs: 5, maxBatchSize: 64, policy: 'triton' } });
    void enqueue(batcher, 0);
    for (let i = 1; i <= 20; i++) {
      clock.advance(0.1);
      void enqueue(batcher, i);
    }
    clock.advance(2.9);
    expect(runs).toHaveLength(0);
    clock.advance(0.1);
    expect(runs.map((r) => r.payloads.length)).toEqual([21]);
  });

  it('does not merge different shapes', async () => {
    const { batcher, runs, finish } = setup({ instances: 1 });
    void enqueue(batcher, 0);
    void enqueue(batcher, 1, { shapeKey: 'a' });
    void enqueue(batcher, 2, { shapeKey: 'b' });
    void enqueue(batcher, 3, { shapeKey: 'a' });
    await finish(0);
    expect(runs[1]!.payloads).toEqual([1]);
    await finish(1);
    expect(runs[2]!.payloads).toEqual([2]);
    await finish(2);
    expect(runs[3]!.payloads).toEqual([3]);
  });

  it('runs up to `instances` batches at once', () => {
    const { batcher, runs } = setup({ instances: 2, settings: { dynamic: false } });
    [1, 2, 3].forEach((p) => void enqueue(batcher, p));
    expect(runs.map((r) => r.payloads)).toEqual([[1], [2]]);
    expect(batcher.executing).toBe(2);
    expect(batcher.queued).toBe(1);
  });

  it('refuses at once with QUEUE_FULL when the queue is full', async () => {
    const { batcher } = setup({ maxQueueSize: 2 });
    void enqueue(batcher, 1); // running
    void enqueue(batcher, 2);
    void enqueue(batcher, 3);
    const err = await enqueue(batcher, 4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe('QUEUE_FULL');
    expect((err as AgentError).retryAfterSeconds).toBe(1);
  });

  it('rejects a request whose deadline passes in the queue, without running it', async () => {
    const { batcher, runs, clock, finish, drops } = setup();
    void enqueue(batcher, 1); // occupies the instance
    const late = enqueue(batcher, 2, { deadline: 10 });
    const onTime = enqueue(batcher, 3);
    clock.advance(10);
    const err = await late.catch((e: unknown) => e);
    expect((err as AgentError).code).toBe('DEADLINE_EXCEEDED');
    await finish(0);
    expect(runs[1]!.payloads).toEqual([3]);
    await finish(1);
    await expect(onTime).resolves.toBe(30);
    expect(drops).toEqual(['timeout']);
  });

  it('drops a request whose client aborted before it ran', async () => {
    const { batcher, runs, finish, drops } = setup();
    void enqueue(batcher, 1);
    const ac = new AbortController();
    const gone = enqueue(batcher, 2, { signal: ac.signal });
    ac.abort();
    expect((await gone.catch((e: unknown) => e) as AgentError).code).toBe('CANCELLED');
    expect(batcher.queued).toBe(0);
    await finish(0);
    expect(runs).toHaveLength(1);
    expect(drops).toEqual(['cancelled']);
  });

  it('fails only the requests of a failed batch, each with the error', async () => {
    const { batcher, runs, finish } = setup();
    const first = enqueue(batcher, 1);
    const a = enqueue(batcher, 2);
    const b = enqueue(batcher, 3);
    runs[0]!.done.reject(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    expect(runs[1]!.payloads).toEqual([2, 3]);
    await finish(1);
    await expect(Promise.all([a, b])).resolves.toEqual([20, 30]);
  });

  it('serves higher priority levels first', async () => {
    const { batcher, runs, finish } = setup({ priorityLevels: 2, settings: { dynamic: false } });
    void enqueue(batcher, 1, { priority: 1 });
    void enqueue(batcher, 2, { priority: 1 });
    void enqueue(batcher, 3, { priority: 0 });
    await finish(0);
    expect(runs[1]!.payloads).toEqual([3]);
  });

  it('close() waits for queued and running work; destroy() rejects what is queued', async () => {
    const { batcher, finish, runs } = setup({ settings: { dynamic: false } });
    const a = enqueue(batcher, 1);
    const b = enqueue(batcher, 2);
    let closed = false;
    const closing = batcher.close().then(() => (closed = true));
    await expect(enqueue(batcher, 3)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await finish(0);
    expect(closed).toBe(false);
    await finish(1);
    await closing;
    expect(closed).toBe(true);
    await expect(Promise.all([a, b])).resolves.toEqual([10, 20]);

    const other = setup({ settings: { dynamic: false } });
    void enqueue(other.batcher, 1);
    const queued = enqueue(other.batcher, 2);
    other.batcher.destroy(new AgentError('UNAVAILABLE', 'stopping'));
    await expect(queued).rejects.toThrow('stopping');
    expect(runs).toHaveLength(2);
  });
});

describe('CancelSource', () => {
  it('calls its subscriber once, not after unsubscribing', async () => {
    const { CancelSource } = await import('../../src/util/cancel.js');
    const a = new CancelSource();
    let n = 0;
    a.subscribe(() => n++);
    a.cancel();
    a.cancel();
    expect(n).toBe(1);
    expect(a.aborted).toBe(true);
    const b = new CancelSource();
    const off = b.subscribe(() => n++);
    off();
    b.cancel();
    expect(n).toBe(1);
  });
});

describe('Batcher queue places (admission of a bounded queue)', () => {
  it('holds a place at once when there is room, hands places to waiters in order as the queue drains, says full otherwise', async () => {
    const { batcher, clock, finish } = setup({ settings: { maxQueueDelayMs: 0, maxBatchSize: 2 } });
    void enqueue(batcher, 1); // runs
    void enqueue(batcher, 2);
    void enqueue(batcher, 3); // queued: 2
    const first = await batcher.waitForPlace(3, 10);
    expect(first).not.toBe('full');
    expect(batcher.held).toBe(1);
    (first as { release(): void }).release();
    expect(batcher.held).toBe(0);
    const woken: string[] = [];
    const got = (who: string) => (p: unknown) => woken.push(`${who}:${typeof p === 'string' ? p : 'place'}`);
    const a = batcher.waitForPlace(2, 10).then(got('a'));
    const b = batcher.waitForPlace(2, 10).then(got('b'));
    const c = batcher.waitForPlace(2, 10).then(got('c'));
    // A later arrival cannot jump the waiters, even with room.
    expect(batcher.reserve(10)).toBeUndefined();
    await finish(0); // the batch [2, 3] leaves the queue: two places, handed to a and b
    await Promise.resolve();
    expect(woken).toEqual(['a:place', 'b:place']);
    expect(batcher.held).toBe(2);
    clock.advance(10);
    await c;
    expect(woken).toEqual(['a:place', 'b:place', 'c:full']);
    await Promise.all([a, b]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('held places count against max_queue_size; enqueue takes its place over; a release wakes the next waiter', async () => {
    const { batcher, runs, finish } = setup({ maxQueueSize: 2, settings: { maxQueueDelayMs: 0, maxBatchSize: 1 } });
    void enqueue(batcher, 1); // runs
    const p1 = batcher.reserve(2)!;
    const p2 = batcher.reserve(2)!;
    expect([p1, p2].every((p) => p !== undefined)).toBe(true);
    expect(batcher.reserve(2)).toBeUndefined(); // two held: full although nothing is queued
    // Without a place, a request finds the queue full (the held places count).
    await expect(batcher.enqueue({ payload: 9, rows: 1, shapeKey: 'k', deadline: Infinity })).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    const waiter = batcher.waitForPlace(2, 100);
    const r1 = batcher.enqueue({ payload: 2, rows: 1, shapeKey: 'k', deadline: Infinity, place: p1 });
    expect(batcher.queued).toBe(1);
    expect(batcher.held).toBe(1);
    expect(p1.isHeld).toBe(false);
    p1.release(); // a no-op once taken
    expect(batcher.held).toBe(1);
    p2.release(); // e.g. its body was bad: the place goes to the waiter
    const w = await waiter;
    expect(w).not.toBe('full');
    expect(batcher.held).toBe(1);
    (w as { release(): void }).release();
    expect(batcher.held).toBe(0);
    await finish(0);
    await finish(1);
    await expect(r1).resolves.toBe(20);
    expect(runs.map((r) => r.payloads)).toEqual([[1], [2]]);
  });

  it('a place of another batcher (a reload in between) is given back there, and close() tells waiters', async () => {
    const a = setup({ maxQueueSize: 1, settings: { maxQueueDelayMs: 0, maxBatchSize: 1 } });
    const b = setup({ maxQueueSize: 1, settings: { maxQueueDelayMs: 0, maxBatchSize: 1 } });
    const place = a.batcher.reserve(1)!;
    const r = b.batcher.enqueue({ payload: 5, rows: 1, shapeKey: 'k', deadline: Infinity, place });
    expect(a.batcher.held).toBe(0);
    await b.finish(0);
    await expect(r).resolves.toBe(50);
    const held = a.batcher.reserve(1)!;
    const waiting = a.batcher.waitForPlace(1, 1000);
    void a.batcher.close();
    await expect(waiting).resolves.toBe('closed');
    await expect(a.batcher.enqueue({ payload: 6, rows: 1, shapeKey: 'k', deadline: Infinity, place: held })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(a.batcher.held).toBe(0);
  });
});

describe('Batcher.enqueue with fullWaitMs', () => {
  it('waits for a place instead of refusing at once, and refuses once the wait runs out', async () => {
    const { batcher, clock, runs, finish } = setup({ maxQueueSize: 1, settings: { maxBatchSize: 1 } });
    void enqueue(batcher, 1); // runs
    void enqueue(batcher, 2); // queued: full
    const waiting = batcher.enqueue({ payload: 3, rows: 1, shapeKey: 'k', deadline: Infinity, fullWaitMs: 5 });
    const refused = batcher.enqueue({ payload: 4, rows: 1, shapeKey: 'k', deadline: Infinity, fullWaitMs: 5 });
    await finish(0); // 2 runs, a place opens: 3 takes it
    await Promise.resolve();
    expect(batcher.queued).toBe(1);
    clock.advance(5);
    await expect(refused).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await finish(1);
    await finish(2);
    await expect(waiting).resolves.toBe(30);
    expect(runs.map((r) => r.payloads)).toEqual([[1], [2], [3]]);
  });
});
