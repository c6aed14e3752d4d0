/**
 * The tensors of one sequence batch: the clients' inputs concatenated along dim 0 (as any
 * batch), plus the agent's own: control values per row, each sequence's implicit state stacked
 * along its batch axis, and the constant inputs. After the run, each sequence's new state is
 * cut back out of the state outputs.
 */
import { allocate, elementCount, ortTypeOf, type NumericArray, type TensorData } from '../execution/datatypes.js';
import type { RunInput, RunOutput } from '../execution/ort-session.js';
import type { ControlFeed, SequenceSpec, StateTensor } from './spec.js';

/** What a batch row needs of its sequence. */
export interface SequenceRow {
  readonly start: boolean;
  readonly end: boolean;
  /** The correlation id, for CONTROL_SEQUENCE_CORRID. */
  readonly corrId: number | bigint | string;
  /** Its current state, by state input name (absent: the initial state). */
  readonly state: ReadonlyMap<string, TensorData>;
}

function controlTensor(c: ControlFeed, rows: readonly SequenceRow[], batched: boolean): RunInput {
  const dims = batched ? [rows.length, 1] : [1];
  const data = allocate(c.datatype, rows.length);
  rows.forEach((r, i) => {
    let v: number | boolean | bigint | string;
    if (c.kind === 'CONTROL_SEQUENCE_CORRID') v = r.corrId;
    else {
      const on = c.kind === 'CONTROL_SEQUENCE_START' ? r.start : c.kind === 'CONTROL_SEQUENCE_END' ? r.end : true;
      v = c.falseTrue![on ? 1 : 0]!;
    }
    if (Array.isArray(data)) data[i] = String(v);
    else if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(v as number);
    else (data as Float32Array)[i] = typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
  });
  return { type: ortTypeOf(c.datatype), dims, data };
}

/** Stack per-sequence states of dims D along `axis`: outer = prod(D[:axis]), inner = prod(D[axis:]). */
export function stackStates(parts: readonly NumericArray[], dims: readonly number[], axis: number): { dims: number[]; data: NumericArray } {
  const k = parts.length;
  const outDims = [...dims.slice(0, axis), k, ...dims.slice(axis)];
  if (k === 1) return { dims: outDims, data: parts[0]! };
  const outer = elementCount(dims.slice(0, axis));
  const inner = elementCount(dims.slice(axis));
  const out = new (parts[0]!.constructor as new (n: number) => NumericArray)(outer * k * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < k; j++) (out as Float32Array).set((parts[j]! as Float32Array).subarray(o * inner, (o + 1) * inner), (o * k + j) * inner);
  }
  return { dims: outDims, data: out };
}

/** The inverse of stackStates: sequence j's state (a copy, or the tensor itself for one sequence). */
export function unstackState(data: NumericArray, dims: readonly number[], axis: number, k: number, j: number): NumericArray {
  if (k === 1) return data;
  const outer = elementCount(dims.slice(0, axis));
  const inner = elementCount(dims.slice(axis));
  const out = new (data.constructor as new (n: number) => NumericArray)(outer * inner);
  for (let o = 0; o < outer; o++) (out as Float32Array).set((data as Float32Array).subarray((o * k + j) * inner, (o * k + j + 1) * inner), o * inner);
  return out;
}

function stateOf(s: StateTensor, row: SequenceRow): NumericArray {
  return (row.state.get(s.inputName) ?? s.initial) as NumericArray;
}

/** The agent's feeds (controls, states, constants) for `rows`, added to `feeds`. */
export function addSequenceFeeds(seq: SequenceSpec, rows: readonly SequenceRow[], batched: boolean, feeds: Record<string, RunInput>): Record<string, RunInput> {
  for (const c of seq.controls) feeds[c.name] = controlTensor(c, rows, batched);
  for (const s of seq.states) {
    const parts = rows.map((r) => stateOf(s, r));
    const stacked = batched ? stackStates(parts, s.dims, s.axis) : { dims: [...s.dims], data: parts[0]! };
    feeds[s.inputName] = { type: ortTypeOf(s.datatype), dims: stacked.dims, data: stacked.data };
  }
  for (const c of seq.constants) feeds[c.name] = { type: ortTypeOf(c.datatype), dims: c.dims, data: c.data };
  return feeds;
}

/** Each row's new state, by state input name, from the run's state outputs. */
export function splitStates(seq: SequenceSpec, outputs: Record<string, RunOutput>, k: number, batched: boolean): Map<string, TensorData>[] {
  const result = Array.from({ length: k }, () => new Map<string, TensorData>());
  for (const s of seq.states) {
    const t = outputs[s.outputName];
    if (!t) throw new Error(`the model returned no state output '${s.outputName}'`);
    const want = elementCount(s.dims) * k;
    if (elementCount(t.dims) !== want) throw new Error(`state output '${s.outputName}' has dims [${t.dims.join(',')}]; the state needs ${want} elements for ${k} sequence(s) of dims [${s.dims.join(',')}]`);
    for (let j = 0; j < k; j++) result[j]!.set(s.inputName, batched ? unstackState(t.data as NumericArray, s.dims, s.axis, k, j) : t.data);
  }
  return result;
}
