/**
 * The sequence batcher of one model version: each live sequence has its queue of chunks and
 * its implicit state (host memory); the policy (policy.ts) picks which sequences' next chunks
 * run together; at most `instances` batches run at once.
 *
 * Contracts:
 * - a sequence exists from its `sequence_start` request to its `sequence_end` request, or until
 *   it has been idle for max_sequence_idle_microseconds; its state lives as long;
 * - a chunk that fails leaves the sequence's state as it was (the chunk did not happen);
 * - `close()` (drain/unload) refuses new requests with a reason, runs what is queued, then
 *   ends every live sequence; `destroy(err)` rejects what is queued at once.
 * Recently ended sequences are remembered (bounded) so that the next request of one is told why.
 */
import { AgentError } from '../errors.js';
import { batchFeeds, runError, splitOutputs, type RequestResult } from '../execution/batch-runner.js';
import type { RunInput, RunOutput } from '../execution/ort-session.js';
import type { PreparedRequest } from '../protocol/validate-request.js';
import type { ModelSpec } from '../sessions/model-spec.js';
import type { CancelSignal } from '../util/cancel.js';
import type { Clock } from '../util/clock.js';
import { deferred, type Deferred } from '../util/deferred.js';
import type { TensorData } from '../execution/datatypes.js';
import { addSequenceFeeds, splitStates } from './feeds.js';
import { sequenceKey, sequenceText, type SequenceParams } from './parameters.js';
import { admitSequence, decideSequenceBatch, expiredSequences, nextExpiry, type SequencePolicySettings, type SequenceView } from './policy.js';
import type { SequenceSpec } from './spec.js';

interface Chunk {
  readonly req: PreparedRequest;
  readonly start: boolean;
  readonly end: boolean;
  readonly enqueuedAt: number;
  readonly reply: Deferred<RequestResult>;
  unsubscribe: (() => void) | undefined;
}

interface Sequence {
  readonly key: string;
  readonly id: number | string;
  readonly slot: number;
  readonly queue: Chunk[];
  state: ReadonlyMap<string, TensorData>;
  running: boolean;
  /** Its sequence_end chunk has arrived: later requests are refused. */
  ending: boolean;
  lastActive: number;
}

/** Counters for stats and metrics. */
export interface SequenceCounters {
  live: number;
  started: number;
  ended: number;
  expired: number;
  /** Batches that held chunks of more than one sequence. */
  mergedBatches: number;
  /** Largest number of sequences in one batch so far. */
  maxSequencesPerBatch: number;
}

export interface SequenceBatcherOptions {
  readonly spec: ModelSpec;
  readonly seq: SequenceSpec;
  readonly instances: number;
  readonly clock: Clock;
  /** Run feeds on an idle session. */
  readonly run: (feeds: Record<string, RunInput>, outputNames: readonly string[]) => Promise<Record<string, RunOutput>>;
  /** Each batch: chunks, and the ms to build feeds / run / split. */
  readonly onBatch?: (rows: number, inputMs: number, inferMs: number, outputMs: number, queueMs: readonly number[]) => void;
}

const REMEMBERED = 10_000;

export class SequenceBatcher {
  private readonly sequences = new Map<string, Sequence>();
  private readonly gone = new Map<string, string>();
  private readonly settings: SequencePolicySettings;
  private inFlight = 0;
  private timer: (() => void) | undefined;
  private closing: string | undefined;
  private readonly idleWaiters: (() => void)[] = [];
  readonly counters: SequenceCounters = { live: 0, started: 0, ended: 0, expired: 0, mergedBatches: 0, maxSequencesPerBatch: 0 };

  constructor(private readonly o: SequenceBatcherOptions) {
    this.settings = {
      strategy: o.seq.strategy,
      maxBatchSize: Math.max(1, o.spec.maxBatchSize),
      preferredBatchSizes: o.seq.preferredBatchSizes,
      maxQueueDelayMs: o.seq.maxQueueDelayMs,
      maxSequences: o.seq.maxSequences,
      idleMs: o.seq.idleMs,
    };
  }

  get queued(): number {
    let n = 0;
    for (const s of this.sequences.values()) n += s.queue.length;
    return n;
  }

  get executing(): number {
    return this.inFlight;
  }

  get idle(): boolean {
    return this.inFlight === 0 && this.queued === 0;
  }

  enqueue(req: PreparedRequest, params: SequenceParams | undefined, signal?: CancelSignal): Promise<RequestResult> {
    try {
      return this.admit(req, params, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private admit(req: PreparedRequest, params: SequenceParams | undefined, signal?: CancelSignal): Promise<RequestResult> {
    const model = this.o.spec.name;
    if (!params) {
      throw new AgentError('INVALID_ARGUMENT', `model '${model}' is a sequence model: every request needs the parameter 'sequence_id' (a non-zero unsigned integer or a non-empty string), with 'sequence_start': true on its first request and 'sequence_end': true on its last`);
    }
    const key = sequenceKey(params.id);
    const text = sequenceText(params.id);
    if (this.closing) throw new AgentError('UNAVAILABLE', `model '${model}' is ${this.closing}: sequence ${text} has ended; start it again once the model is back`, { retryAfterSeconds: 1 });
    if (this.o.spec.maxBatchSize > 0 && req.rows !== 1) {
      throw new AgentError('INVALID_ARGUMENT', `a request of sequence model '${model}' carries one chunk (batch size 1), got ${req.rows} rows`);
    }
    if (typeof params.id === 'string' && this.o.seq.controls.some((c) => c.kind === 'CONTROL_SEQUENCE_CORRID' && c.datatype !== 'BYTES')) {
      throw new AgentError('INVALID_ARGUMENT', `model '${model}' takes integer sequence ids (its CONTROL_SEQUENCE_CORRID input is numeric), got the string ${text}`);
    }
    const now = this.o.clock.now();
    let seq = this.sequences.get(key);
    if (params.start) {
      if (seq) {
        throw new AgentError('INVALID_ARGUMENT', `sequence ${text} of model '${model}' is already live; end it (sequence_end: true) before starting it again, or use another sequence_id`);
      }
      const taken = new Set([...this.sequences.values()].map((s) => s.slot));
      const a = admitSequence(taken, this.settings);
      if (!a.ok) throw new AgentError('QUEUE_FULL', `model '${model}' cannot start sequence ${text}: ${a.reason}`, { retryAfterSeconds: 1 });
      seq = { key, id: params.id, slot: a.slot, queue: [], state: new Map(), running: false, ending: false, lastActive: now };
      this.sequences.set(key, seq);
      this.gone.delete(key);
      this.counters.started++;
      this.counters.live = this.sequences.size;
    } else if (!seq) {
      const why = this.gone.get(key);
      throw new AgentError('INVALID_ARGUMENT', `sequence ${text} of model '${model}' is ${why ?? 'unknown (never started)'}; send its first request with sequence_start: true`);
    } else if (seq.ending) {
      throw new AgentError('INVALID_ARGUMENT', `sequence ${text} of model '${model}' has ended (its sequence_end request is queued); start it again with sequence_start: true`);
    }
    if (signal?.aborted) throw new AgentError('CANCELLED', 'the client cancelled the request');
    const chunk: Chunk = { req, start: params.start, end: params.end, enqueuedAt: now, reply: deferred<RequestResult>(), unsubscribe: undefined };
    if (params.end) seq.ending = true;
    seq.lastActive = now;
    const owner = seq;
    if (signal) {
      chunk.unsubscribe = signal.subscribe(() => {
        const i = owner.queue.indexOf(chunk);
        if (i < 0) return;
        owner.queue.splice(i, 1);
        if (chunk.end) owner.ending = false;
        chunk.reply.reject(new AgentError('CANCELLED', 'the client cancelled the request before it ran'));
        this.pump();
      });
    }
    seq.queue.push(chunk);
    this.pump();
    return chunk.reply.promise;
  }

  private views(): SequenceView[] {
    return [...this.sequences.values()].map((s) => ({
      key: s.key,
      running: s.running,
      head: s.queue[0] && { enqueuedAt: s.queue[0].enqueuedAt, shapeKey: s.queue[0].req.shapeKey },
      lastActive: s.lastActive,
      slot: s.slot,
    }));
  }

  private end(key: string, why: string, counter: 'ended' | 'expired'): void {
    if (!this.sequences.delete(key)) return;
    this.counters[counter]++;
    this.counters.live = this.sequences.size;
    this.gone.set(key, why);
    if (this.gone.size > REMEMBERED) this.gone.delete(this.gone.keys().next().value!);
  }

  private pump(): void {
    this.timer?.();
    this.timer = undefined;
    const now = this.o.clock.now();
    for (const key of expiredSequences(this.views(), now, this.settings.idleMs)) {
      this.end(key, `expired (idle for more than max_sequence_idle_microseconds ${this.settings.idleMs * 1000})`, 'expired');
    }
    let wakeAt = Infinity;
    while (this.inFlight < this.o.instances) {
      const d = decideSequenceBatch(this.views(), now, this.settings);
      if (d.kind === 'dispatch') {
        this.dispatch(d.keys.map((k) => this.sequences.get(k)!), now);
        continue;
      }
      if (d.kind === 'wait') wakeAt = now + d.ms;
      break;
    }
    wakeAt = Math.min(wakeAt, nextExpiry(this.views(), this.settings.idleMs));
    if (wakeAt !== Infinity) this.timer = this.o.clock.setTimer(Math.max(0, wakeAt - now), () => this.pump());
    this.notifyIdle();
  }

  private dispatch(batch: Sequence[], now: number): void {
    this.inFlight++;
    const chunks = batch.map((s) => {
      s.running = true;
      const c = s.queue.shift()!;
      c.unsubscribe?.();
      return c;
    });
    if (batch.length > 1) this.counters.mergedBatches++;
    this.counters.maxSequencesPerBatch = Math.max(this.counters.maxSequencesPerBatch, batch.length);
    const queueMs = chunks.map((c) => now - c.enqueuedAt);
    void this.execute(batch, chunks).then(
      (results) => {
        batch.forEach((s, i) => {
          s.state = results.states[i]!;
          chunks[i]!.reply.resolve(results.outputs[i]!);
        });
        this.o.onBatch?.(chunks.length, results.ms[0], results.ms[1], results.ms[2], queueMs);
      },
      (err: unknown) => {
        for (const c of chunks) c.reply.reject(err);
      },
    ).finally(() => {
      this.inFlight--;
      const at = this.o.clock.now();
      batch.forEach((s, i) => {
        s.running = false;
        s.lastActive = at;
        if (chunks[i]!.end) this.end(s.key, 'ended (its sequence_end request ran)', 'ended');
      });
      this.pump();
    });
  }

  private async execute(batch: Sequence[], chunks: Chunk[]): Promise<{ outputs: RequestResult[]; states: Map<string, TensorData>[]; ms: [number, number, number] }> {
    const { spec, seq, clock } = this.o;
    const batched = spec.maxBatchSize > 0;
    const t0 = clock.now();
    const requests = chunks.map((c) => c.req);
    const rows = requests.length;
    const feeds = addSequenceFeeds(seq, batch.map((s, i) => ({ start: chunks[i]!.start, end: chunks[i]!.end, corrId: s.id, state: s.state })), batched, batchFeeds(spec, requests, rows));
    const wanted = new Set(requests.flatMap((r) => r.outputs.map((o) => o.name)));
    const names = [...spec.outputs.filter((o) => wanted.has(o.name)).map((o) => o.name), ...seq.states.map((s) => s.outputName)];
    const t1 = clock.now();
    let outputs: Record<string, RunOutput>;
    try {
      outputs = await this.o.run(feeds, names);
    } catch (err) {
      throw runError(spec, err);
    }
    const t2 = clock.now();
    let states: Map<string, TensorData>[];
    try {
      states = splitStates(seq, outputs, rows, batched);
    } catch (err) {
      throw new AgentError('INTERNAL', `model '${spec.name}': ${(err as Error).message}`);
    }
    const results = splitOutputs(spec, requests, rows, outputs);
    return { outputs: results, states, ms: [t1 - t0, t2 - t1, clock.now() - t2] };
  }

  /** Live sequences now. */
  get live(): number {
    return this.sequences.size;
  }

  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuse new requests (`why`: 'unloading', 'draining'), finish what is queued, then end every live sequence. */
  async close(why = 'unloading'): Promise<void> {
    this.closing ??= why;
    await this.whenIdle();
    this.endAll(`ended (the model was ${this.closing === 'unloading' ? 'unloaded' : this.closing})`);
  }

  /**
   * End every live sequence that has nothing queued or running (the node drained: what was
   * accepted has run); the next request of each is told `why`. Returns how many ended.
   */
  endIdleSequences(why: string): number {
    let n = 0;
    for (const s of [...this.sequences.values()]) {
      if (s.running || s.queue.length > 0) continue;
      this.end(s.key, why, 'ended');
      n++;
    }
    this.pump();
    return n;
  }

  /** Reject everything queued with `err`, end every sequence once running batches finish. */
  async destroy(err: Error): Promise<void> {
    this.closing ??= 'unloading';
    for (const s of this.sequences.values()) {
      for (const c of s.queue.splice(0)) {
        c.unsubscribe?.();
        c.reply.reject(err);
      }
    }
    this.notifyIdle();
    await this.whenIdle();
    this.endAll('ended (the model was unloaded)');
  }

  private endAll(why: string): void {
    this.timer?.();
    this.timer = undefined;
    for (const key of [...this.sequences.keys()]) this.end(key, why, 'ended');
  }

  /** Stats in the form of `GET /v2/models/{m}/stats` (`sequence_stats`). */
  snapshot(): Record<string, number | string> {
    return {
      strategy: this.o.seq.strategy,
      live_sequences: this.sequences.size,
      max_sequences: this.settings.maxSequences,
      sequence_starts: this.counters.started,
      sequence_ends: this.counters.ended,
      sequence_timeouts: this.counters.expired,
      merged_batches: this.counters.mergedBatches,
      max_sequences_per_batch: this.counters.maxSequencesPerBatch,
    };
  }

  private notifyIdle(): void {
    if (!this.idle) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
