/**
 * Text boxes from a DB (Differentiable Binarization) probability map, as PaddleOCR's
 * DBPostProcess does it, simplified to axis-aligned boxes: threshold the map, find connected
 * regions (8-connectivity), score each by the mean probability inside its bounding box, and
 * grow it by the "unclip" distance (the model predicts shrunk text regions).
 */

export interface DbOptions {
  /** Pixels with probability above this are text (PaddleOCR det_db_thresh 0.3). */
  threshold: number;
  /** Boxes whose mean probability is below this are dropped (det_db_box_thresh 0.6). */
  box_threshold: number;
  /** Growth: each side moves out by area · ratio / perimeter (PaddleOCR det_db_unclip_ratio 1.5; 2.0 usual per OpenCV). */
  unclip_ratio: number;
  /** Regions whose shorter side is below this (in map pixels) are dropped (3). */
  min_size: number;
  /** At most this many boxes, the largest regions first. */
  max_boxes: number;
}

/** A box on the probability map, in continuous pixel coordinates: [x0, x1) × [y0, y1). */
export interface DbBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** Mean probability inside the region's bounding box. */
  score: number;
}

interface Region {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
  pixels: number;
}

/** Connected regions of `mask` (8-connectivity), by iterative flood fill. */
function regions(mask: Uint8Array, width: number, height: number): Region[] {
  const seen = new Uint8Array(mask.length);
  const stack = new Int32Array(mask.length);
  const out: Region[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let sp = 0;
    stack[sp++] = start;
    seen[start] = 1;
    const r: Region = { minX: width, minY: height, maxX: -1, maxY: -1, pixels: 0 };
    while (sp > 0) {
      const p = stack[--sp]!;
      const x = p % width;
      const y = (p - x) / width;
      r.pixels++;
      if (x < r.minX) r.minX = x;
      if (x > r.maxX) r.maxX = x;
      if (y < r.minY) r.minY = y;
      if (y > r.maxY) r.maxY = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width || (dx === 0 && dy === 0)) continue;
          const q = ny * width + nx;
          if (mask[q] && !seen[q]) {
            seen[q] = 1;
            stack[sp++] = q;
          }
        }
      }
    }
    out.push(r);
  }
  return out;
}

/** Boxes from a [height, width] probability map. Pure. */
export function dbBoxes(prob: ArrayLike<number>, width: number, height: number, opts: DbOptions): DbBox[] {
  if (prob.length < width * height) throw new Error(`detection map has ${prob.length} values, fewer than ${width}×${height}`);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = prob[i]! > opts.threshold ? 1 : 0;
  const found = regions(mask, width, height).sort((a, b) => b.pixels - a.pixels);
  const boxes: DbBox[] = [];
  for (const r of found) {
    if (boxes.length >= opts.max_boxes) break;
    const w = r.maxX - r.minX + 1;
    const h = r.maxY - r.minY + 1;
    if (Math.min(w, h) < opts.min_size) continue;
    let sum = 0;
    for (let y = r.minY; y <= r.maxY; y++) for (let x = r.minX; x <= r.maxX; x++) sum += prob[y * width + x]!;
    const score = sum / (w * h);
    if (score < opts.box_threshold) continue;
    const d = (w * h * opts.unclip_ratio) / (2 * (w + h));
    const box = { x0: r.minX - d, y0: r.minY - d, x1: r.maxX + 1 + d, y1: r.maxY + 1 + d, score };
    if (Math.min(box.x1 - box.x0, box.y1 - box.y0) < opts.min_size + 2) continue;
    boxes.push(box);
  }
  return boxes;
}

/**
 * Order boxes for reading: top to bottom by lines, left to right within a line. Two boxes are
 * on the same line when they overlap vertically by at least half the smaller height.
 */
export function readingOrder<T extends { box: readonly [number, number, number, number] }>(items: readonly T[]): T[] {
  const sorted = [...items].sort((a, b) => a.box[1] - b.box[1] || a.box[0] - b.box[0]);
  const lines: { y0: number; y1: number; items: T[] }[] = [];
  for (const it of sorted) {
    const [, y0, , y1] = it.box;
    const line = lines.find((l) => {
      const overlap = Math.min(l.y1, y1) - Math.max(l.y0, y0);
      return overlap >= 0.5 * Math.min(l.y1 - l.y0, y1 - y0);
    });
    if (line) {
      line.items.push(it);
      line.y0 = Math.min(line.y0, y0);
      line.y1 = Math.max(line.y1, y1);
    } else {
      lines.push({ y0, y1, items: [it] });
    }
  }
  lines.sort((a, b) => a.y0 - b.y0);
  return lines.flatMap((l) => l.items.sort((a, b) => a.box[0] - b.box[0]));
}
