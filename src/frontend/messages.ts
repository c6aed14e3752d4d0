/**
 * The IPC messages between the primary (models, batchers, sessions, metrics, coordinator link)
 * and its HTTP front-end processes (--http-processes > 1). They travel over the cluster IPC
 * channel with `serialization: 'advanced'` (V8's serializer): typed arrays arrive as typed
 * arrays, their bytes copied once by the serializer, never through JSON or base64.
 *
 * A typed array that is a view into a larger buffer would be serialized with its whole buffer
 * (V8 writes the ArrayBuffer, then the view), so both sides send `compactTensor`s: a view that
 * does not cover its buffer is copied into an exact-size one first (decoded inputs are views of
 * the request body, model outputs views of the batch's output).
 *
 * This file imports types only: the front ends must not load onnxruntime.
 */
import type { ErrorCode } from '../errors.js';
import type { AgentConfig } from '../config/schema.js';
import type { NodeState } from '../inference/context.js';
import type { InferReply } from '../inference/infer.js';
import type { ResponseOutput } from '../protocol/encode-response.js';
import type { HostTensor, InferRequest } from '../protocol/tensor.js';

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
  | { readonly t: 'listening'; readonly url: string }
  | InferMessage
  | HttpMessage
  /** The client of inference `id` went away: cancel it if it has not run. */
  | { readonly t: 'cancel'; readonly id: number }
  /** An error the front end answered itself, for the agent's error counters. */
  | { readonly t: 'countError'; readonly status: number }
  /** Answer to a 'drain' or 'close' control message. */
  | { readonly t: 'ack'; readonly id: number };

export type PrimaryToFrontend =
  | { readonly t: 'config'; readonly config: AgentConfig; readonly index: number; readonly state: NodeState; readonly reason: string }
  | { readonly t: 'inferResult'; readonly id: number; readonly reply?: InferReply; readonly error?: WireError }
  | { readonly t: 'httpResult'; readonly id: number; readonly status: number; readonly headers: Record<string, string | string[]>; readonly body: Uint8Array }
  /** The node's state changed (drain, uncordon): inference is refused at the front while draining. */
  | { readonly t: 'state'; readonly state: NodeState; readonly reason: string }
  /** Set draining, then ack once every inference this front end accepted has been answered. */
  | { readonly t: 'drain'; readonly id: number; readonly reason: string }
  /** Close the connections (by `deadline`, epoch ms), ack, exit. */
  | { readonly t: 'close'; readonly id: number; readonly deadline: number };

type View = ArrayBufferView & { readonly length?: number };

/** A typed array that covers its whole buffer; a copy (exact size) when it is a view into a larger one. */
export function compactView<T extends View>(v: T): T {
  if (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) return v;
  // Buffer's constructor is not a typed-array constructor; a Buffer's bytes become a Uint8Array.
  const ctor = (Buffer.isBuffer(v) ? Uint8Array : v.constructor) as new (src: T) => T;
  return new ctor(v);
}

/** A tensor whose data (and raw BYTES elements) cover their own buffers, ready for the serializer. */
export function compactTensor(t: HostTensor): HostTensor {
  const data = ArrayBuffer.isView(t.data) ? compactView(t.data) : t.data;
  return {
    name: t.name, datatype: t.datatype, shape: t.shape, data,
    ...(t.raw ? { raw: t.raw.map((r) => compactView(r)) } : {}),
  };
}

export function compactRequest(r: InferRequest): InferRequest {
  return { ...r, inputs: r.inputs.map(compactTensor) };
}

/** Only what the encoder reads of each output (postprocess bookkeeping stays in the primary). */
export function compactOutputs(outputs: readonly ResponseOutput[]): ResponseOutput[] {
  return outputs.map((o) => ({ tensor: compactTensor(o.tensor), binary: o.binary, ...(o.shmWritten ? { shmWritten: o.shmWritten } : {}) }));
}
