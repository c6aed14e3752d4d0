/**
 * Running one batch: concatenate each input along dim 0 into one buffer, one session.run,
 * then slice every output back per request as views (subarray, no copy). A request that runs
 * alone is passed through without concatenation.
 */
import { AgentError } from '../errors.js';
import type { PreparedRequest } from '../protocol/validate-request.js';
import type { HostTensor } from '../protocol/tensor.js';
import type { ModelSpec } from '../sessions/model-spec.js';
import { allocate, elementCount, ortTypeOf, type NumericArray, type TensorData } from './datatypes.js';
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

/** Build the feeds for a batch of requests with equal shape keys. */
export function batchFeeds(spec: ModelSpec, requests: readonly PreparedRequest[], rows: number): Record<string, RunInput> {
  const feeds: Record<string, RunInput> = {};
  spec.inputs.forEach((s, i) => {
    const first = requests[0]!.inputs[i]!;
    if (requests.length === 1) {
      feeds[s.name] = { type: ortTypeOf(s.datatype), dims: first.shape, data: first.data };
      return;
    }
    const dims = [rows, ...first.shape.slice(1)];
    const data = concat(requests.map((r) => r.inputs[i]!.data), elementCount(dims), first.data);
    feeds[s.name] = { type: ortTypeOf(s.datatype), dims, data };
  });
  return feeds;
}

/** Split batched outputs back into one result per request, in order. */
export function splitOutputs(
  spec: ModelSpec,
  requests: readonly PreparedRequest[],
  rows: number,
  outputs: Record<string, RunOutput>,
): RequestResult[] {
  const results = requests.map(() => new Map<string, HostTensor>());
  for (const o of spec.outputs) {
    const t = outputs[o.name];
    if (!t) continue;
    if (requests.length === 1) {
      results[0]!.set(o.name, { name: o.name, datatype: o.datatype, shape: t.dims, data: t.data });
      continue;
    }
    if (t.dims[0] !== rows) {
      throw new AgentError('INTERNAL', `model '${spec.name}' output '${o.name}' has ${t.dims[0]} rows for a batch of ${rows}; its first dimension is not a batch dimension (set max_batch_size: 0)`);
    }
    const perRow = elementCount(t.dims.slice(1));
    let row = 0;
    requests.forEach((r, i) => {
      const data = slice(t.data, row * perRow, (row + r.rows) * perRow);
      results[i]!.set(o.name, { name: o.name, datatype: o.datatype, shape: [r.rows, ...t.dims.slice(1)], data });
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

/** Zero data at `rows` (variable non-batch dims take 32), for warm-up at load. */
export function zeroRequest(spec: ModelSpec, rows: number): PreparedRequest {
  const inputs = spec.inputs.map((s) => {
    const shape = s.shape.map((d, i) => (i === 0 && spec.maxBatchSize > 0 ? rows : d === -1 ? 32 : d));
    return { name: s.name, datatype: s.datatype, shape, data: allocate(s.datatype, elementCount(shape)) };
  });
  return { inputs, rows, shapeKey: 'warmup', outputs: spec.outputs.map((o) => ({ name: o.name, binary: true })) };
}
