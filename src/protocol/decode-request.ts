/**
 * Decoding of V2 inference requests: the JSON form and the binary tensor data extension
 * (a JSON header of `Inference-Header-Content-Length` bytes, then each binary input's bytes
 * in the order the inputs appear). Every defect becomes an INVALID_ARGUMENT that names the
 * input and the problem; nothing here knows about the model (see validate-request.ts).
 */
import { invalid } from '../errors.js';
import {
  allocate, elementCount, elementSize, floatToHalf, isDatatype, viewOf,
  type Datatype, type NumericArray, type TensorData,
} from '../execution/datatypes.js';
import type { HostTensor, InferRequest, Parameters, RequestedOutput, ShmPlace, ShmReader } from './tensor.js';

const TEXT = new TextDecoder('utf-8');

/** Parse a whole request body. `headerLength` is the Inference-Header-Content-Length value, if sent. */
export function decodeInferRequest(body: Uint8Array, headerLength: number | undefined, shm?: ShmReader): InferRequest {
  const jsonEnd = headerLength ?? body.length;
  if (jsonEnd > body.length) {
    throw invalid(`Inference-Header-Content-Length is ${jsonEnd} but the body has only ${body.length} bytes`);
  }
  const header = parseJson(body.subarray(0, jsonEnd));
  const cursor = { offset: jsonEnd };
  const req = decodeHeader(header, body, cursor, headerLength !== undefined, shm);
  if (cursor.offset !== body.length) {
    throw invalid(
      `the body has ${body.length - cursor.offset} bytes after the JSON header and the binary inputs it declares; ` +
        `check Inference-Header-Content-Length and each input's binary_data_size`,
    );
  }
  return req;
}

/** Parse the value of an Inference-Header-Content-Length header (undefined when absent). */
export function parseHeaderLength(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const s = Array.isArray(value) ? value[0] ?? '' : value;
  if (!/^\d+$/.test(s.trim())) throw invalid(`Inference-Header-Content-Length must be a non-negative integer, got '${s}'`);
  return Number(s.trim());
}

function parseJson(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw invalid('the request body is empty: expected a JSON inference request');
  try {
    // Buffer's own decoder is faster than TextDecoder for the small headers of most requests.
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw invalid(`the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function decodeParameters(v: unknown, where: string): Parameters {
  if (v === undefined) return {};
  if (!isObject(v)) throw invalid(`${where} 'parameters' must be an object`);
  for (const [k, p] of Object.entries(v)) {
    if (typeof p !== 'string' && typeof p !== 'number' && typeof p !== 'boolean') {
      throw invalid(`${where} parameter '${k}' must be a string, number or boolean`);
    }
  }
  return v as Parameters;
}

function decodeHeader(
  header: unknown,
  body: Uint8Array,
  cursor: { offset: number },
  binaryAllowed: boolean,
  shm: ShmReader | undefined,
): InferRequest {
  if (!isObject(header)) throw invalid('the inference request must be a JSON object');
  const { id, inputs, outputs } = header;
  if (id !== undefined && typeof id !== 'string') throw invalid("'id' must be a string");
  const parameters = decodeParameters(header.parameters, 'request');
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw invalid("'inputs' must be a non-empty array of tensors");
  }
  const decoded: HostTensor[] = [];
  const seen = new Set<string>();
  const regions = new Set<string>();
  inputs.forEach((raw, i) => {
    const t = decodeInput(raw, i, body, cursor, binaryAllowed, shm, regions);
    if (seen.has(t.name)) throw invalid(`input '${t.name}' is given more than once`);
    seen.add(t.name);
    decoded.push(t);
  });
  const binaryOutputDefault = parameters.binary_data_output === true;
  const requested = decodeRequestedOutputs(outputs);
  for (const o of requested ?? []) if (o.shm) regions.add(o.shm.region);
  return {
    id,
    parameters,
    inputs: decoded,
    outputs: requested,
    binaryOutputDefault,
    ...(regions.size ? { shmRegions: [...regions] } : {}),
  };
}

export function decodeRequestedOutputs(v: unknown): RequestedOutput[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw invalid("'outputs' must be an array of {name, parameters}");
  const seen = new Set<string>();
  return v.map((o, i) => {
    if (!isObject(o) || typeof o.name !== 'string') throw invalid(`outputs[${i}] must be an object with a string 'name'`);
    if (seen.has(o.name)) throw invalid(`output '${o.name}' is requested more than once`);
    seen.add(o.name);
    const params = decodeParameters(o.parameters, `output '${o.name}'`);
    const b = params.binary_data;
    if (b !== undefined && typeof b !== 'boolean') throw invalid(`output '${o.name}' parameter 'binary_data' must be a boolean`);
    const k = params.classification;
    if (k !== undefined && (typeof k !== 'number' || !Number.isInteger(k) || k < 1)) {
      throw invalid(`output '${o.name}' parameter 'classification' must be an integer ≥ 1 (the number of classes to return)`);
    }
    const shm = shmPlace(params, `output '${o.name}'`);
    if (shm && k !== undefined) throw invalid(`output '${o.name}': classification and shared memory cannot be combined`);
    return { name: o.name, binary: b, ...(k !== undefined ? { classification: k } : {}), ...(shm ? { shm } : {}) };
  });
}

/** The shared_memory_region / _offset / _byte_size parameters of a tensor, checked; undefined when absent. */
export function shmPlace(params: Parameters, what: string): ShmPlace | undefined {
  const region = params.shared_memory_region;
  if (region === undefined) {
    if (params.shared_memory_byte_size !== undefined || params.shared_memory_offset !== undefined) {
      throw invalid(`${what} has shared_memory_byte_size or shared_memory_offset but no shared_memory_region`);
    }
    return undefined;
  }
  if (typeof region !== 'string' || region === '') throw invalid(`${what} parameter 'shared_memory_region' must be a region name`);
  const size = params.shared_memory_byte_size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${what} with shared_memory_region needs shared_memory_byte_size (a non-negative integer)`);
  const offset = params.shared_memory_offset ?? 0;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw invalid(`${what} parameter 'shared_memory_offset' must be a non-negative integer`);
  return { region, offset, byteSize: size };
}

function decodeShape(v: unknown, name: string): number[] {
  if (!Array.isArray(v)) throw invalid(`input '${name}' needs a 'shape' array`);
  for (const d of v) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw invalid(`input '${name}' has an invalid shape ${JSON.stringify(v)}: dimensions must be non-negative integers`);
    }
  }
  return v as number[];
}

function decodeInput(
  raw: unknown,
  index: number,
  body: Uint8Array,
  cursor: { offset: number },
  binaryAllowed: boolean,
  shmReader: ShmReader | undefined,
  regions: Set<string>,
): HostTensor {
  if (!isObject(raw)) throw invalid(`inputs[${index}] must be an object`);
  const name = raw.name;
  if (typeof name !== 'string' || name === '') throw invalid(`inputs[${index}] needs a string 'name'`);
  const datatype = raw.datatype;
  if (typeof datatype !== 'string') throw invalid(`input '${name}' needs a 'datatype'`);
  if (datatype === 'BF16') throw invalid(`input '${name}': BF16 is not supported by onnxruntime-node; send FP16 or FP32`);
  if (!isDatatype(datatype)) throw invalid(`input '${name}' has unknown datatype '${datatype}'`);
  const shape = decodeShape(raw.shape, name);
  const count = elementCount(shape);
  const params = decodeParameters(raw.parameters, `input '${name}'`);
  const shm = shmPlace(params, `input '${name}'`);
  if (shm) {
    if (!shmReader) throw invalid(`input '${name}': shared memory is not available on this endpoint; send the data in the request`);
    if (raw.data !== undefined || params.binary_data_size !== undefined) throw invalid(`input '${name}' has shared_memory_region and also data or binary_data_size; send one`);
    const bytes = shmReader.read(shm.region, shm.offset, shm.byteSize, `input '${name}'`);
    regions.add(shm.region);
    if (datatype === 'BYTES') {
      const raw = splitBytes(name, bytes, count);
      return { name, datatype, shape, data: raw.map((b) => TEXT.decode(b)), raw };
    }
    return { name, datatype, shape, data: decodeBinary(datatype, name, bytes, count) };
  }
  const binarySize = params.binary_data_size;
  if (binarySize !== undefined) {
    if (!binaryAllowed) {
      throw invalid(`input '${name}' has binary_data_size but the request has no Inference-Header-Content-Length header`);
    }
    if (typeof binarySize !== 'number' || !Number.isInteger(binarySize) || binarySize < 0) {
      throw invalid(`input '${name}' binary_data_size must be a non-negative integer`);
    }
    if (raw.data !== undefined) throw invalid(`input '${name}' has both 'data' and binary_data_size; send one`);
    if (cursor.offset + binarySize > body.length) {
      throw invalid(
        `input '${name}' declares binary_data_size ${binarySize} but only ${body.length - cursor.offset} bytes remain in the body`,
      );
    }
    const bytes = body.subarray(cursor.offset, cursor.offset + binarySize);
    cursor.offset += binarySize;
    if (datatype === 'BYTES') {
      const raw = splitBytes(name, bytes, count);
      return { name, datatype, shape, data: raw.map((b) => TEXT.decode(b)), raw };
    }
    return { name, datatype, shape, data: decodeBinary(datatype, name, bytes, count) };
  }
  if (raw.data === undefined) throw invalid(`input '${name}' has no 'data' (nor binary_data_size)`);
  return { name, datatype, shape, data: decodeJsonData(datatype, name, raw.data, shape) };
}

/**
 * The elements of binary BYTES data (each a 4-byte little-endian length, then the bytes), as
 * views into `bytes`: what image inputs decode from (strings would corrupt them).
 */
export function splitBytes(name: string, bytes: Uint8Array, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (off + 4 > bytes.length) throw invalid(`input '${name}': truncated BYTES element length at byte ${off}`);
    // `>>> 0`: unsigned. `|` works in int32, so a length ≥ 2^31 would otherwise turn negative
    // and walk the cursor backwards (an endless loop on a crafted body).
    const len = (bytes[off]! | (bytes[off + 1]! << 8) | (bytes[off + 2]! << 16) | (bytes[off + 3]! << 24)) >>> 0;
    off += 4;
    if (off + len > bytes.length) {
      throw invalid(`input '${name}': BYTES element ${out.length} declares ${len} bytes but only ${bytes.length - off} remain`);
    }
    out.push(bytes.subarray(off, off + len));
    off += len;
  }
  if (out.length !== count) {
    throw invalid(`input '${name}' has ${out.length} BYTES elements but its shape needs ${count}`);
  }
  return out;
}

/** Binary data of one tensor: fixed-size elements, or BYTES as 4-byte-length-prefixed items. */
export function decodeBinary(dt: Datatype, name: string, bytes: Uint8Array, count: number): TensorData {
  if (dt === 'BYTES') return splitBytes(name, bytes, count).map((b) => TEXT.decode(b));
  const size = elementSize(dt);
  if (bytes.length !== count * size) {
    throw invalid(
      `input '${name}' has ${bytes.length} bytes of binary data but shape and ${dt} need ${count * size} (${count} × ${size})`,
    );
  }
  return viewOf(dt, bytes, 0, count);
}

/**
 * Flatten nested `data` (row-major) into `out`. Nesting must follow the shape: an array at
 * depth d holds shape[d] sub-arrays, or, at its innermost level, all the remaining elements
 * (so `[[1,2],[3,4]]` and `[1,2,3,4]` both fit [2,2], but the ragged `[[1,2,3],[4]]` does not).
 */
function flatten(v: unknown[], shape: readonly number[], depth: number, name: string, out: unknown[]): void {
  const nested = v.length > 0 && Array.isArray(v[0]);
  if (!nested) {
    const want = elementCount(shape.slice(depth));
    if (v.length !== want || v.some(Array.isArray)) {
      throw invalid(`input '${name}' has nested 'data' that does not match its shape [${shape.join(',')}] at depth ${depth}: expected ${want} values`);
    }
    for (const x of v) out.push(x);
    return;
  }
  if (v.length !== shape[depth] || depth >= shape.length - 1) {
    throw invalid(`input '${name}' has nested 'data' that does not match its shape [${shape.join(',')}]: ${v.length} arrays at depth ${depth}`);
  }
  for (const x of v) {
    if (!Array.isArray(x)) throw invalid(`input '${name}' mixes arrays and values at depth ${depth + 1} of 'data'`);
    flatten(x, shape, depth + 1, name, out);
  }
}

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-2147483648, 2147483647],
  UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 4294967295],
};

/** JSON `data` (flat or nested, row-major) → storage of `dt`, checking every element. */
export function decodeJsonData(dt: Datatype, name: string, data: unknown, shape: readonly number[]): TensorData {
  if (!Array.isArray(data)) throw invalid(`input '${name}' 'data' must be an array`);
  const count = elementCount(shape);
  let flat: unknown[];
  if (data.length === 0 || !Array.isArray(data[0])) flat = data;
  else {
    flat = [];
    flatten(data, shape, 0, name, flat);
  }
  if (flat.length !== count) {
    throw invalid(`input '${name}' has ${flat.length} elements in 'data' but its shape needs ${count}`);
  }
  const bad = (i: number, want: string): never => {
    throw invalid(`input '${name}' element ${i} is ${JSON.stringify(flat[i])}; ${dt} needs ${want}`);
  };
  if (dt === 'BYTES') {
    for (let i = 0; i < flat.length; i++) if (typeof flat[i] !== 'string') bad(i, 'a string');
    return flat as string[];
  }
  const out = allocate(dt, count) as NumericArray;
  switch (dt) {
    case 'BOOL':
      for (let i = 0; i < flat.length; i++) {
        const x = flat[i];
        if (typeof x === 'boolean') out[i] = x ? 1 : 0;
        else if (x === 0 || x === 1) out[i] = x;
        else bad(i, 'true or false');
      }
      return out;
    case 'INT64':
    case 'UINT64': {
      const big = out as BigInt64Array | BigUint64Array;
      const min = dt === 'INT64' ? -(2n ** 63n) : 0n;
      const max = dt === 'INT64' ? 2n ** 63n - 1n : 2n ** 64n - 1n;
      for (let i = 0; i < flat.length; i++) {
        const x = flat[i];
        let b: bigint | undefined;
        if (typeof x === 'number' && Number.isInteger(x)) b = BigInt(x);
        else if (typeof x === 'string' && /^-?\d+$/.test(x)) b = BigInt(x);
        if (b === undefined || b < min || b > max) bad(i, 'an integer in range (or a decimal string)');
        big[i] = b!;
      }
      return out;
    }
    case 'FP16': {
      for (let i = 0; i < flat.length; i++) {
        const x = flat[i];
        if (typeof x !== 'number') bad(i, 'a number');
        out[i] = floatToHalf(x as number);
      }
      return out;
    }
    case 'FP32':
    case 'FP64':
      for (let i = 0; i < flat.length; i++) {
        const x = flat[i];
        if (typeof x !== 'number') bad(i, 'a number');
        (out as Float32Array)[i] = x as number;
      }
      return out;
    default: {
      const [min, max] = INT_RANGE[dt]!;
      for (let i = 0; i < flat.length; i++) {
        const x = flat[i];
        if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) bad(i, `an integer in [${min}, ${max}]`);
        (out as Int32Array)[i] = x as number;
      }
      return out;
    }
  }
}
