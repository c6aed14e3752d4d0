/**
 * A per-model queue that forms batches with `decideNextBatch` and runs them on at most
 * `instances` executions at a time. Each request has its own reply slot (a deferred): a
 * batch that fails rejects only its own requests, each with the error.
 *
 * Admission and cancellation happen here, not in the routes:
 * - a full queue (max_queue_size) refuses with QUEUE_FULL, at once or after waiting
 *   `fullWaitMs` for a place (places go to waiters in arrival order);
 * - a place can be held ahead of the request (`reserve`, `waitForPlace`): admission before the
 *   body takes one from the headers, and the request takes it over at `enqueue` once decoded.
 *   Held places count against max_queue_size, so a burst cannot admit more requests than the
 *   queue holds (each over-admitted one would be read and decoded only to wait again here);
 * - an expired deadline rejects with DEADLINE_EXCEEDED without running;
 * - an aborted signal (client went away) removes the request before it runs.
 *
 * Each arrival is recorded (was anything queued or running?) for the work-conserving rule of
 * policy.ts, which the batcher consults only while an execution slot is free.
 *
 * `close()` stops taking requests and resolves once everything queued and running is done;
 * `destroy(err)` rejects everything still queued at once.
 */
import { AgentError } from '../errors.js';
import type { CancelSignal } from '../util/cancel.js';
import type { Clock } from '../util/clock.js';
import { deferred, type Deferred } from '../util/deferred.js';
import { ArrivalTracker } from './arrivals.js';
import { decideNextBatch, type BatchingSettings, type PendingView } from './policy.js';

export interface EnqueueOptions<P> {
  readonly payload: P;
  readonly rows: number;
  readonly shapeKey: string;
  /** Absolute clock time (ms) after which the request is rejected unrun; Infinity for none. */
  readonly deadline: number;
  readonly signal?: CancelSignal | undefined;
  /** 0 is the highest priority; each level is FIFO. */
  readonly priority?: number;
  /** When the queue is full, wait up to this long (ms) for a place before QUEUE_FULL (default 0). */
  readonly fullWaitMs?: number;
  /** A place held for this request since admission (reserve / waitForPlace): taken over here. */
  readonly place?: QueuePlace | undefined;
}

/**
 * A place in a batcher's queue held for one request between admission and `enqueue`. The
 * holder must either pass it to `enqueue` (which takes it over) or `release()` it; release is
 * idempotent and a no-op once taken, so a safety net may call it on every request's end.
 */
export class QueuePlace {
  private held = true;
  constructor(
    readonly owner: object,
    private readonly giveBack: () => void,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.giveBack();
  }

  /** For the owning batcher's enqueue: true when the place was still held (it is now taken). */
  takeFor(owner: object): boolean {
    if (!this.held || owner !== this.owner) return false;
    this.held = false;
    return true;
  }
}

interface Entry<P, R> extends PendingView {
  readonly payload: P;
  readonly deadline: number;
  readonly reply: Deferred<R>;
  readonly signal: CancelSignal | undefined;
  unsubscribe: (() => void) | undefined;
}

/** What the batcher reports after each execution, for statistics. */
export interface BatchReport {
  readonly requests: number;
  readonly rows: number;
  /** Per request: ms spent queued. */
  readonly queueMs: readonly number[];
  readonly computeMs: number;
  readonly ok: boolean;
}

export interface BatcherOptions<P, R> {
  readonly settings: BatchingSettings;
  /** 0 = unbounded. */
  readonly maxQueueSize: number;
  /** Executions in flight at once (instance_group count). */
  readonly instances: number;
  readonly priorityLevels: number;
  readonly clock: Clock;
  /** Run one batch; must return one result per payload, in order. */
  readonly execute: (payloads: readonly P[], rows: number) => Promise<readonly R[]>;
  readonly onBatch?: (report: BatchReport) => void;
  /** Requests dropped unrun: 'cancelled' (client gone) or 'timeout'. */
  readonly onDrop?: (reason: 'cancelled' | 'timeout') => void;
}

export class Batcher<P, R> {
  private readonly queues: Entry<P, R>[][];
  private inFlight = 0;
  /** Requests inside the batches running now (what a router calls "running requests"). */
  private runningRequests = 0;
  private cancelTimer: (() => void) | undefined;
  private closing = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly arrivals = new ArrivalTracker();
  /** Admission waiting for a place (FIFO), see waitForPlace. */
  private readonly roomWaiters: { max: number; wake: (place: QueuePlace | 'closed') => void }[] = [];
  /** Places held by admitted requests that have not reached enqueue yet (see QueuePlace). */
  private reserved = 0;

  constructor(private readonly opts: BatcherOptions<P, R>) {
    this.queues = Array.from({ length: Math.max(1, opts.priorityLevels) }, () => []);
  }

  /** Requests waiting (not yet running). */
  get queued(): number {
    let n = 0;
    for (const q of this.queues) n += q.length;
    return n;
  }

  /** Batches running now. */
  get executing(): number {
    return this.inFlight;
  }

  /** Requests in the batches running now. */
  get running(): number {
    return this.runningRequests;
  }

  get idle(): boolean {
    return this.inFlight === 0 && this.queued === 0;
  }

  /** close() or destroy() was called: no new requests, no places. */
  get closed(): boolean {
    return this.closing;
  }

  /** Places held now by admitted requests on their way to enqueue. */
  get held(): number {
    return this.reserved;
  }

  enqueue(o: EnqueueOptions<P>): Promise<R> {
    // A place held for this request becomes its queue entry (queued + held stays the same).
    let placed = false;
    if (o.place) {
      placed = o.place.takeFor(this);
      if (placed) this.reserved--;
      else o.place.release(); // another batcher's (a reload in between): give it back there
    }
    if (this.closing) {
      if (placed) this.wakeRoomWaiters();
      return Promise.reject(new AgentError('UNAVAILABLE', 'the model is unloading and takes no new requests', { retryAfterSeconds: 1 }));
    }
    if (!placed && this.opts.maxQueueSize > 0 && this.queued + this.reserved >= this.opts.maxQueueSize) {
      const full = () =>
        new AgentError('QUEUE_FULL', `the model's queue is full (max_queue_size ${this.opts.maxQueueSize}); retry later`, {
          retryAfterSeconds: 1,
        });
      const wait = o.fullWaitMs ?? 0;
      if (wait <= 0) return Promise.reject(full());
      // 'closed': enqueue again without a place, which answers the unloading refusal.
      return this.waitForPlace(this.opts.maxQueueSize, wait).then((place) =>
        place === 'full' ? Promise.reject(full()) : this.enqueue({ ...o, place: place === 'closed' ? undefined : place, fullWaitMs: 0 }),
      );
    }
    if (o.signal?.aborted) {
      if (placed) this.wakeRoomWaiters();
      return Promise.reject(new AgentError('CANCELLED', 'the client cancelled the request'));
    }
    const level = Math.min(Math.max(0, o.priority ?? 0), this.queues.length - 1);
    const now = this.opts.clock.now();
    this.arrivals.record(now, !this.idle);
    const entry: Entry<P, R> = {
      payload: o.payload,
      rows: o.rows,
      shapeKey: o.shapeKey,
      enqueuedAt: now,
      deadline: o.deadline,
      reply: deferred<R>(),
      signal: o.signal,
      unsubscribe: undefined,
    };
    if (o.signal) {
      entry.unsubscribe = o.signal.subscribe(() => {
        if (this.remove(entry)) {
          this.opts.onDrop?.('cancelled');
          entry.reply.reject(new AgentError('CANCELLED', 'the client cancelled the request before it ran'));
          this.notifyIdle();
        }
      });
    }
    this.queues[level]!.push(entry);
    this.pump();
    return entry.reply.promise;
  }

  /**
   * A place held for a request that will `enqueue` later, when fewer than `max` are queued or
   * held and nobody waits ahead of it; undefined when there is none now (or the batcher closes).
   */
  reserve(max: number): QueuePlace | undefined {
    if (this.closing || this.roomWaiters.length > 0 || this.queued + this.reserved >= max) return undefined;
    return this.hold();
  }

  /**
   * A held place as soon as one is free, 'full' after `ms` without one, 'closed' when the
   * batcher stops taking requests meanwhile. Waiters get places in arrival order, one per free
   * place, handed over synchronously (no later arrival can take it in between).
   */
  waitForPlace(max: number, ms: number): Promise<QueuePlace | 'full' | 'closed'> {
    if (this.closing) return Promise.resolve('closed');
    const now = this.reserve(max);
    if (now) return Promise.resolve(now);
    if (ms <= 0) return Promise.resolve('full');
    return new Promise((resolve) => {
      const waiter = {
        max,
        wake: (place: QueuePlace | 'closed') => {
          cancel();
          resolve(place);
        },
      };
      const cancel = this.opts.clock.setTimer(ms, () => {
        const i = this.roomWaiters.indexOf(waiter);
        if (i >= 0) this.roomWaiters.splice(i, 1);
        resolve('full');
      });
      this.roomWaiters.push(waiter);
    });
  }

  private hold(): QueuePlace {
    this.reserved++;
    return new QueuePlace(this, () => {
      this.reserved--;
      this.wakeRoomWaiters();
    });
  }

  private wakeRoomWaiters(): void {
    while (this.roomWaiters.length > 0 && this.queued + this.reserved < this.roomWaiters[0]!.max) {
      this.roomWaiters.shift()!.wake(this.closing ? 'closed' : this.hold());
    }
  }

  /** Resolves when nothing is queued or running (new requests are still taken). */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop taking requests; resolves when everything queued and running has finished. */
  close(): Promise<void> {
    this.closing = true;
    for (const w of this.roomWaiters.splice(0)) w.wake('closed');
    return this.whenIdle();
  }

  /** Reject everything still queued with `err` (running batches finish on their own). */
  destroy(err: Error): void {
    this.closing = true;
    this.cancelTimer?.();
    for (const w of this.roomWaiters.splice(0)) w.wake('closed');
    for (const q of this.queues) {
      for (const e of q.splice(0)) {
        this.detach(e);
        e.reply.reject(err);
      }
    }
    this.notifyIdle();
  }

  private remove(entry: Entry<P, R>): boolean {
    for (const q of this.queues) {
      const i = q.indexOf(entry);
      if (i >= 0) {
        q.splice(i, 1);
        return true;
      }
    }
    return false;
  }

  private detach(e: Entry<P, R>): void {
    e.unsubscribe?.();
  }

  /** Reject expired requests; return the earliest remaining deadline. */
  private expire(now: number): number {
    let next = Infinity;
    for (const q of this.queues) {
      for (let i = 0; i < q.length; ) {
        const e = q[i]!;
        if (e.deadline <= now) {
          q.splice(i, 1);
          this.detach(e);
          this.opts.onDrop?.('timeout');
          e.reply.reject(new AgentError('DEADLINE_EXCEEDED', 'the request timed out in the queue before it could run'));
        } else {
          if (e.deadline < next) next = e.deadline;
          i++;
        }
      }
    }
    return next;
  }

  private pump(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const now = this.opts.clock.now();
    const nextDeadline = this.expire(now);
    let wakeAt = nextDeadline;
    while (this.inFlight < this.opts.instances) {
      const queue = this.queues.find((q) => q.length > 0);
      if (!queue) break;
      const d = decideNextBatch(queue, now, this.opts.settings, this.arrivals);
      if (d.kind === 'dispatch') {
        this.dispatch(queue.splice(0, d.count), now);
        continue;
      }
      if (d.kind === 'wait') wakeAt = Math.min(wakeAt, now + d.ms);
      break;
    }
    if (wakeAt !== Infinity) this.cancelTimer = this.opts.clock.setTimer(wakeAt - now, () => this.pump());
    if (this.roomWaiters.length > 0) this.wakeRoomWaiters();
    this.notifyIdle();
  }

  private dispatch(batch: Entry<P, R>[], now: number): void {
    this.inFlight++;
    this.runningRequests += batch.length;
    let rows = 0;
    for (const e of batch) {
      this.detach(e);
      rows += e.rows;
    }
    const started = this.opts.clock.now();
    const queueMs = batch.map((e) => now - e.enqueuedAt);
    const finish = (ok: boolean) => {
      this.inFlight--;
      this.runningRequests -= batch.length;
      this.opts.onBatch?.({ requests: batch.length, rows, queueMs, computeMs: this.opts.clock.now() - started, ok });
      this.pump();
    };
    let running: Promise<readonly R[]>;
    try {
      running = this.opts.execute(batch.map((e) => e.payload), rows);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (results) => {
        batch.forEach((e, i) => e.reply.resolve(results[i]!));
        finish(true);
      },
      (err: unknown) => {
        for (const e of batch) e.reply.reject(err);
        finish(false);
      },
    );
  }

  private notifyIdle(): void {
    if (!this.idle) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
