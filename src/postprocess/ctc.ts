/**
 * CTC greedy decoding for PaddleOCR recognition models: per time step take the most likely
 * class, collapse repeats, drop blanks. Classes are [blank, dict[0], ..., dict[n-1], ' '?]:
 * class 0 is the blank, class i (1 ≤ i ≤ n) is dict[i-1], and when the model has n + 2
 * classes the last one is the space (PaddleOCR's use_space_char).
 */

export interface CtcResult {
  text: string;
  /** Mean of the kept characters' probabilities; 0 when no character was kept. */
  confidence: number;
}

export interface CtcOptions {
  /** Index of the blank class; default 0 (PaddleOCR). */
  blank?: number;
}

/** The character of each class: '' for the blank, ' ' for the extra space class. */
function classTable(classes: number, dict: readonly string[], blank: number): string[] {
  if (classes !== dict.length + 1 && classes !== dict.length + 2) {
    throw new Error(
      `ctc: the model has ${classes} classes but the dictionary has ${dict.length} entries; ` +
      `expected ${classes - 2} (blank + dictionary + space) or ${classes - 1} (blank + dictionary): is it the right dict_file?`,
    );
  }
  if (blank !== 0) throw new Error('ctc: only blank index 0 is supported (PaddleOCR)');
  const table = ['', ...dict];
  if (classes === dict.length + 2) table.push(' ');
  return table;
}

/**
 * Decode one sequence: `probs` is [steps, classes] row-major (softmax output, as PaddleOCR's
 * recognition model emits; for logits the confidence is not a probability).
 */
export function ctcGreedyDecode(probs: ArrayLike<number>, steps: number, classes: number, dict: readonly string[], options: CtcOptions = {}): CtcResult {
  const blank = options.blank ?? 0;
  const table = classTable(classes, dict, blank);
  return decodeWith(probs, 0, steps, classes, table, blank);
}

function decodeWith(probs: ArrayLike<number>, offset: number, steps: number, classes: number, table: readonly string[], blank: number): CtcResult {
  if (probs.length < offset + steps * classes) {
    throw new Error(`ctc: ${probs.length - offset} values are fewer than steps ${steps} × classes ${classes}`);
  }
  let text = '';
  let sum = 0;
  let kept = 0;
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    const row = offset + t * classes;
    let best = 0;
    let bestP = probs[row]!;
    for (let c = 1; c < classes; c++) {
      const p = probs[row + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== blank && best !== prev) {
      text += table[best]!;
      sum += bestP;
      kept++;
    }
    prev = best;
  }
  return { text, confidence: kept ? sum / kept : 0 };
}

/** Decode each item of a [batch, steps, classes] tensor. */
export function ctcGreedyDecodeBatch(
  probs: ArrayLike<number>,
  shape: readonly [number, number, number] | readonly number[],
  dict: readonly string[],
  options: CtcOptions = {},
): CtcResult[] {
  if (shape.length !== 3) throw new Error(`ctc: expected an output of shape [batch, steps, classes], got ${JSON.stringify(shape)}`);
  const [batch, steps, classes] = shape as [number, number, number];
  const blank = options.blank ?? 0;
  const table = classTable(classes, dict, blank);
  const out: CtcResult[] = [];
  for (let b = 0; b < batch; b++) out.push(decodeWith(probs, b * steps * classes, steps, classes, table, blank));
  return out;
}
