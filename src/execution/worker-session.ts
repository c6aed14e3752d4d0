/**
 * Sessions hosted in a worker thread. onnxruntime-node 1.29 runs `session.run` synchronously
 * on the calling thread (one setImmediate later), so a session on the main thread blocks HTTP
 * for the whole run: fine for a tiny model, a stall for a compute-bound one. In a worker the
 * run overlaps with request handling; the price is a thread hop per batch. Tensors move by
 * transfer, not structured clone: an input that owns its whole buffer (a batch's concatenated
 * input, a JSON-decoded tensor) is transferred as is, and the caller must not use it after
 * `run` (the batcher never does); a view into a larger buffer (a binary request body) is
 * copied once into a buffer of its own, then transferred. Outputs come back transferred.
 *
 * The worker is a thin host (create / run / release); provider fallback stays in
 * ort-session.ts, which asks the worker to try each provider list in turn. Its code is a
 * self-contained string (eval), so it runs the same from TypeScript sources and from dist/.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { AgentError } from '../errors.js';
import { datatypeFromOrt, type OrtType, type TensorData } from './datatypes.js';
import { liveSessions } from './live-sessions.js';
import type { ModelSession, ProviderName, RunInput, RunOutput, TensorSignature } from './ort-session.js';

const WORKER_SOURCE = `
process.env.ORT_DISABLE_TELEMETRY ??= '1';
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
// Same as keepFloat16AsUint16 in ort-session.ts: float16 stays Uint16Array on Node >= 24.
if (globalThis.Float16Array) {
  const saved = globalThis.Float16Array;
  try { globalThis.Float16Array = undefined; new ort.Tensor('float16', new Uint16Array(1), [1]); } finally { globalThis.Float16Array = saved; }
}
let session;
parentPort.on('message', async (m) => {
  try {
    if (m.type === 'create') {
      session = await ort.InferenceSession.create(m.modelPath, m.options);
      const meta = (list) => list.map((x) => ({ name: x.name, isTensor: x.isTensor, type: x.type, shape: x.isTensor ? x.shape : [] }));
      parentPort.postMessage({ id: m.id, ok: true, inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) });
    } else if (m.type === 'run') {
      const feeds = {};
      for (const [name, t] of Object.entries(m.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const results = await session.run(feeds, m.outputNames);
      const outputs = {};
      const transfer = [];
      for (const name of m.outputNames) {
        const t = results[name];
        outputs[name] = { type: t.type, dims: t.dims, data: t.data };
        if (t.type !== 'string' && t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength) transfer.push(t.data.buffer);
      }
      parentPort.postMessage({ id: m.id, ok: true, outputs }, transfer);
    } else if (m.type === 'release') {
      if (session) await session.release();
      session = undefined;
      parentPort.postMessage({ id: m.id, ok: true });
    }
  } catch (err) {
    parentPort.postMessage({ id: m.id, ok: false, error: String(err && err.message || err) });
  }
});
`;

interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  inputs?: ort.InferenceSession.ValueMetadata[];
  outputs?: unknown;
}

/** One worker thread holding (at most) one session, with request/reply over postMessage. */
export class SessionWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private dead: Error | undefined;

  constructor() {
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath } });
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r);
      else p.reject(new Error(r.error));
    });
    const fail = (err: Error) => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', (err) => fail(new AgentError('INTERNAL', `the session worker failed: ${err.message}`)));
    this.worker.on('exit', (code) => fail(new AgentError('INTERNAL', `the session worker exited (code ${code})`)));
    // A worker must not keep the process alive by itself: the agent releases it on close.
    this.worker.unref();
  }

  request(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

function toSignature(m: ort.InferenceSession.ValueMetadata): TensorSignature {
  if (!m.isTensor) return { name: m.name, datatype: undefined, ortType: 'non-tensor', shape: [] };
  return { name: m.name, datatype: datatypeFromOrt(m.type), ortType: m.type, shape: m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1)) };
}

/**
 * `data` in a form the worker can own: itself when it spans its whole (non-shared) buffer,
 * else a copy of the view (inputs of single requests are often views into request bodies,
 * whose buffer may be Node's shared allocation pool: transferring it would detach other
 * Buffers).
 */
export function transferable(data: TensorData): { data: TensorData; transfer: ArrayBuffer | undefined } {
  if (Array.isArray(data)) return { data, transfer: undefined };
  const buf = data.buffer;
  // (A zero-length buffer is never transferred: a detached one in a transfer list makes
  // postMessage drop the message silently, and the run would never answer.)
  if (buf instanceof ArrayBuffer && data.byteLength > 0 && data.byteOffset === 0 && data.byteLength === buf.byteLength) return { data, transfer: buf };
  const copy = data.slice() as typeof data;
  return { data: copy, transfer: copy.buffer as ArrayBuffer };
}

export class WorkerModelSession implements ModelSession {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];

  private constructor(private readonly worker: SessionWorker, readonly provider: ProviderName, meta: Reply) {
    this.inputs = (meta.inputs ?? []).map(toSignature);
    this.outputs = ((meta.outputs as ort.InferenceSession.ValueMetadata[]) ?? []).map(toSignature);
    liveSessions.created();
  }

  private released = false;

  /** Create the session in `worker` with these onnxruntime options; rejects with onnxruntime's error. */
  static async create(worker: SessionWorker, modelPath: string, options: ort.InferenceSession.SessionOptions, provider: ProviderName): Promise<WorkerModelSession> {
    const reply = await worker.request({ type: 'create', modelPath, options });
    return new WorkerModelSession(worker, provider, reply);
  }

  async run(feeds: Record<string, RunInput>, outputNames: readonly string[]): Promise<Record<string, RunOutput>> {
    const msgFeeds: Record<string, { type: OrtType; dims: readonly number[]; data: TensorData }> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      const owned = transferable(t.data);
      if (owned.transfer) transfer.push(owned.transfer);
      msgFeeds[name] = { type: t.type, dims: t.dims, data: owned.data };
    }
    const reply = await this.worker.request({ type: 'run', feeds: msgFeeds, outputNames }, transfer);
    return reply.outputs as Record<string, RunOutput>;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.worker.request({ type: 'release' });
    } finally {
      liveSessions.released();
      await this.worker.terminate();
    }
  }
}
