/**
 * Triton's classification extension: an output requested with
 * `"parameters": {"classification": k}` comes back as BYTES strings "score:index" or
 * "score:index:label" (labels from the output's `label_filename`), the k best classes of
 * each batch row, best first. Shape [batch, k] for a batching model, [k] otherwise.
 */
import { invalid } from '../errors.js';
import { halfToFloat } from '../execution/datatypes.js';
import { formatClassification, topKRows } from '../postprocess/classification.js';
import type { HostTensor } from './tensor.js';

export function classifyOutput(t: HostTensor, k: number, batched: boolean, labels: readonly string[] | undefined): HostTensor {
  if (t.datatype === 'BYTES' || t.datatype === 'BOOL' || Array.isArray(t.data)) {
    throw invalid(`output '${t.name}' is ${t.datatype}; the classification extension needs a numeric output`);
  }
  const data = t.data;
  // FP32 scores stay float32, so they print as the model computed them ("0.75", not "0.75000001...").
  const scores = t.datatype === 'FP64' || t.datatype.includes('INT') ? new Float64Array(data.length) : new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) scores[i] = t.datatype === 'FP16' ? halfToFloat(data[i] as number) : Number(data[i]!);
  const rows = batched ? (t.shape[0] ?? 1) : 1;
  const classes = rows === 0 ? 0 : scores.length / rows;
  if (classes < 1) throw invalid(`output '${t.name}' has no values to classify`);
  const take = Math.min(k, classes);
  const best = topKRows(scores, classes, take, labels);
  const strings = best.flatMap(formatClassification);
  return { name: t.name, datatype: 'BYTES', shape: batched ? [rows, take] : [take], data: strings };
}
