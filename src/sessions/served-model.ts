/**
 * One loaded model version: its onnxruntime sessions (one per instance), its batcher and its
 * statistics. `infer` is the only way requests reach a session. `close()` drains (queued and
 * running requests finish) and then releases the sessions; `destroy()` rejects what is queued.
 */
import { Batcher, type QueuePlace } from '../batching/batcher.js';
import { AgentError, isAgentError } from '../errors.js';
import { batchFeeds, runError, splitOutputs, type RequestResult } from '../execution/batch-runner.js';
import type { ModelSession, ProviderFailure, ProviderName } from '../execution/ort-session.js';
import type { PreparedRequest } from '../protocol/validate-request.js';
import type { CancelSignal } from '../util/cancel.js';
import type { Clock } from '../util/clock.js';
import type { Device } from './memory.js';
import type { ModelSpec } from './model-spec.js';
import { ModelStats, type FailureReason } from './model-stats.js';
import type { WarmupPlan } from './warmup.js';
import type { SequenceParams } from '../sequences/parameters.js';
import { SequenceBatcher } from '../sequences/sequence-batcher.js';
import { addSequenceFeeds } from '../sequences/feeds.js';

export interface InferOptions {
  readonly signal?: CancelSignal | undefined;
  /** The request's `timeout` parameter in microseconds, if it sent one. */
  readonly timeoutMicroseconds?: number | undefined;
  /** The request's `priority` parameter (1 = highest), if it sent one. */
  readonly priority?: number | undefined;
  /** Sequence models: the request's sequence_id / sequence_start / sequence_end. */
  readonly sequence?: SequenceParams | undefined;
  /** How long to wait for a place when the queue is full (ms; default 0 = refuse at once). */
  readonly queueFullWaitMs?: number | undefined;
  /** A place held since admission (holdPlace): the request takes it over in the queue. */
  readonly place?: QueuePlace | undefined;
  /** Told the request's compute time once it ran: its share (by rows) of its batch's run, ms. */
  readonly onCompute?: ((ms: number) => void) | undefined;
}

export interface ModelMemory {
  readonly device: Device;
  /** Bytes charged against the budget: the measured delta, or the file size when larger or unmeasured. */
  readonly bytes: number;
  /** Process memory growth on the device across load and warm-up, when it could be measured. */
  readonly measuredBytes: number | undefined;
  /** Size of the model file(s) loaded (× instances). */
  readonly fileBytes: number;
}

export interface ServedModelInit {
  readonly spec: ModelSpec;
  readonly sessions: readonly ModelSession[];
  readonly fallbacks: readonly ProviderFailure[];
  readonly clock: Clock;
  /** Labels / character dictionaries of postprocessed outputs, by output name. */
  readonly dictionaries?: ReadonlyMap<string, readonly string[]>;
  /** Called where each batch completes (for the batch-size histogram). */
  readonly onBatch?: ((rows: number) => void) | undefined;
  /** Called where a request succeeds, with its duration in ms (for the latency histogram). */
  readonly onRequest?: ((ms: number) => void) | undefined;
  /**
   * The statistics to continue (a reload of the same version): its counters are one series to
   * Prometheus, which may reset only when the series goes away (an unload).
   */
  readonly stats?: ModelStats | undefined;
}

function failureReason(err: unknown): FailureReason {
  if (!isAgentError(err)) return 'OTHER';
  switch (err.code) {
    case 'QUEUE_FULL':
    case 'DEADLINE_EXCEEDED':
    case 'UNAVAILABLE':
      return 'REJECTED';
    case 'CANCELLED':
      return 'CANCELED';
    case 'INTERNAL':
    case 'INVALID_ARGUMENT':
      return 'BACKEND';
    default:
      return 'OTHER';
  }
}

export class ServedModel {
  readonly spec: ModelSpec;
  readonly stats: ModelStats;
  readonly provider: ProviderName;
  readonly fallbacks: readonly ProviderFailure[];
  readonly dictionaries: ReadonlyMap<string, readonly string[]>;
  /** Problems that did not stop the model (failed auto warm-up, fallbacks): index, metadata, logs. */
  readonly warnings: string[] = [];
  /** Informational notes (warm-up skipped and why): metadata and logs. */
  readonly notes: string[] = [];
  /** Load-to-READY time (sessions, completion, warm-up), set once it is READY. */
  loadMs = 0;
  /** Memory charged to this model against its device's budget (set by the manager at load). */
  memory: ModelMemory = { device: 'host', bytes: 0, measuredBytes: undefined, fileBytes: 0 };
  /** Clock time of the last request (or of the load): the LRU order of eviction. */
  lastUsed: number;
  private readonly sessions: readonly ModelSession[];
  private readonly idleSessions: ModelSession[];
  private readonly batcher: Batcher<PreparedRequest, RequestResult>;
  private readonly clock: Clock;
  private released = false;
  private readonly onRequest: ((ms: number) => void) | undefined;
  /** Sequence models run through this instead of the batcher (see sequences/). */
  readonly sequences: SequenceBatcher | undefined;
  /** Every output name, in model order (what most batches ask for). */
  private readonly allOutputs: string[];

  constructor(init: ServedModelInit) {
    this.spec = init.spec;
    this.allOutputs = init.spec.outputs.map((o) => o.name);
    this.stats = init.stats ?? new ModelStats();
    this.sessions = init.sessions;
    this.idleSessions = [...init.sessions];
    this.provider = init.sessions[0]!.provider;
    this.fallbacks = init.fallbacks;
    this.dictionaries = init.dictionaries ?? new Map();
    this.clock = init.clock;
    this.onRequest = init.onRequest;
    this.lastUsed = init.clock.now();
    this.batcher = new Batcher<PreparedRequest, RequestResult>({
      settings: this.spec.batching,
      maxQueueSize: this.spec.queuePolicy.max_queue_size,
      instances: this.sessions.length,
      priorityLevels: this.spec.priorityLevels,
      clock: this.clock,
      execute: (requests, rows) => this.execute(requests, rows),
      onBatch: (r) => {
        for (const ms of r.queueMs) this.stats.queued(ms);
        init.onBatch?.(r.rows);
      },
    });
    const seq = this.spec.sequence;
    this.sequences = seq && new SequenceBatcher({
      spec: this.spec,
      seq,
      instances: this.sessions.length,
      clock: this.clock,
      run: (feeds, names) => this.runOnIdleSession(feeds, names),
      onBatch: (rows, inputMs, inferMs, outputMs, queueMs) => {
        for (const ms of queueMs) this.stats.queued(ms);
        this.stats.executed(rows, inputMs, inferMs, outputMs);
        init.onBatch?.(rows);
      },
    });
  }

  /** Compute time of every batch this model ran in this process (feeds + run + split), ms. */
  computeMsTotal = 0;
  private readonly computeShare = new WeakMap<PreparedRequest, number>();

  get queued(): number {
    return this.batcher.queued + (this.sequences?.queued ?? 0);
  }

  get executing(): number {
    return this.batcher.executing + (this.sequences?.executing ?? 0);
  }

  /** Queue places held by admitted requests still on their way to the queue (holdPlace). */
  get heldPlaces(): number {
    return this.batcher.held;
  }

  /** Requests inside the batches running now. */
  get running(): number {
    return this.batcher.running;
  }

  /**
   * For admission before the body (http/admission.ts): a place held in the queue until the
   * request enqueues (pass it in InferOptions.place) or releases it; 'full' when none was free
   * within `ms`; undefined when this model holds no places (no max_queue_size, a sequence
   * model, or unloading): the request goes on and the queue decides as it arrives.
   */
  async holdPlace(ms: number): Promise<QueuePlace | 'full' | undefined> {
    const now = this.placeNow();
    if (now !== 'wait') return now;
    const place = await this.batcher.waitForPlace(this.spec.queuePolicy.max_queue_size, ms);
    return place === 'closed' ? undefined : place;
  }

  /** holdPlace without waiting: a place, 'wait' when the queue is full now, or undefined as there. */
  placeNow(): QueuePlace | 'wait' | undefined {
    const max = this.spec.queuePolicy.max_queue_size;
    if (max <= 0 || this.sequences || this.batcher.closed) return undefined;
    return this.batcher.reserve(max) ?? 'wait';
  }

  /** Requests queued or running: such a model is never evicted. */
  get busy(): boolean {
    return !this.batcher.idle || !(this.sequences?.idle ?? true);
  }

  /** Live sequences hold state here: such a model is not evicted either (see model-manager). */
  get holdsSequences(): boolean {
    return (this.sequences?.live ?? 0) > 0;
  }

  /**
   * Run the warm-up plan on every instance, before READY (see warmup.ts): a failing
   * `model_warmup` sample fails the load; a failing automatic warm-up only leaves a warning.
   */
  async warmUp(plan: WarmupPlan): Promise<void> {
    if (plan.kind === 'skip') {
      this.notes.push(plan.note);
      return;
    }
    for (const session of this.sessions) {
      for (const sample of plan.samples) {
        for (let i = 0; i < sample.count; i++) {
          try {
            const feeds = batchFeeds(this.spec, [sample.request], sample.request.rows);
            // A sequence model also gets its controls, initial states and constants: one fresh sequence per row.
            if (this.spec.sequence) {
              const rows = Array.from({ length: Math.max(1, sample.request.rows) }, () => ({ start: true, end: true, corrId: 1, state: new Map() }));
              addSequenceFeeds(this.spec.sequence, rows, this.spec.maxBatchSize > 0, feeds);
            }
            await session.run(feeds, this.spec.outputs.map((o) => o.name));
          } catch (err) {
            const why = (err as Error).message;
            if (plan.kind === 'samples') throw new Error(`model_warmup sample '${sample.name}' failed: ${why}`);
            this.warnings.push(`auto warm-up failed: ${why}; give model_warmup to warm up with real inputs`);
            return;
          }
        }
      }
    }
  }

  async infer(req: PreparedRequest, opts: InferOptions = {}): Promise<RequestResult> {
    const start = this.clock.now();
    this.lastUsed = start;
    try {
      if (this.sequences) {
        opts.place?.release(); // sequence models hold no places (holdPlace); never leak one
        const result = await this.sequences.enqueue(req, opts.sequence, opts.signal);
        this.stats.requestSucceeded(this.clock.now() - start, req.rows);
        return result;
      }
      const result = await this.batcher.enqueue({
        payload: req,
        rows: req.rows,
        shapeKey: req.shapeKey,
        deadline: this.deadline(start, opts.timeoutMicroseconds),
        signal: opts.signal,
        priority: this.priorityLevel(opts.priority),
        fullWaitMs: opts.queueFullWaitMs,
        place: opts.place,
      });
      const ms = this.clock.now() - start;
      this.stats.requestSucceeded(ms, req.rows);
      this.onRequest?.(ms);
      opts.onCompute?.(this.computeShare.get(req) ?? 0);
      return result;
    } catch (err) {
      this.stats.requestFailed(this.clock.now() - start, failureReason(err));
      throw err;
    }
  }

  private deadline(now: number, requested: number | undefined): number {
    const policy = this.spec.queuePolicy;
    if (policy.timeout_action === 'DELAY') return Infinity;
    let us = policy.default_timeout_microseconds;
    if (requested !== undefined && policy.allow_timeout_override) us = requested;
    return us > 0 ? now + us / 1000 : Infinity;
  }

  private priorityLevel(priority: number | undefined): number {
    const levels = this.spec.priorityLevels;
    if (levels === 0) return 0;
    const p = priority !== undefined && priority >= 1 && priority <= levels ? priority : this.spec.defaultPriorityLevel || levels;
    return p - 1;
  }

  private async execute(requests: readonly PreparedRequest[], rows: number): Promise<RequestResult[]> {
    const session = this.idleSessions.pop();
    if (!session) throw new AgentError('INTERNAL', 'no idle session for a dispatched batch (this is a bug)');
    try {
      const t0 = this.clock.now();
      const feeds = batchFeeds(this.spec, requests, rows);
      const t1 = this.clock.now();
      let outputs;
      try {
        outputs = await session.run(feeds, this.wantedOutputs(requests));
      } catch (err) {
        throw runError(this.spec, err);
      }
      const t2 = this.clock.now();
      const results = splitOutputs(this.spec, requests, rows, outputs);
      const t3 = this.clock.now();
      this.stats.executed(rows, t1 - t0, t2 - t1, t3 - t2);
      // Cost accounting: each request's share of the batch's run, by rows (the total is exact).
      this.computeMsTotal += t3 - t0;
      for (const r of requests) this.computeShare.set(r, rows > 0 ? ((t3 - t0) * r.rows) / rows : (t3 - t0) / requests.length);
      return results;
    } finally {
      this.idleSessions.push(session);
    }
  }

  /** One run on an idle session (the sequence batcher's batches). */
  private async runOnIdleSession(feeds: Parameters<ModelSession['run']>[0], names: readonly string[]): ReturnType<ModelSession['run']> {
    const session = this.idleSessions.pop();
    if (!session) throw new AgentError('INTERNAL', 'no idle session for a dispatched batch (this is a bug)');
    try {
      return await session.run(feeds, names);
    } finally {
      this.idleSessions.push(session);
    }
  }

  /** The outputs any request of the batch asked for (the union), in model order. */
  private wantedOutputs(requests: readonly PreparedRequest[]): string[] {
    // Most requests want every output: answer that without building sets per batch.
    if (requests.every((r) => r.outputs.length === this.allOutputs.length)) return this.allOutputs;
    if (requests.length === 1) return requests[0]!.outputs.map((o) => o.name);
    const wanted = new Set(requests.flatMap((r) => r.outputs.map((o) => o.name)));
    return this.spec.outputs.filter((o) => wanted.has(o.name)).map((o) => o.name);
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    return Promise.all([this.batcher.whenIdle(), this.sequences?.whenIdle()]).then(() => undefined);
  }

  /** Finish everything queued and running, then free the sessions. */
  async close(): Promise<void> {
    await Promise.all([this.batcher.close(), this.sequences?.close()]);
    await this.release();
  }

  /** Reject everything queued with `err`, wait for running batches, free the sessions. */
  async destroy(err: Error): Promise<void> {
    this.batcher.destroy(err);
    await Promise.all([this.batcher.close(), this.sequences?.destroy(err)]);
    await this.release();
  }

  private async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await Promise.allSettled(this.sessions.map((s) => s.release()));
  }
}
