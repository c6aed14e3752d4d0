/**
 * Per model-version statistics, kept in the shape of Triton's statistics extension
 * (`GET /v2/models/{m}/stats`): durations are cumulative nanoseconds with counts.
 * `batch_stats` doubles as the batch-size histogram (one entry per executed batch size).
 */

export interface Duration {
  count: number;
  ns: number;
}

export type FailureReason = 'REJECTED' | 'CANCELED' | 'BACKEND' | 'OTHER';

const zero = (): Duration => ({ count: 0, ns: 0 });

function add(d: Duration, ms: number, count = 1): void {
  d.count += count;
  d.ns += Math.round(ms * 1e6);
}

export class ModelStats {
  inferenceCount = 0;
  executionCount = 0;
  lastInference = 0;
  readonly success = zero();
  readonly fail = zero();
  readonly queue = zero();
  readonly computeInput = zero();
  readonly computeInfer = zero();
  readonly computeOutput = zero();
  /** Image decoding and preprocessing (requests with image inputs). */
  readonly preprocess = zero();
  readonly failures: Record<FailureReason, number> = { REJECTED: 0, CANCELED: 0, BACKEND: 0, OTHER: 0 };
  readonly batches = new Map<number, { input: Duration; infer: Duration; output: Duration }>();

  requestSucceeded(totalMs: number, rows: number): void {
    add(this.success, totalMs);
    this.inferenceCount += rows;
    this.lastInference = Date.now();
  }

  requestFailed(totalMs: number, reason: FailureReason): void {
    add(this.fail, totalMs);
    this.failures[reason]++;
  }

  preprocessed(ms: number): void {
    add(this.preprocess, ms);
  }

  queued(ms: number): void {
    add(this.queue, ms);
  }

  executed(rows: number, inputMs: number, inferMs: number, outputMs: number): void {
    this.executionCount++;
    add(this.computeInput, inputMs);
    add(this.computeInfer, inferMs);
    add(this.computeOutput, outputMs);
    let b = this.batches.get(rows);
    if (!b) this.batches.set(rows, (b = { input: zero(), infer: zero(), output: zero() }));
    add(b.input, inputMs);
    add(b.infer, inferMs);
    add(b.output, outputMs);
  }

  /** Triton's `model_stats[]` entry. */
  toTriton(name: string, version: number): Record<string, unknown> {
    return {
      name,
      version: String(version),
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: { ...this.success },
        fail: { ...this.fail },
        queue: { ...this.queue },
        compute_input: { ...this.computeInput },
        compute_infer: { ...this.computeInfer },
        compute_output: { ...this.computeOutput },
        cache_hit: zero(),
        cache_miss: zero(),
        // Not in Triton's shape: decoding and preprocessing of image inputs, before the queue.
        preprocess: { ...this.preprocess },
      },
      batch_stats: [...this.batches.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([size, b]) => ({ batch_size: size, compute_input: { ...b.input }, compute_infer: { ...b.infer }, compute_output: { ...b.output } })),
      failure_reasons: { ...this.failures },
    };
  }
}
