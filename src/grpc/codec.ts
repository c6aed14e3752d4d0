/**
 * The gRPC wire form of an inference ↔ the transport-free request and outputs.
 *
 * Requests: each input's data is either typed (`contents.<type>_contents`, the field of its
 * datatype) or raw (`raw_input_contents[i]` for input i, for all inputs or none: what
 * tritonclient sends), or in a system shared memory region named by its parameters. Raw
 * BYTES are 4-byte little-endian lengths, each followed by the element's bytes. Every defect
 * is an INVALID_ARGUMENT naming the input and the problem; the checks against the model
 * (names, shapes, datatypes, batch size) are the same as HTTP's (protocol/validate-request.ts).
 *
 * Responses mirror the request: raw in → `raw_output_contents` out (one entry per output, in
 * order; an output written to shared memory has an empty entry); typed in → typed `contents`,
 * except that a response with an FP16 output is all raw (FP16 has no typed field).
 */
import { invalid } from '../errors.js';
import { elementCount, isDatatype, type Datatype } from '../execution/datatypes.js';
import { decodeBinary, decodeJsonData, decodeRequestedOutputs, shmPlace, splitBytes } from '../protocol/decode-request.js';
import { binaryOf, type ResponseOutput } from '../protocol/encode-response.js';
import type { HostTensor, InferRequest, Parameters, ShmReader } from '../protocol/tensor.js';
import type { InferReply } from '../inference/infer.js';

const TEXT = new TextDecoder('utf-8');

/** An InferParameter as proto-loader decodes it (oneofs: true, longs: String). */
export interface WireParameter {
  parameter_choice?: string;
  bool_param?: boolean;
  int64_param?: string | number;
  string_param?: string;
  double_param?: number;
  uint64_param?: string | number;
}

export interface WireContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: (string | number)[];
  uint_contents?: number[];
  uint64_contents?: (string | number)[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface WireInput {
  name?: string;
  datatype?: string;
  shape?: (string | number)[];
  parameters?: Record<string, WireParameter>;
  contents?: WireContents;
}

export interface WireInferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, WireParameter>;
  inputs?: WireInput[];
  outputs?: { name?: string; parameters?: Record<string, WireParameter> }[];
  raw_input_contents?: Uint8Array[];
}

type ContentsField = keyof WireContents;

/** The typed field of each datatype (FP16 has none). */
const FIELD: Record<Datatype, ContentsField | undefined> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP16: undefined,
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/** InferParameter map → the protocol's parameters; 64-bit integers become numbers when exact. */
export function parametersOf(map: Record<string, WireParameter> | undefined, where: string): Parameters {
  const out: Parameters = {};
  if (!map) return out;
  for (const [k, p] of Object.entries(map)) {
    const choice = p.parameter_choice;
    switch (choice) {
      case 'bool_param': out[k] = p.bool_param === true; break;
      case 'string_param': out[k] = p.string_param ?? ''; break;
      case 'double_param': out[k] = p.double_param ?? 0; break;
      case 'int64_param':
      case 'uint64_param': {
        const n = Number(p[choice] ?? 0);
        if (!Number.isSafeInteger(n)) throw invalid(`${where} parameter '${k}' is ${String(p[choice])}, beyond what the agent handles exactly (±2^53)`);
        out[k] = n;
        break;
      }
      default:
        throw invalid(`${where} parameter '${k}' has no value (set one of bool_param, int64_param, string_param, double_param, uint64_param)`);
    }
  }
  return out;
}

function shapeOf(shape: (string | number)[] | undefined, name: string): number[] {
  return (shape ?? []).map((d) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n) || n < 0) throw invalid(`input '${name}' has an invalid shape [${(shape ?? []).join(',')}]: dimensions must be non-negative integers`);
    return n;
  });
}

function fromContents(dt: Datatype, name: string, shape: number[], contents: WireContents | undefined): HostTensor {
  const field = FIELD[dt];
  const given = (Object.keys(contents ?? {}) as ContentsField[]).filter((f) => (contents![f]?.length ?? 0) > 0);
  if (given.length === 0) {
    throw invalid(`input '${name}' has no data: send it in raw_input_contents (one entry per input, in order) or in contents.${field ?? '<type>_contents'}`);
  }
  if (!field) throw invalid(`input '${name}' is ${dt}, which has no typed contents field: send it in raw_input_contents`);
  const wrong = given.find((f) => f !== field);
  if (wrong) throw invalid(`input '${name}' is ${dt} but has data in contents.${wrong}; ${dt} data goes in contents.${field}`);
  const values = contents![field]!;
  if (dt === 'BYTES') {
    const raw = values as Uint8Array[];
    const count = elementCount(shape);
    if (raw.length !== count) throw invalid(`input '${name}' has ${raw.length} elements in contents.bytes_contents but its shape needs ${count}`);
    return { name, datatype: dt, shape, data: raw.map((b) => TEXT.decode(b)), raw };
  }
  return { name, datatype: dt, shape, data: decodeJsonData(dt, name, values, shape) };
}

/** A ModelInferRequest as proto-loader decodes it → the transport-free request. */
export function decodeGrpcRequest(msg: WireInferRequest, shm: ShmReader | undefined): InferRequest {
  const inputs = msg.inputs ?? [];
  if (inputs.length === 0) throw invalid("the request has no inputs: 'inputs' must list at least one tensor");
  const raw = msg.raw_input_contents ?? [];
  if (raw.length !== 0 && raw.length !== inputs.length) {
    throw invalid(`raw_input_contents has ${raw.length} entries but the request has ${inputs.length} inputs: give raw contents for every input (in order) or for none`);
  }
  const seen = new Set<string>();
  const regions = new Set<string>();
  const decoded = inputs.map((input, i): HostTensor => {
    const name = input.name ?? '';
    if (name === '') throw invalid(`inputs[${i}] needs a name`);
    if (seen.has(name)) throw invalid(`input '${name}' is given more than once`);
    seen.add(name);
    const datatype = input.datatype ?? '';
    if (datatype === 'BF16') throw invalid(`input '${name}': BF16 is not supported by onnxruntime-node; send FP16 or FP32`);
    if (!isDatatype(datatype)) throw invalid(`input '${name}' has unknown datatype '${datatype}'`);
    const shape = shapeOf(input.shape, name);
    const count = elementCount(shape);
    const params = parametersOf(input.parameters, `input '${name}'`);
    const place = shmPlace(params, `input '${name}'`);
    const hasContents = Object.values(input.contents ?? {}).some((v) => Array.isArray(v) && v.length > 0);
    if (place) {
      if (!shm) throw invalid(`input '${name}': shared memory is not available on this endpoint; send the data in the request`);
      if (hasContents || (raw[i]?.length ?? 0) > 0) throw invalid(`input '${name}' has shared_memory_region and also data; send one`);
      const bytes = shm.read(place.region, place.offset, place.byteSize, `input '${name}'`);
      regions.add(place.region);
      if (datatype === 'BYTES') {
        const parts = splitBytes(name, bytes, count);
        return { name, datatype, shape, data: parts.map((b) => TEXT.decode(b)), raw: parts };
      }
      return { name, datatype, shape, data: decodeBinary(datatype, name, bytes, count) };
    }
    if (raw.length) {
      if (hasContents) throw invalid(`input '${name}' has both contents and raw_input_contents; send one`);
      const bytes = raw[i]!;
      if (datatype === 'BYTES') {
        const parts = splitBytes(name, bytes, count);
        return { name, datatype, shape, data: parts.map((b) => TEXT.decode(b)), raw: parts };
      }
      return { name, datatype, shape, data: decodeBinary(datatype, name, bytes, count) };
    }
    return fromContents(datatype, name, shape, input.contents);
  });
  const outputs = msg.outputs === undefined || msg.outputs.length === 0
    ? undefined
    : decodeRequestedOutputs(msg.outputs.map((o) => ({ name: o.name, parameters: parametersOf(o.parameters, `output '${o.name ?? ''}'`) })));
  for (const o of outputs ?? []) if (o.shm) regions.add(o.shm.region);
  return {
    id: msg.id ? msg.id : undefined,
    parameters: parametersOf(msg.parameters, 'request'),
    inputs: decoded,
    outputs,
    binaryOutputDefault: true,
    ...(regions.size ? { shmRegions: [...regions] } : {}),
  };
}

/** Whether a decoded request carried raw contents (then the answer is raw too). */
export function usesRawContents(msg: WireInferRequest): boolean {
  return (msg.raw_input_contents?.length ?? 0) > 0;
}

function typedContents(t: HostTensor): WireContents {
  const field = FIELD[t.datatype]!;
  const d = t.data;
  if (Array.isArray(d)) return { bytes_contents: d.map((s) => Buffer.from(s, 'utf8')) };
  if (t.datatype === 'BOOL') return { bool_contents: Array.from(d as Uint8Array, (x) => x !== 0) };
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return { [field]: Array.from(d, (x) => x.toString()) };
  return { [field]: Array.from(d as Float32Array) };
}

function shmParameters(o: ResponseOutput): Record<string, WireParameter> | undefined {
  const s = o.shmWritten;
  if (!s) return undefined;
  return {
    shared_memory_region: { string_param: s.region },
    shared_memory_byte_size: { int64_param: s.written },
    ...(s.offset ? { shared_memory_offset: { int64_param: s.offset } } : {}),
  };
}

/** The transport-free answer → a ModelInferResponse for proto-loader to encode. */
export function encodeGrpcResponse(reply: InferReply, raw: boolean) {
  const allRaw = raw || reply.outputs.some((o) => o.tensor.datatype === 'FP16' && !o.shmWritten);
  const rawOut: Uint8Array[] = [];
  const outputs = reply.outputs.map((o) => {
    const t = o.tensor;
    const head = { name: t.name, datatype: t.datatype, shape: t.shape as number[] };
    const parameters = shmParameters(o);
    if (parameters) {
      if (allRaw) rawOut.push(Buffer.alloc(0));
      return { ...head, parameters };
    }
    if (allRaw) {
      rawOut.push(binaryOf(t.datatype, t.data));
      return head;
    }
    return { ...head, contents: typedContents(t) };
  });
  return {
    model_name: reply.modelName,
    model_version: reply.modelVersion,
    id: reply.id ?? '',
    outputs,
    ...(allRaw ? { raw_output_contents: rawOut } : {}),
  };
}
