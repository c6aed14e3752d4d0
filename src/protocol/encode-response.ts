/**
 * Encoding of V2 inference responses, as JSON or with the binary tensor data extension.
 * Binary outputs are written straight from the result's typed arrays (no copy on
 * little-endian hosts); JSON data is built with `join`, which prints int64 exactly.
 */
import { halfToFloat, type Datatype, type TensorData } from '../execution/datatypes.js';
import type { HostTensor, Parameters, ShmPlace } from './tensor.js';

export interface ResponseOutput {
  readonly tensor: HostTensor;
  readonly binary: boolean;
  /** Written to system shared memory already: only its place and size go into the response. */
  readonly shmWritten?: ShmPlace & { readonly written: number } | undefined;
}

export interface EncodedResponse {
  /** Value for Inference-Header-Content-Length, when any output is binary. */
  readonly headerLength: number | undefined;
  readonly contentType: string;
  readonly body: Buffer | string;
}

export interface ResponseHeader {
  readonly model_name: string;
  readonly model_version: string;
  readonly id?: string;
  readonly parameters?: Parameters;
}

export function encodeInferResponse(head: ResponseHeader, outputs: readonly ResponseOutput[]): EncodedResponse {
  const chunks: Buffer[] = [];
  const parts: string[] = [];
  for (const { tensor, binary, shmWritten: shm } of outputs) {
    const meta = `"name":${JSON.stringify(tensor.name)},"datatype":"${tensor.datatype}","shape":[${tensor.shape.join(',')}]`;
    if (shm) {
      const offset = shm.offset ? `,"shared_memory_offset":${shm.offset}` : '';
      parts.push(`{${meta},"parameters":{"shared_memory_region":${JSON.stringify(shm.region)}${offset},"shared_memory_byte_size":${shm.written}}}`);
    } else if (binary) {
      const bytes = binaryOf(tensor.datatype, tensor.data);
      chunks.push(bytes);
      parts.push(`{${meta},"parameters":{"binary_data_size":${bytes.length}}}`);
    } else {
      parts.push(`{${meta},"data":${jsonDataOf(tensor.datatype, tensor.data)}}`);
    }
  }
  let json = `{"model_name":${JSON.stringify(head.model_name)},"model_version":${JSON.stringify(head.model_version)}`;
  if (head.id !== undefined) json += `,"id":${JSON.stringify(head.id)}`;
  if (head.parameters !== undefined) json += `,"parameters":${JSON.stringify(head.parameters)}`;
  json += `,"outputs":[${parts.join(',')}]}`;
  if (chunks.length === 0) return { headerLength: undefined, contentType: 'application/json', body: json };
  // One allocation for the whole body: the header written in place, then each output's bytes.
  const headerLength = Buffer.byteLength(json, 'utf8');
  let total = headerLength;
  for (const c of chunks) total += c.length;
  const body = Buffer.allocUnsafe(total);
  body.write(json, 0, headerLength, 'utf8');
  let off = headerLength;
  for (const c of chunks) off += c.copy(body, off);
  return { headerLength, contentType: 'application/octet-stream', body };
}

/** Raw little-endian bytes of a tensor; BYTES elements as 4-byte length + UTF-8. */
export function binaryOf(dt: Datatype, data: TensorData): Buffer {
  if (Array.isArray(data)) {
    const items = data.map((s) => Buffer.from(s, 'utf8'));
    const out = Buffer.allocUnsafe(items.reduce((n, b) => n + 4 + b.length, 0));
    let off = 0;
    for (const b of items) {
      out.writeUInt32LE(b.length, off);
      b.copy(out, off + 4);
      off += 4 + b.length;
    }
    return out;
  }
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

const NON_FINITE = /NaN|-?Infinity/g;

/** The JSON text of a tensor's flat `data` array. Non-finite floats become null (JSON has no NaN). */
export function jsonDataOf(dt: Datatype, data: TensorData): string {
  if (Array.isArray(data)) return JSON.stringify(data);
  switch (dt) {
    case 'BOOL': {
      const parts = new Array<string>(data.length);
      for (let i = 0; i < data.length; i++) parts[i] = data[i] ? 'true' : 'false';
      return `[${parts.join(',')}]`;
    }
    case 'FP16': {
      const parts = new Array<number>(data.length);
      for (let i = 0; i < data.length; i++) parts[i] = halfToFloat(data[i] as number);
      return JSON.stringify(parts);
    }
    case 'FP32':
    case 'FP64': {
      const s = Array.prototype.join.call(data, ',');
      return `[${s.includes('N') || s.includes('I') ? s.replace(NON_FINITE, 'null') : s}]`;
    }
    default:
      return `[${Array.prototype.join.call(data, ',')}]`;
  }
}
