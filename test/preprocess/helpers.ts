// Shared by the preprocess/OCR tests: rendered text images, the real PaddleOCR models, and a
// runModel that calls onnxruntime-node sessions directly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { fetchOcrModels } from '../../scripts/fetch-models.mjs';
import type { HostTensor } from '../../src/protocol/tensor.js';
import type { RunModel } from '../../src/pipeline/ocr.js';

export const FONT = 'DejaVu Sans, sans-serif';

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A PNG with black text lines on white, `size` px font, lines `gap` px apart. */
export async function renderText(
  lines: readonly string[],
  opts: { width?: number; height?: number; size?: number; x?: number; y?: number; gap?: number; rotate180?: boolean } = {},
): Promise<Buffer> {
  const size = opts.size ?? 40;
  const gap = opts.gap ?? Math.round(size * 1.8);
  const x = opts.x ?? 20;
  const y0 = opts.y ?? 20 + size;
  const width = opts.width ?? 640;
  const height = opts.height ?? y0 + gap * (lines.length - 1) + size;
  const text = lines
    .map((l, i) => `<text x="${x}" y="${y0 + i * gap}" font-size="${size}" font-family="${FONT}" fill="black">${escapeXml(l)}</text>`)
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${text}</svg>`;
  let img = sharp(Buffer.from(svg));
  if (opts.rotate180) img = sharp(await img.png().toBuffer()).rotate(180);
  return img.png().toBuffer();
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** 1 − edit distance / longer length: 1 = identical. */
export function similarity(a: string, b: string): number {
  const n = Math.max(a.length, b.length);
  return n === 0 ? 1 : 1 - editDistance(a, b) / n;
}

export interface OcrModels {
  repo: string;
  sessions: Record<'text_detection' | 'text_direction' | 'text_recognition', ort.InferenceSession>;
  dictFile: string;
  runModel: RunModel;
  /** Model calls made through runModel: [model, input shape]. */
  calls: [string, number[]][];
  close(): Promise<void>;
}

/** Copy the PaddleOCR models into a temporary repository and open a session for each. */
export async function openOcrModels(): Promise<OcrModels> {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'gna-ocr-'));
  await fetchOcrModels(repo, { all: true });
  const opt: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1 };
  const names = ['text_detection', 'text_direction', 'text_recognition'] as const;
  const created = await Promise.all(names.map((n) => ort.InferenceSession.create(path.join(repo, n, '1', 'model.onnx'), opt)));
  const sessions = Object.fromEntries(names.map((n, i) => [n, created[i]!])) as OcrModels['sessions'];
  const calls: [string, number[]][] = [];
  const runModel: RunModel = async (model, input) => {
    const s = sessions[model as keyof typeof sessions];
    if (!s) throw new Error(`unknown model '${model}'`);
    calls.push([model, [...input.shape]]);
    const out = await s.run({ [input.name]: new ort.Tensor('float32', input.data as Float32Array, [...input.shape]) });
    return s.outputNames.map((name): HostTensor => {
      const t = out[name]!;
      return { name, datatype: 'FP32', shape: [...t.dims], data: t.data as Float32Array };
    });
  };
  return {
    repo, sessions, runModel, calls,
    dictFile: path.join(repo, 'text_recognition', 'ppocr_keys_v1.txt'),
    async close() {
      await Promise.all(created.map((s) => s.release()));
      fs.rmSync(repo, { recursive: true, force: true });
    },
  };
}
