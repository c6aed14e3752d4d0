/**
 * Running one batch: concatenate each input along dim 0 into one buffer, one session.run,
 * then slice every output back per request as views (subarray, no copy). A request that runs
 * alone is passed through without concatenation.
 */
import { AgentError } from '../errors.js';
import type { PreparedRequest } from '../protocol/validate-request.js';
import type { HostTensor } from '../protocol/tensor.js';
import type { ModelSpec } from '../sessions/model-spec.js';
import { elementCount, ortTypeOf, type NumericArray, type TensorData } from './datatypes.js';
import type { RunInput, RunOutput } from './ort-session.js';

/** Outputs of one request, by output name. */
export type RequestResult = ReadonlyMap<string, HostTensor>;

function concat(parts: readonly TensorData[], total: number, template: TensorData): TensorData {
  if (Array.isArray(template)) return (parts as string[][]).flat();
  const out = new (template.constructor as new (n: number) => NumericArray)(total);
  let off = 0;
  for (const p of parts as NumericArray[]) {
    (out as Float32Array).set(p as Float32Array, off);
    off += p.length;
  }
  return out;
}

function slice(data: TensorData, start: number, end: number): TensorData {
  return Array.isArray(data) ? data.slice(start, end) : data.subarray(start, end);
}

/**
 * `dims` with its one variable (-1) dimension resolved so that they hold `count` elements
 * (Triton's reshape: the same row-major data seen with other dims).
 */
export function resolveDims(dims: readonly number[], count: number): number[] {
  const known = dims.reduce((n, d) => (d === -1 ? n : n * d), 1);
  return dims.map((d) => (d === -1 ? (known === 0 ? 0 : count / known) : d));
}

/** The dims onnxruntime gets for a tensor a client sent with `shape` (reshape applied). */
function modelDims(reshape: readonly number[] | undefined, shape: readonly number[], batched: boolean): readonly number[] {
  if (!reshape) return shape;
  if (!batched) return resolveDims(reshape, elementCount(shape));
  return [shape[0]!, ...resolveDims(reshape, elementCount(shape.slice(1)))];
}

/**
 * Build the feeds for a batch of requests with equal shape keys. Requests of one batch send
 * the same inputs (optional ones left out by all or none: the shape key says which).
 */
export function batchFeeds(spec: ModelSpec, requests: readonly PreparedRequest[], rows: number): Record<string, RunInput> {
  const feeds: Record<string, RunInput> = {};
  const batched = spec.maxBatchSize > 0;
  const given = requests[0]!.inputs;
  // Usually every input is given, in model order; only left-out optional inputs need a lookup.
  const complete = given.length === spec.inputs.length;
  given.forEach((first, i) => {
    const s = complete ? spec.inputs[i]! : spec.inputs.find((x) => x.name === first.name)!;
    if (requests.length === 1) {
      feeds[s.name] = { type: ortTypeOf(s.datatype), dims: modelDims(s.reshape, first.shape, batched), data: first.data };
      return;
    }
    const dims = [rows, ...first.shape.slice(1)];
    const data = concat(requests.map((r) => r.inputs[i]!.data), elementCount(dims), first.data);
    feeds[s.name] = { type: ortTypeOf(s.datatype), dims: modelDims(s.reshape, dims, batched), data };
  });
  return feeds;
}

/** The shape a client gets for an output the model produced with `dims` (reshape undone). */
function clientDims(o: ModelSpec['outputs'][number], dims: readonly number[], batched: boolean): readonly number[] {
  if (!o.reshape) return dims;
  const own = batched ? o.shape.slice(1) : o.shape;
  if (!batched) return resolveDims(own, elementCount(dims));
  return [dims[0]!, ...resolveDims(own, elementCount(dims.slice(1)))];
}

/** Split batched outputs back into one result per request, in order. */
export function splitOutputs(
  spec: ModelSpec,
  requests: readonly PreparedRequest[],
  rows: number,
  outputs: Record<string, RunOutput>,
): RequestResult[] {
  const results = requests.map(() => new Map<string, HostTensor>());
  const batched = spec.maxBatchSize > 0;
  for (const o of spec.outputs) {
    const t = outputs[o.name];
    if (!t) continue;
    if (requests.length === 1) {
      results[0]!.set(o.name, { name: o.name, datatype: o.datatype, shape: clientDims(o, t.dims, batched), data: t.data });
      continue;
    }
    if (t.dims[0] !== rows) {
      throw new AgentError('INTERNAL', `model '${spec.name}' output '${o.name}' has ${t.dims[0]} rows for a batch of ${rows}; its first dimension is not a batch dimension (set max_batch_size: 0)`);
    }
    const perRow = elementCount(t.dims.slice(1));
    let row = 0;
    requests.forEach((r, i) => {
      const data = slice(t.data, row * perRow, (row + r.rows) * perRow);
      results[i]!.set(o.name, { name: o.name, datatype: o.datatype, shape: clientDims(o, [r.rows, ...t.dims.slice(1)], batched), data });
      row += r.rows;
    });
  }
  return results;
}

/**
 * onnxruntime reports bad input values it could not foresee (a wrong dynamic size, an
 * index out of range) as INVALID_ARGUMENT: that is the client's 400. Anything else is ours.
 */
export function runError(spec: ModelSpec, err: unknown): AgentError {
  const message = (err as Error)?.message ?? String(err);
  const clientFault = /INVALID_ARGUMENT|invalid dimensions|Invalid input|out of range|doesn't match|mismatch/i.test(message);
  return new AgentError(clientFault ? 'INVALID_ARGUMENT' : 'INTERNAL', `model '${spec.name}' failed to run: ${message}`, { cause: err });
}
