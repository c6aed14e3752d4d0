/**
 * The IPC messages between the primary (models, batchers, sessions, metrics, coordinator link)
 * and its HTTP front-end processes (--http-processes > 1), over the cluster IPC channel, in
 * the wire form of `toWire` / `fromWire` below.
 *
 * This file imports types only: the front ends must not load onnxruntime.
 */
import type { ErrorCode } from '../errors.js';
import type { AgentConfig } from '../config/schema.js';
import type { NodeState } from '../inference/context.js';
import type { InferReply } from '../inference/infer.js';
import type { ResponseOutput } from '../protocol/encode-response.js';
import type { InferRequest } from '../protocol/tensor.js';

/** An AgentError as it crosses a process boundary: the front end rebuilds it and maps it with httpError. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryAfterSeconds?: number | undefined;
}

/**
 * An inference. `request` is set when the front end decoded the body itself (the common case:
 * JSON or binary, no shared memory); otherwise the raw body, its Content-Encoding and the raw
 * Inference-Header-Content-Length header travel, and the primary decodes exactly as the
 * single-process route does (raw binary requests, shared memory, and every malformed request,
 * so each error and its order against "unknown model" are the same).
 */
export interface InferMessage {
  readonly t: 'infer';
  readonly id: number;
  readonly model: string;
  readonly version: string | undefined;
  readonly request?: InferRequest;
  readonly body?: Uint8Array;
  readonly encoding?: string | undefined;
  readonly headerLength?: string | string[] | undefined;
}

/** Any other route, forwarded whole; the primary answers it with its own fastify app (`inject`). */
export interface HttpMessage {
  readonly t: 'http';
  readonly id: number;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body?: Uint8Array | undefined;
}

export type FrontendToPrimary =
  | { readonly t: 'hello' }
  /** Ready for connections (sent with { t: 'conn' } and the socket as the message's handle). */
  | { readonly t: 'listening' }
  /** Connection `id` (sent with a handle) is now held by this front end. */
  | { readonly t: 'connAck'; readonly id: number }
  | InferMessage
  | HttpMessage
  /** The client of inference `id` went away: cancel it if it has not run. */
  | { readonly t: 'cancel'; readonly id: number }
  /** An error the front end answered itself, for the agent's error counters. */
  | { readonly t: 'countError'; readonly status: number }
  /** Answer to a control message ('idle': how long since this front end's last traffic). */
  | { readonly t: 'ack'; readonly id: number; readonly idleMs?: number };

export type PrimaryToFrontend =
  | { readonly t: 'config'; readonly config: AgentConfig; readonly index: number; readonly state: NodeState; readonly reason: string }
  | { readonly t: 'inferResult'; readonly id: number; readonly reply?: InferReply; readonly error?: WireError }
  | { readonly t: 'httpResult'; readonly id: number; readonly status: number; readonly headers: Record<string, string | string[]>; readonly body: Uint8Array }
  /** The node's state changed (drain, uncordon): inference is refused at the front while draining. */
  | { readonly t: 'state'; readonly state: NodeState; readonly reason: string }
  /** Set draining, then ack once every inference this front end accepted has been answered. */
  | { readonly t: 'drain'; readonly id: number; readonly reason: string }
  /** Ask how long it has been without a new connection, request or response. */
  | { readonly t: 'idle'; readonly id: number }
  /** Close the connections (by `deadline`, epoch ms), ack, exit. */
  | { readonly t: 'close'; readonly id: number; readonly deadline: number };

/**
 * The IPC channel runs in Node's JSON mode; typed arrays travel as base64 (`{ $64, k }`).
 * Measured on the 2-core bench VM (a request of two [1,16] FP32 tensors and its answer, 32 in
 * flight): 12 µs of the sender's CPU per round trip, against 21 µs with
 * `serialization: 'advanced'` (V8's serializer) and 22–27 µs for v8.serialize frames on a unix
 * socket; base64 costs a third more bytes, which only matters for large tensors. Only the
 * view's own bytes are encoded (V8's serializer would write a view's whole buffer), and the
 * receiver gets fresh, aligned typed arrays. Keys that start with '$' (from a client's JSON)
 * are escaped with one more '$', so no client value can pass for an encoded array.
 */
const ARRAYS = {
  Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array,
} as const;
type ArrayKind = keyof typeof ARRAYS;

export function toWire(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (ArrayBuffer.isView(v)) {
    const kind = Buffer.isBuffer(v) || v instanceof DataView ? 'Uint8Array' : (v.constructor.name as ArrayKind);
    return { $64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'), k: kind };
  }
  if (Array.isArray(v)) return v.length > 0 && typeof v[0] !== 'object' ? v : v.map(toWire);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k.charCodeAt(0) === 36 ? `$${k}` : k] = toWire(x);
  return out;
}

export function fromWire<T>(v: unknown): T {
  if (v === null || typeof v !== 'object') return v as T;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (v[i] !== null && typeof v[i] === 'object') v[i] = fromWire(v[i]);
    return v as T;
  }
  const o = v as Record<string, unknown>;
  if (typeof o.$64 === 'string') {
    const ctor = ARRAYS[o.k as ArrayKind] ?? Uint8Array;
    const bytes = Buffer.from(o.$64, 'base64');
    const ab = new ArrayBuffer(bytes.length);
    new Uint8Array(ab).set(bytes);
    return new ctor(ab) as T;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) out[k.charCodeAt(0) === 36 ? k.slice(1) : k] = fromWire(x);
  return out as T;
}

/** Only what the encoder reads of each output (postprocess bookkeeping stays in the primary). */
export function wireOutputs(outputs: readonly ResponseOutput[]): ResponseOutput[] {
  return outputs.map((o) => ({
    tensor: { name: o.tensor.name, datatype: o.tensor.datatype, shape: o.tensor.shape, data: o.tensor.data, ...(o.tensor.raw ? { raw: o.tensor.raw } : {}) },
    binary: o.binary, ...(o.shmWritten ? { shmWritten: o.shmWritten } : {}),
  }));
}
