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

export function prepareRequest(req: InferRequest, spec: ModelSpec): PreparedRequest {
  const given = new Map(req.inputs.map((t) => [t.name, t]));
  for (const t of req.inputs) {
    if (!spec.inputs.some((s) => s.name === t.name)) {
      throw invalid(`model '${spec.name}' has no input '${t.name}'; its inputs are ${spec.inputs.map((s) => s.name).join(', ')}`);
    }
  }
  let rows = -1;
  const keyParts: string[] = [];
  const inputs: HostTensor[] = [];
  for (const s of spec.inputs) {
    const t = given.get(s.name);
    if (!t && s.optional) {
      keyParts.push('-'); // requests without it batch only with each other
      continue;
    }
    if (!t) throw invalid(`input '${s.name}' is missing; model '${spec.name}' needs ${spec.inputs.filter((x) => !x.optional).map((x) => x.name).join(', ')}`);
    if (t.datatype !== s.datatype) {
      throw invalid(`input '${s.name}' has datatype ${t.datatype} but model '${spec.name}' expects ${s.datatype}`);
    }
    const expected = spec.maxBatchSize > 0 ? `[b,${s.shape.slice(1).join(',')}]`.replace(',]', ']') : shapeText(s.shape);
    if (t.shape.length !== s.shape.length) {
      throw invalid(`input '${s.name}' has shape ${shapeText(t.shape)} but model '${spec.name}' expects ${expected} (-1 = any size)`);
    }
    s.shape.forEach((d, i) => {
      if (i === 0 && spec.maxBatchSize > 0) return;
      if (d !== -1 && t.shape[i] !== d) {
        throw invalid(`input '${s.name}' has shape ${shapeText(t.shape)} but model '${spec.name}' expects ${expected} (-1 = any size)`);
      }
    });
    if (spec.maxBatchSize > 0) {
      const b = t.shape[0]!;
      if (b < 1 || b > spec.maxBatchSize) {
        throw invalid(`input '${s.name}' has batch size ${b}; model '${spec.name}' takes 1 to ${spec.maxBatchSize} (max_batch_size)`);
      }
      if (rows !== -1 && b !== rows) {
        throw invalid(`inputs disagree on the batch size (${rows} and ${b} for '${s.name}'); every input needs the same first dimension`);
      }
      rows = b;
      keyParts.push(t.shape.slice(1).join('x'));
    } else {
      keyParts.push(t.shape.join('x'));
    }
    inputs.push(t);
  }
  if (spec.maxBatchSize > 0 && rows === -1) throw invalid(`model '${spec.name}' needs at least one input with a batch dimension; every input given is optional and none was sent`);
  return {
    inputs,
    rows: spec.maxBatchSize > 0 ? rows : 1,
    shapeKey: keyParts.join('|'),
    outputs: resolveOutputs(req, spec),
  };
}

function resolveOutputs(req: InferRequest, spec: ModelSpec): PreparedOutput[] {
  if (!req.outputs) return spec.outputs.map((o) => ({ name: o.name, binary: req.binaryOutputDefault }));
  return req.outputs.map((o) => {
    if (!spec.outputs.some((s) => s.name === o.name)) {
      throw invalid(`model '${spec.name}' has no output '${o.name}'; its outputs are ${spec.outputs.map((s) => s.name).join(', ')}`);
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
