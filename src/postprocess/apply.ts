/**
 * Applying an output's declared postprocessing to a request's result: classification rows
 * become Triton's classification strings ("score:index:label"), CTC rows become text. The
 * structured values are kept too, for the /v1 predict route's JSON answer.
 */
import type { HostTensor } from '../protocol/tensor.js';
import { softmax, topKRows, formatClassification, type ClassScore } from './classification.js';
import { ctcGreedyDecodeBatch, type CtcResult } from './ctc.js';
import type { Postprocess } from './schema.js';

export type Postprocessed =
  | { readonly type: 'classification'; readonly tensor: HostTensor; readonly rows: ClassScore[][] }
  | { readonly type: 'ctc'; readonly tensor: HostTensor; readonly rows: CtcResult[] };

function floats(t: HostTensor): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new Error(`output '${t.name}' is ${t.datatype}; postprocessing needs FP32`);
  return t.data;
}

export function applyPostprocess(t: HostTensor, pp: Postprocess, dictionary: readonly string[] | undefined): Postprocessed | undefined {
  if (pp.type === 'classification') {
    const rows = t.shape[0] ?? 1;
    const classes = t.data.length / rows;
    let scores: Float32Array = floats(t);
    if (pp.apply_softmax) {
      const out = new Float32Array(scores.length);
      for (let r = 0; r < rows; r++) out.set(softmax(scores.subarray(r * classes, (r + 1) * classes)), r * classes);
      scores = out;
    }
    const k = Math.min(pp.top_k, classes);
    const result = topKRows(scores, classes, k, dictionary);
    return { type: 'classification', rows: result, tensor: { name: t.name, datatype: 'BYTES', shape: [rows, k], data: result.flatMap(formatClassification) } };
  }
  if (pp.type === 'ctc') {
    const result = ctcGreedyDecodeBatch(floats(t), t.shape, dictionary ?? []);
    return { type: 'ctc', rows: result, tensor: { name: t.name, datatype: 'BYTES', shape: [result.length, 1], data: result.map((r) => r.text) } };
  }
  return undefined;
}
