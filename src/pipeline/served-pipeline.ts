/**
 * A pipeline declared in the model repository (Triton would call it an ensemble): a folder
 * with a config of platform 'ocr_pipeline' and no model file. Each stage runs through its
 * model's batcher (via `runModel`), so stages of concurrent requests batch together. A failed
 * stage fails the request with an error naming the stage; image errors are the client's (400),
 * a model that cannot take work keeps its own code (429/503/504).
 */
import { AgentError, isAgentError } from '../errors.js';
import { isImageError, type DecodeQueue } from '../preprocess/image.js';
import type { Duration } from '../sessions/model-stats.js';
import { OcrStageError, runOcr, type OcrConfig, type OcrLine, type OcrStage, type RunModel } from './ocr.js';

export interface PipelineStats {
  success: Duration;
  fail: Duration;
  /** Per stage: cumulative time and count. */
  stages: Partial<Record<OcrStage, Duration>>;
}

export class ServedPipeline {
  readonly stats: PipelineStats = { success: { count: 0, ns: 0 }, fail: { count: 0, ns: 0 }, stages: {} };

  constructor(
    readonly name: string,
    readonly config: OcrConfig,
    private readonly deps: { runModel: RunModel; dictionary: readonly string[]; decodeQueue: DecodeQueue; maxPixels: number },
  ) {}

  /** The models the stages run on. */
  get stageModels(): string[] {
    const c = this.config;
    return [c.detection.model, ...(c.direction.enabled ? [c.direction.model] : []), c.recognition.model];
  }

  /** Read the text of one encoded image (`index` names it in errors). */
  async run(image: Uint8Array, index = 0): Promise<OcrLine[]> {
    const started = performance.now();
    const timings: Partial<Record<OcrStage, number>> = {};
    try {
      const lines = await runOcr(image, this.config, { runModel: this.deps.runModel, dictionary: this.deps.dictionary, decodeQueue: this.deps.decodeQueue }, {
        maxPixels: this.deps.maxPixels,
        index,
        timings,
      });
      this.record(this.stats.success, started, timings);
      return lines;
    } catch (err) {
      this.record(this.stats.fail, started, timings);
      throw pipelineError(this.name, err);
    }
  }

  private record(d: Duration, started: number, timings: Partial<Record<OcrStage, number>>): void {
    d.count++;
    d.ns += Math.round((performance.now() - started) * 1e6);
    for (const [stage, ms] of Object.entries(timings) as [OcrStage, number][]) {
      const s = (this.stats.stages[stage] ??= { count: 0, ns: 0 });
      s.count++;
      s.ns += Math.round(ms * 1e6);
    }
  }
}

/** The error a client sees for a failed pipeline run. */
export function pipelineError(name: string, err: unknown): AgentError {
  const cause = err instanceof OcrStageError ? (err.cause ?? err) : err;
  const stage = err instanceof OcrStageError ? err.stage : 'unknown';
  if (isImageError(cause)) return new AgentError('INVALID_ARGUMENT', cause.message);
  if (isAgentError(cause)) {
    return new AgentError(cause.code, `pipeline '${name}' stage '${stage}': ${cause.message}`, cause.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: cause.retryAfterSeconds });
  }
  return new AgentError('INTERNAL', `pipeline '${name}' failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
