/** Classification outputs: softmax and top-k, and Triton's "score:index:label" strings. */

/**
 * Softmax over consecutive groups of `classes` values (rows of a [rows, classes] tensor);
 * `classes` defaults to the whole array. Numerically stable (subtracts each row's max).
 */
export function softmax(values: ArrayLike<number>, classes: number = values.length): Float32Array {
  if (!Number.isInteger(classes) || classes < 1 || values.length % classes !== 0) {
    throw new Error(`softmax: ${values.length} values do not split into rows of ${classes} classes`);
  }
  const out = new Float32Array(values.length);
  for (let start = 0; start < values.length; start += classes) {
    let max = -Infinity;
    for (let i = start; i < start + classes; i++) if (values[i]! > max) max = values[i]!;
    let sum = 0;
    for (let i = start; i < start + classes; i++) {
      const e = Math.exp(values[i]! - max);
      out[i] = e;
      sum += e;
    }
    for (let i = start; i < start + classes; i++) out[i] = out[i]! / sum;
  }
  return out;
}

export interface ClassScore {
  index: number;
  /** labels[index], or undefined when there are no labels (or fewer than classes). */
  label: string | undefined;
  score: number;
}

/**
 * The k highest scores, best first; ties keep the lower index first. NaN scores rank last.
 * `k` larger than the number of classes returns them all.
 */
export function topK(scores: ArrayLike<number>, k: number, labels?: readonly string[]): ClassScore[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK: k must be an integer ≥ 1 (got ${k})`);
  const n = scores.length;
  const take = Math.min(k, n);
  // Selection by a small sorted buffer: O(n·k), fine for the usual k ≤ 10 and n ≤ 100k.
  const best: number[] = [];
  const better = (a: number, b: number) => {
    const sa = scores[a]!;
    const sb = scores[b]!;
    if (Number.isNaN(sb)) return !Number.isNaN(sa) || a < b;
    if (Number.isNaN(sa)) return false;
    return sa > sb || (sa === sb && a < b);
  };
  for (let i = 0; i < n; i++) {
    if (best.length === take && !better(i, best[take - 1]!)) continue;
    let j = best.length < take ? best.length : take - 1;
    if (best.length < take) best.push(i);
    while (j > 0 && better(i, best[j - 1]!)) {
      best[j] = best[j - 1]!;
      j--;
    }
    best[j] = i;
  }
  return best.map((index) => ({ index, label: labels?.[index], score: scores[index]! }));
}

/** Top-k of each row of a [rows, classes] tensor. */
export function topKRows(scores: ArrayLike<number>, classes: number, k: number, labels?: readonly string[]): ClassScore[][] {
  if (!Number.isInteger(classes) || classes < 1 || scores.length % classes !== 0) {
    throw new Error(`topKRows: ${scores.length} values do not split into rows of ${classes} classes`);
  }
  const rows: ClassScore[][] = [];
  for (let start = 0; start < scores.length; start += classes) {
    rows.push(topK(Array.from({ length: classes }, (_, i) => scores[start + i]!), k, labels));
  }
  return rows;
}

/** Triton's classification extension strings: "score:index" or "score:index:label". */
export function formatClassification(results: readonly ClassScore[]): string[] {
  return results.map((r) => (r.label === undefined ? `${r.score}:${r.index}` : `${r.score}:${r.index}:${r.label}`));
}
