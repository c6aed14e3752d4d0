/**
 * Just enough protobuf wire format to route a gRPC message without decoding it: the gateway
 * forwards the serialized bytes as they came and reads only the few top-level fields routing
 * needs. Tensors (inputs, raw_input_contents, outputs) are skipped by their length prefix, never
 * copied or parsed, so the cost does not grow with the payload.
 *
 * Field numbers are those of proto/grpc_service.proto:
 * - ModelInferRequest: model_name 1, model_version 2, parameters 4 (map<string, InferParameter>).
 * - ModelReadyRequest, ModelMetadataRequest: name 1, version 2.
 * - ModelInferResponse: parameters 4. ModelStreamInferResponse: infer_response 2.
 * - InferParameter: int64_param 2 (varint), uint64_param 5 (varint); map entries: key 1, value 2.
 * A malformed message gives undefined: the caller answers INVALID_ARGUMENT.
 */
import { COMPUTE_TIME_PARAMETER } from '../../protocol/compute-time.js';

const enum Wire { VARINT = 0, FIXED64 = 1, LEN = 2, FIXED32 = 5 }

type FieldVisitor = (field: number, wire: number, buf: Uint8Array, start: number, end: number, varint: number) => void;

/** Read a varint at `off`; returns [value, next offset] or undefined (truncated / over 2^53). */
function varint(buf: Uint8Array, off: number): [number, number] | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (off >= buf.length) return undefined;
    const b = buf[off++]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return value > Number.MAX_SAFE_INTEGER ? undefined : [value, off];
    scale *= 128;
  }
  return undefined;
}

/** Visit every top-level field of buf[start, end); false when the bytes are not a message. */
function scan(buf: Uint8Array, start: number, end: number, visit: FieldVisitor): boolean {
  let off = start;
  while (off < end) {
    const tag = varint(buf, off);
    if (!tag) return false;
    off = tag[1];
    const field = Math.floor(tag[0] / 8);
    const wire = tag[0] & 7;
    switch (wire) {
      case Wire.VARINT: {
        const v = varint(buf, off);
        if (!v) return false;
        visit(field, wire, buf, off, v[1], v[0]);
        off = v[1];
        break;
      }
      case Wire.FIXED64:
        if (off + 8 > end) return false;
        off += 8;
        break;
      case Wire.FIXED32:
        if (off + 4 > end) return false;
        off += 4;
        break;
      case Wire.LEN: {
        const len = varint(buf, off);
        if (!len || len[1] + len[0] > end) return false;
        visit(field, wire, buf, len[1], len[1] + len[0], 0);
        off = len[1] + len[0];
        break;
      }
      default:
        return false; // groups (3, 4) are not used by this service
    }
  }
  return off === end;
}

const utf8 = new TextDecoder();

/** An integer InferParameter (int64 or uint64) in buf[start, end), or undefined. */
function integerParameter(buf: Uint8Array, start: number, end: number): number | undefined {
  let out: number | undefined;
  scan(buf, start, end, (field, wire, _b, _s, _e, v) => {
    if (wire === Wire.VARINT && (field === 2 || field === 5)) out = v;
  });
  return out;
}

/** Value of `key` in a map<string, InferParameter> field `mapField` of the message buf[start, end). */
function mapInteger(buf: Uint8Array, start: number, end: number, mapField: number, key: string): number | undefined {
  let out: number | undefined;
  const ok = scan(buf, start, end, (field, wire, b, s, e) => {
    if (field !== mapField || wire !== Wire.LEN) return;
    let k: string | undefined;
    let value: [number, number] | undefined;
    scan(b, s, e, (f, w, bb, ss, ee) => {
      if (w !== Wire.LEN) return;
      if (f === 1) k = utf8.decode(bb.subarray(ss, ee));
      else if (f === 2) value = [ss, ee];
    });
    if (k === key && value) out = integerParameter(b, value[0], value[1]);
  });
  return ok ? out : undefined;
}

export interface RouteFields {
  readonly model: string;
  /** '' when the request names no version. */
  readonly version: string;
}

/** model name (field 1) and version (field 2) of a ModelInferRequest / ModelReadyRequest / ModelMetadataRequest. */
export function routeFields(buf: Uint8Array): RouteFields | undefined {
  let model = '';
  let version = '';
  const ok = scan(buf, 0, buf.length, (field, wire, b, s, e) => {
    if (wire !== Wire.LEN) return;
    if (field === 1) model = utf8.decode(b.subarray(s, e));
    else if (field === 2) version = utf8.decode(b.subarray(s, e));
  });
  return ok ? { model, version } : undefined;
}

/** A ModelInferRequest's `timeout` parameter (µs, Triton's unit), when it has one. */
export function timeoutParameterUs(buf: Uint8Array): number | undefined {
  return mapInteger(buf, 0, buf.length, 4, 'timeout');
}

/** A ModelInferResponse's `compute_time_us` parameter (the agent's compute time for it). */
export function computeTimeUs(buf: Uint8Array): number | undefined {
  return mapInteger(buf, 0, buf.length, 4, COMPUTE_TIME_PARAMETER);
}

/** What the gateway reads of a ModelStreamInferResponse: error_message (1), and its infer_response (2)'s model and compute time. */
export function streamResponseFields(buf: Uint8Array): { error: string; model: string; computeUs: number | undefined } {
  let error = '';
  let model = '';
  let computeUs: number | undefined;
  scan(buf, 0, buf.length, (field, wire, b, s, e) => {
    if (wire !== Wire.LEN) return;
    if (field === 1) error = utf8.decode(b.subarray(s, e));
    else if (field === 2) {
      computeUs = mapInteger(b, s, e, 4, COMPUTE_TIME_PARAMETER);
      scan(b, s, e, (f, w, bb, ss, ee) => {
        if (f === 1 && w === Wire.LEN) model = utf8.decode(bb.subarray(ss, ee));
      });
    }
  });
  return { error, model, computeUs };
}

/** Encode a message of bool fields and string fields (ServerLive/Ready, ModelReady, ServerMetadata answers). */
export function encodeSimple(fields: readonly (readonly [number, boolean | string | readonly string[]])[]): Buffer {
  const parts: Buffer[] = [];
  const len = (n: number): Buffer => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  for (const [field, value] of fields) {
    if (typeof value === 'boolean') {
      if (value) parts.push(Buffer.from([field << 3, 1])); // proto3: false is the default, left out
      continue;
    }
    for (const str of typeof value === 'string' ? [value] : value) {
      const bytes = Buffer.from(str, 'utf8');
      parts.push(len((field << 3) | Wire.LEN), len(bytes.length), bytes);
    }
  }
  return Buffer.concat(parts);
}
