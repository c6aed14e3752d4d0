/**
 * Creating onnxruntime sessions: providers are tried in order ("cuda" then "cpu" by default);
 * when one cannot be created the exact cause is kept, logged by the caller and reported per
 * model, and the next provider is tried. Everything hardware-bound sits behind
 * `SessionFactory`, so the rest of the agent can be tested with the real CPU provider.
 */
import '../util/ort-env.js'; // before onnxruntime-node: its telemetry off by default
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { datatypeFromOrt, type Datatype, type OrtType, type TensorData } from './datatypes.js';
import { SessionWorker, WorkerModelSession } from './worker-session.js';
import { liveSessions } from './live-sessions.js';
import { releaseWhenCollected } from '../memory/allocator.js';

/**
 * Node ≥ 24 has a global Float16Array; onnxruntime-common then turns float16 data into one,
 * which onnxruntime-node 1.29's binding refuses ("Tensor.data must be a typed array (4 or
 * Float16Array)"). Its type map is built once, lazily: build it while Float16Array is hidden,
 * so float16 stays a Uint16Array of IEEE half bits, as on Node 20 and 22.
 */
export function keepFloat16AsUint16(ortModule: typeof ort): void {
  const g = globalThis as { Float16Array?: unknown };
  const saved = g.Float16Array;
  if (saved === undefined) return;
  try {
    g.Float16Array = undefined;
    new ortModule.Tensor('float16', new Uint16Array(1), [1]);
  } finally {
    g.Float16Array = saved;
  }
}
keepFloat16AsUint16(ort);

export type ProviderName = 'cuda' | 'cpu';
export const PROVIDERS: readonly ProviderName[] = ['cuda', 'cpu'];

export interface SessionSettings {
  providers: readonly ProviderName[];
  cudaDeviceId: number;
  intraOpThreads: number;
  interOpThreads: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  executionMode: 'sequential' | 'parallel';
  enableCpuMemArena: boolean;
  enableMemPattern: boolean;
  /**
   * Where the session runs: 'worker' (its own thread; runs overlap with HTTP work), 'main'
   * (the event loop's thread; no hop, but a run blocks request handling while it lasts), or
   * 'auto': a worker for the CUDA provider (the GPU computes while the thread only waits);
   * for the CPU provider, a worker when the model file is at least AUTO_WORKER_MODEL_BYTES
   * (its runs take milliseconds: on the event loop's thread they would stall every request
   * meanwhile, and the run and the HTTP work could not use two cores), else the main thread
   * (a run of a small model is shorter than the hop to a worker and back).
   */
  thread: 'worker' | 'main' | 'auto';
  /**
   * onnxruntime's `session.intra_op.allow_spinning` (and inter_op's): idle pool threads
   * spin-wait for the next run. Off by default: between the runs of a server they burn the
   * cores that HTTP needs (the bench's threading scenario measures both).
   */
  allowSpinning: boolean;
}

/** One input or output as the model file declares it; symbolic dims are -1. */
export interface TensorSignature {
  readonly name: string;
  /** undefined when onnxruntime reports a type this agent cannot serve. */
  readonly datatype: Datatype | undefined;
  readonly ortType: string;
  readonly shape: readonly number[];
}

export interface RunOutput {
  readonly type: OrtType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export interface RunInput {
  readonly type: OrtType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

/** What the rest of the agent needs of a session; `release` frees its memory. */
export interface ModelSession {
  readonly provider: ProviderName;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  run(feeds: Record<string, RunInput>, outputNames: readonly string[]): Promise<Record<string, RunOutput>>;
  release(): Promise<void>;
}

export interface ProviderFailure {
  readonly provider: ProviderName;
  readonly error: string;
}

export interface CreatedSession {
  readonly session: ModelSession;
  /** Providers tried before the one used, with why each failed. */
  readonly fallbacks: readonly ProviderFailure[];
}

export interface SessionFactory {
  create(modelPath: string, settings: SessionSettings): Promise<CreatedSession>;
}

/** Folder of onnxruntime-node's core library, where the CUDA provider libraries must sit. */
export function ortLibraryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

const CUDA_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

/**
 * Why the CUDA provider cannot even be attempted, or undefined when its libraries are in
 * place (then onnxruntime's own error, e.g. a missing libcublasLt.so.13, says the rest).
 */
export function cudaProviderMissing(): string | undefined {
  const dir = ortLibraryDir();
  const missing = CUDA_LIBS.filter((f) => !existsSync(path.join(dir, f)));
  if (missing.length === 0) return undefined;
  return `the CUDA execution provider is not installed: ${missing.join(', ')} not found in ${dir} ` +
    `(install it with scripts/install-cuda-provider.sh; see README "GPU")`;
}

function toSignature(m: ort.InferenceSession.ValueMetadata): TensorSignature {
  if (!m.isTensor) return { name: m.name, datatype: undefined, ortType: 'non-tensor', shape: [] };
  return {
    name: m.name,
    datatype: datatypeFromOrt(m.type),
    ortType: m.type,
    shape: m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1)),
  };
}

class OrtModelSession implements ModelSession {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];

  private released = false;

  constructor(private readonly session: ort.InferenceSession, readonly provider: ProviderName) {
    this.inputs = session.inputMetadata.map(toSignature);
    this.outputs = session.outputMetadata.map(toSignature);
    liveSessions.created();
  }

  async run(feeds: Record<string, RunInput>, outputNames: readonly string[]): Promise<Record<string, RunOutput>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    }
    const results = await this.session.run(ortFeeds, outputNames as string[]);
    const out: Record<string, RunOutput> = {};
    for (const name of outputNames) {
      const t = results[name];
      if (!t) throw new Error(`onnxruntime returned no output '${name}'`);
      out[name] = { type: t.type as OrtType, dims: t.dims, data: t.data as TensorData };
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.session.release();
    } finally {
      liveSessions.released();
      // What onnxruntime-node's objects still hold is freed when they are collected: return it then too.
      releaseWhenCollected(this.session);
    }
  }
}

/**
 * Intra-op threads when none are configured: one per core but one (at least 1), so that the
 * event loop keeps a core for HTTP while a run uses the others (onnxruntime's own default is
 * one per physical core, which makes runs and request handling fight for every core).
 */
export function autoIntraOpThreads(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

/** onnxruntime's session options for `settings`, trying `providers` in that order. */
export function ortOptions(settings: SessionSettings, providers: readonly ProviderName[]): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: providers.map((p) => (p === 'cuda' ? { name: 'cuda', deviceId: settings.cudaDeviceId } : 'cpu')),
    graphOptimizationLevel: settings.graphOptimizationLevel,
    executionMode: settings.executionMode,
    enableCpuMemArena: settings.enableCpuMemArena,
    enableMemPattern: settings.enableMemPattern,
    // onnxruntime's own warnings go to stderr in colour; the agent reports failures itself.
    logSeverityLevel: 3,
  };
  opts.intraOpNumThreads = settings.intraOpThreads > 0 ? settings.intraOpThreads : autoIntraOpThreads();
  const spin = settings.allowSpinning ? '1' : '0';
  opts.extra = { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } };
  if (settings.interOpThreads > 0) opts.interOpNumThreads = settings.interOpThreads;
  return opts;
}

/**
 * From this model file size up, `auto` runs a CPU session in a worker thread. Measured on the
 * 2-core bench VM (`npm run bench -- --only 4,fastapi`): mlp_heavy (17 MB, ~15 ms per batch of
 * 64) reached 0.76 of direct onnxruntime on the main thread against 0.99 in a worker; ResNet-18
 * (45 MB) 0.90 against 0.96; the 0.8 MB mlp and the tiny add_sub are faster on the main thread
 * (the hop costs ~140 µs at c=1 there). Set session_thread / --session-thread to decide yourself.
 */
export const AUTO_WORKER_MODEL_BYTES = 4 * 1024 * 1024;

function heavyModel(modelPath: string): boolean {
  try {
    return statSync(modelPath).size >= AUTO_WORKER_MODEL_BYTES;
  } catch {
    return false; // the create below reports a missing file
  }
}

/** The real factory: onnxruntime-node, trying `settings.providers` in order. */
export const ortSessionFactory: SessionFactory = {
  async create(modelPath, settings) {
    let worker: SessionWorker | undefined;
    const open = (providers: readonly ProviderName[]): Promise<ModelSession> => {
      const options = ortOptions(settings, providers);
      const inWorker = settings.thread === 'worker' || (settings.thread === 'auto' && (providers[0] === 'cuda' || heavyModel(modelPath)));
      if (inWorker) {
        worker ??= new SessionWorker();
        return WorkerModelSession.create(worker, modelPath, options, providers[0]!);
      }
      // A worker started for a provider that failed is not needed any more.
      void worker?.terminate();
      worker = undefined;
      return ort.InferenceSession.create(modelPath, options).then((s) => new OrtModelSession(s, providers[0]!));
    };
    const fallbacks: ProviderFailure[] = [];
    try {
      for (let i = 0; i < settings.providers.length; i++) {
        const provider = settings.providers[i]!;
        if (provider === 'cuda') {
          const missing = cudaProviderMissing();
          if (missing) {
            fallbacks.push({ provider, error: missing });
            continue;
          }
        }
        try {
          // The remaining providers stay in the list, so nodes the GPU cannot run fall to the CPU.
          return { session: await open(settings.providers.slice(i)), fallbacks };
        } catch (err) {
          const message = (err as Error).message;
          // A model file onnxruntime cannot parse fails the same way on every provider.
          if (provider === 'cpu' || /protobuf parsing failed|No such file|Load model/i.test(message)) {
            throw new Error(
              `onnxruntime could not create a session for ${modelPath}: ${message}` +
                (fallbacks.length ? ` (after ${fallbacks.map((f) => `${f.provider}: ${f.error}`).join('; ')})` : ''),
              { cause: err },
            );
          }
          fallbacks.push({ provider, error: message });
        }
      }
      throw new Error(
        `no execution provider could be created for ${modelPath}: ` +
          fallbacks.map((f) => `${f.provider}: ${f.error}`).join('; '),
      );
    } catch (err) {
      await worker?.terminate();
      throw err;
    }
  },
};
