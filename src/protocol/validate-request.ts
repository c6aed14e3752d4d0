/**
 * Checking a decoded request against the model it is sent to: names, datatypes, shapes and
 * batch size. Whatever passes here can be batched and run; whatever fails is the client's
 * mistake and gets a 400 that names the input and what the model expects.
 */
import { invalid } from '../errors.js';
import { elementCount, elementSize } from '../execution/datatypes.js';
import type { ModelSpec } from '../sessions/model-spec.js';
import { decodeBinary } from './decode-request.js';
import type { HostTensor, InferRequest, ShmPlace } from './tensor.js';

export interface PreparedOutput {
  readonly name: string;
  readonly binary: boolean;
  /** Classification extension: top k as strings (see classification-extension.ts). */
  readonly classification?: number;
  /** System shared memory: where the output goes instead of the response body. */
  readonly shm?: ShmPlace;
}

/** A request ready for the batcher. */
export interface PreparedRequest {
  /** Inputs in the model's order (optional inputs the request left out are absent). */
  readonly inputs: readonly HostTensor[];
  /** Rows along the batch dimension (1 for models without one). */
  readonly rows: number;
  /** Requests with equal keys can be concatenated along dim 0. */
  readonly shapeKey: string;
  readonly outputs: readonly PreparedOutput[];
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(',')}]`;
}

/**
 * What checking a request against a model needs, computed once per model (the spec is frozen
 * for the model's lifetime): input positions by name, the text of the expected shapes, and
 * the default outputs. The per-request path then only compares numbers.
 */
interface Checks {
  readonly inputIndex: ReadonlyMap<string, number>;
  readonly outputNames: ReadonlySet<string>;
  readonly expected: readonly string[];
  readonly inputList: string;
  readonly outputList: string;
  readonly defaultOutputs: { readonly binary: readonly PreparedOutput[]; readonly json: readonly PreparedOutput[] };
}

const CHECKS = new WeakMap<ModelSpec, Checks>();

function checksOf(spec: ModelSpec): Checks {
  let c = CHECKS.get(spec);
  if (c) return c;
  c = {
    inputIndex: new Map(spec.inputs.map((s, i) => [s.name, i])),
    outputNames: new Set(spec.outputs.map((o) => o.name)),
    expected: spec.inputs.map((s) => (spec.maxBatchSize > 0 ? `[b,${s.shape.slice(1).join(',')}]`.replace(',]', ']') : shapeText(s.shape))),
    inputList: spec.inputs.map((s) => s.name).join(', '),
    outputList: spec.outputs.map((s) => s.name).join(', '),
    defaultOutputs: {
      binary: spec.outputs.map((o) => ({ name: o.name, binary: true })),
      json: spec.outputs.map((o) => ({ name: o.name, binary: false })),
    },
  };
  CHECKS.set(spec, c);
  return c;
}

export function prepareRequest(req: InferRequest, spec: ModelSpec): PreparedRequest {
  const checks = checksOf(spec);
  const inputs = new Array<HostTensor>(spec.inputs.length);
  for (const t of req.inputs) {
    const i = checks.inputIndex.get(t.name);
    if (i === undefined) throw invalid(`model '${spec.name}' has no input '${t.name}'; its inputs are ${checks.inputList}`);
    inputs[i] = t;
  }
  const batched = spec.maxBatchSize > 0;
  let rows = -1;
  let shapeKey = '';
  const present: HostTensor[] = [];
  for (let i = 0; i < spec.inputs.length; i++) {
    const s = spec.inputs[i]!;
    const t = inputs[i];
    if (i > 0) shapeKey += '|';
    if (!t && s.optional) {
      shapeKey += '-'; // requests without it batch only with each other
      continue;
    }
    if (!t) throw invalid(`input '${s.name}' is missing; model '${spec.name}' needs ${spec.inputs.filter((x) => !x.optional).map((x) => x.name).join(', ')}`);
    if (t.datatype !== s.datatype) {
      throw invalid(`input '${s.name}' has datatype ${t.datatype} but model '${spec.name}' expects ${s.datatype}`);
    }
    if (t.shape.length !== s.shape.length) {
      throw invalid(`input '${s.name}' has shape ${shapeText(t.shape)} but model '${spec.name}' expects ${checks.expected[i]} (-1 = any size)`);
    }
    for (let d = batched ? 1 : 0; d < s.shape.length; d++) {
      if (s.shape[d] !== -1 && t.shape[d] !== s.shape[d]) {
        throw invalid(`input '${s.name}' has shape ${shapeText(t.shape)} but model '${spec.name}' expects ${checks.expected[i]} (-1 = any size)`);
      }
    }
    if (batched) {
      const b = t.shape[0]!;
      if (b < 1 || b > spec.maxBatchSize) {
        throw invalid(`input '${s.name}' has batch size ${b}; model '${spec.name}' takes 1 to ${spec.maxBatchSize} (max_batch_size)`);
      }
      if (rows !== -1 && b !== rows) {
        throw invalid(`inputs disagree on the batch size (${rows} and ${b} for '${s.name}'); every input needs the same first dimension`);
      }
      rows = b;
    }
    // The non-batch dims of every input (all dims without a batch dimension), '|' between inputs.
    for (let d = batched ? 1 : 0; d < t.shape.length; d++) shapeKey += d > (batched ? 1 : 0) ? `x${t.shape[d]}` : `${t.shape[d]}`;
    present.push(t);
  }
  if (batched && rows === -1) throw invalid(`model '${spec.name}' needs at least one input with a batch dimension; every input given is optional and none was sent`);
  return {
    inputs: present,
    rows: batched ? rows : 1,
    shapeKey,
    outputs: resolveOutputs(req, spec, checks),
  };
}

function resolveOutputs(req: InferRequest, spec: ModelSpec, checks: Checks): readonly PreparedOutput[] {
  if (!req.outputs) return req.binaryOutputDefault ? checks.defaultOutputs.binary : checks.defaultOutputs.json;
  return req.outputs.map((o) => {
    if (!checks.outputNames.has(o.name)) {
      throw invalid(`model '${spec.name}' has no output '${o.name}'; its outputs are ${checks.outputList}`);
    }
    const binary = o.binary ?? req.binaryOutputDefault;
    return { name: o.name, binary, ...(o.classification !== undefined ? { classification: o.classification } : {}), ...(o.shm ? { shm: o.shm } : {}) };
  });
}

/**
 * A raw binary request (Inference-Header-Content-Length: 0): the body is the single input
 * of a single-input model, batch 1; at most one variable dimension, inferred from the size.
 */
export function decodeRawRequest(body: Uint8Array, spec: ModelSpec): InferRequest {
  if (spec.inputs.length !== 1) {
    throw invalid(`a raw binary request (Inference-Header-Content-Length: 0) needs a single-input model; '${spec.name}' has ${spec.inputs.length} inputs`);
  }
  const s = spec.inputs[0]!;
  const dims = spec.maxBatchSize > 0 ? [1, ...s.shape.slice(1)] : [...s.shape];
  let shape: number[];
  if (s.datatype === 'BYTES') {
    if (elementCount(dims.map((d) => (d === -1 ? 1 : d))) !== 1) {
      throw invalid(`a raw binary BYTES request needs an input of one element; '${s.name}' has shape ${shapeText(s.shape)}`);
    }
    shape = dims.map((d) => (d === -1 ? 1 : d));
    return rawRequest(s.name, s.datatype, shape, [new TextDecoder().decode(body)]);
  }
  const variable = dims.filter((d) => d === -1).length;
  if (variable > 1) {
    throw invalid(`a raw binary request cannot infer the shape of '${s.name}' ${shapeText(s.shape)}: more than one variable dimension; send a JSON header`);
  }
  const size = elementSize(s.datatype);
  const fixed = elementCount(dims.filter((d) => d !== -1));
  const total = body.length / size;
  if (!Number.isInteger(total) || (variable === 0 && total !== fixed) || total % fixed !== 0) {
    throw invalid(`a raw binary request for '${s.name}' (${s.datatype} ${shapeText(dims)}) has ${body.length} bytes, which does not fit that shape`);
  }
  shape = dims.map((d) => (d === -1 ? total / fixed : d));
  return rawRequest(s.name, s.datatype, shape, decodeBinary(s.datatype, s.name, body, elementCount(shape)));
}

function rawRequest(name: string, datatype: HostTensor['datatype'], shape: number[], data: HostTensor['data']): InferRequest {
  return {
    id: undefined,
    parameters: {},
    inputs: [{ name, datatype, shape, data }],
    outputs: undefined,
    binaryOutputDefault: true,
  };
}
