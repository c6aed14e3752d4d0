/**
 * OCR: image bytes → lines of text with boxes, over three PaddleOCR models served by the agent
 * (text_detection, text_direction, text_recognition). The models are reached only through an
 * injected `runModel`, so each call goes through that model's batcher and concurrent OCR
 * requests share batches; everything else here is deterministic.
 *
 *   decode (sharp) → detection (PP-OCRv4 det, DB boxes) → crops
 *     → direction (cls 0°/180°, rotate when p(180°) > threshold) → recognition (CTC) → sort
 *
 * Any stage that fails fails the whole call with an OcrStageError naming the stage; its
 * `cause` is the original error (an ImageError for stage 'decode': a bad image, answer 400).
 */
import { z } from 'zod';
import { formatIssues, strictObject } from '../util/zod-issues.js';
import type { HostTensor } from '../protocol/tensor.js';
import {
  cropRaw, decodeRaw, preprocessRaw, rotateRaw180,
  type DecodeOptions, type DecodeQueue, type PreprocessedImage, type RawImage,
} from '../preprocess/image.js';
import { parseImagePreprocess, type ImagePreprocess } from '../preprocess/schema.js';
import { ctcGreedyDecodeBatch, type CtcResult } from '../postprocess/ctc.js';
import { dbBoxes, readingOrder } from './db-postprocess.js';

// ---------------------------------------------------------------------------------------------
// Configuration

const name = (field: string, dflt: string) => z.string({ error: `${field} must be a name, e.g. "${dflt}"` }).min(1, { error: `${field} must not be empty` }).default(dflt);
const prob = (field: string, dflt: number) =>
  z.number({ error: `${field} must be a number between 0 and 1` }).min(0, { error: `${field} must be ≥ 0` }).max(1, { error: `${field} must be ≤ 1` }).default(dflt);
const count = (field: string, dflt: number, max = 65535) =>
  z.number({ error: `${field} must be a positive integer` }).int({ error: `${field} must be an integer` })
    .min(1, { error: `${field} must be at least 1` }).max(max, { error: `${field} must be at most ${max}` }).default(dflt);

export const OcrDetectionSchema = strictObject({
  model: name('detection.model', 'text_detection'),
  input: name('detection.input', 'x'),
  /** Output to read; default the model's first output. */
  output: z.string().min(1).optional(),
  /** Longest side of the detection input (PaddleOCR limit_side_len 960); smaller images are not enlarged. */
  max_side: count('detection.max_side', 960, 4096),
  multiple_of: count('detection.multiple_of', 32, 256),
  threshold: prob('detection.threshold', 0.3),
  box_threshold: prob('detection.box_threshold', 0.6),
  /**
   * How far boxes grow beyond the shrunk text region DB predicts. 2.0, the value OpenCV's DB
   * text detector documents as usual: with PaddleOCR's 1.5 the axis-aligned crops here were so
   * tight that the recogniser dropped the spaces ("HELLOWORLD2026").
   */
  unclip_ratio: z.number({ error: 'detection.unclip_ratio must be a number, e.g. 2.0' }).min(0, { error: 'detection.unclip_ratio must be ≥ 0' }).max(4, { error: 'detection.unclip_ratio must be ≤ 4' }).default(2.0),
  min_size: count('detection.min_size', 3),
  max_boxes: count('detection.max_boxes', 200, 10000),
}, 'ocr.detection');

export const OcrDirectionSchema = strictObject({
  /** false: skip the classifier; every line is taken as upright. */
  enabled: z.boolean({ error: 'direction.enabled must be true or false' }).default(true),
  model: name('direction.model', 'text_direction'),
  input: name('direction.input', 'x'),
  output: z.string().min(1).optional(),
  /** Rotate a line when p(180°) exceeds this (PaddleOCR cls_thresh 0.9). */
  threshold: prob('direction.threshold', 0.9),
  /** Lines per model call (at most the model's max_batch_size). */
  batch_size: count('direction.batch_size', 8, 1024),
}, 'ocr.direction');

export const OcrRecognitionSchema = strictObject({
  model: name('recognition.model', 'text_recognition'),
  input: name('recognition.input', 'x'),
  output: z.string().min(1).optional(),
  /** Lines are padded to at least this width (PaddleOCR rec_image_shape 3,48,320). */
  min_width: count('recognition.min_width', 320, 8192),
  /** Lines longer than this (at height 48) are squeezed into it. */
  max_width: count('recognition.max_width', 1600, 8192),
  batch_size: count('recognition.batch_size', 8, 1024),
  /** Lines recognised with a lower confidence are dropped (PaddleOCR drop_score 0.5). */
  min_confidence: prob('recognition.min_confidence', 0.5),
}, 'ocr.recognition').refine((r) => r.min_width <= r.max_width, { error: 'recognition.min_width must be ≤ recognition.max_width', path: ['min_width'] });

export const OcrConfigSchema = strictObject({
  detection: OcrDetectionSchema.prefault({}),
  direction: OcrDirectionSchema.prefault({}),
  recognition: OcrRecognitionSchema.prefault({}),
  /** Largest image accepted (width × height); lowers the agent-wide limit. */
  max_pixels: z.number().int({ error: 'max_pixels must be an integer' }).min(1, { error: 'max_pixels must be at least 1' }).optional(),
}, 'ocr');

export type OcrConfigInput = z.input<typeof OcrConfigSchema>;
export type OcrConfig = z.output<typeof OcrConfigSchema>;

export function parseOcrConfig(source: string, raw: unknown): OcrConfig {
  const r = OcrConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    throw new Error(formatIssues(source, r.error));
  }
  return r.data;
}

// ---------------------------------------------------------------------------------------------
// Preprocessing specs of the three models (PaddleOCR's, see docs/models.md)

/** 1/255. */
const SCALE = 1 / 255;

/** PaddleOCR det: BGR, longest side ≤ max_side, sides rounded to multiples of 32, ImageNet mean/std. */
export function detectionPreprocess(cfg: OcrConfig['detection']): ImagePreprocess {
  return parseImagePreprocess('ocr detection', {
    color: 'BGR',
    resize: { mode: 'keep_aspect', max_side: cfg.max_side, multiple_of: cfg.multiple_of },
    scale: SCALE, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
    layout: 'NCHW', datatype: 'FP32',
  });
}

/**
 * PaddleOCR cls/rec: BGR, height 48 keeping the aspect ratio, left-aligned, (x/255 − 0.5)/0.5,
 * right-padded with tensor value 0 (PaddleOCR pads after normalising) up to `width`.
 */
export function linePreprocess(width: number, height = 48): ImagePreprocess {
  return parseImagePreprocess('ocr line', {
    color: 'BGR',
    resize: { mode: 'fixed_height', height, width, pad_value: 0 },
    scale: SCALE, mean: [0.5], std: [0.5],
    layout: 'NCHW', datatype: 'FP32',
  });
}

// ---------------------------------------------------------------------------------------------
// Errors and plumbing

export type OcrStage = 'decode' | 'detection' | 'crop' | 'direction' | 'recognition';

export class OcrStageError extends Error {
  readonly stage: OcrStage;

  constructor(stage: OcrStage, detail: string, cause: unknown) {
    super(`OCR stage '${stage}' failed: ${detail}`, { cause });
    this.name = 'OcrStageError';
    this.stage = stage;
  }
}

/**
 * Runs one model on one input tensor (batch on axis 0) and resolves to its outputs. The agent
 * passes a function that goes through the model's batcher.
 */
export type RunModel = (model: string, input: HostTensor) => Promise<readonly HostTensor[]>;

export interface OcrDeps {
  runModel: RunModel;
  /** The recognition model's character dictionary (ppocr_keys_v1.txt, via loadDictionary). */
  dictionary: readonly string[];
  /** The agent's decode queue: the decode stage waits for a slot (model calls do not hold one). */
  decodeQueue?: DecodeQueue;
}

export interface OcrLine {
  text: string;
  /** Recognition confidence: mean probability of the kept characters. */
  confidence: number;
  /** [x0, y0, x1, y1] in pixels of the (auto-oriented) image, x1/y1 exclusive. */
  box: [number, number, number, number];
  /** 180 when the line was upside down (and was turned before recognition). */
  angle: 0 | 180;
}

export interface OcrRunOptions extends DecodeOptions {
  /** Filled with the milliseconds each stage took. */
  timings?: Partial<Record<OcrStage, number>>;
}

async function stage<T>(name: OcrStage, timings: OcrRunOptions['timings'], fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OcrStageError) throw err;
    throw new OcrStageError(name, err instanceof Error ? err.message : String(err), err);
  } finally {
    if (timings) timings[name] = (timings[name] ?? 0) + (performance.now() - t0);
  }
}

/** The output `name` (or the first) as float32 data, checked against an expected rank. */
function pickOutput(model: string, outputs: readonly HostTensor[], name: string | undefined, rank: number): { data: Float32Array; shape: readonly number[] } {
  const t = name === undefined ? outputs[0] : outputs.find((o) => o.name === name);
  if (!t) {
    throw new Error(`model '${model}' returned no output${name ? ` named '${name}' (it returned ${outputs.map((o) => `'${o.name}'`).join(', ') || 'none'})` : ''}`);
  }
  if (!(t.data instanceof Float32Array)) throw new Error(`model '${model}' output '${t.name}' is ${t.datatype}, expected FP32`);
  if (t.shape.length !== rank) throw new Error(`model '${model}' output '${t.name}' has shape ${JSON.stringify(t.shape)}, expected ${rank} dimensions`);
  return { data: t.data, shape: t.shape };
}

/** Stack preprocessed images of equal shape into one [n, ...shape] FP32 tensor. */
function stack(name: string, images: readonly PreprocessedImage[]): HostTensor {
  const shape = images[0]!.shape;
  const size = images[0]!.data.length;
  const data = new Float32Array(size * images.length);
  images.forEach((im, i) => data.set(im.data as Float32Array, i * size));
  return { name, datatype: 'FP32', shape: [images.length, ...shape], data };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Stages

export type Box = [number, number, number, number];

/** Text boxes in image pixels, [x0, y0, x1, y1] (integers, clamped to the image). */
export async function detectText(image: RawImage, cfg: OcrConfig['detection'], runModel: RunModel): Promise<{ box: Box; score: number }[]> {
  const pre = await preprocessRaw(image, detectionPreprocess(cfg));
  const [, h, w] = pre.shape as [number, number, number];
  const outputs = await runModel(cfg.model, { name: cfg.input, datatype: 'FP32', shape: [1, ...pre.shape], data: pre.data });
  const map = pickOutput(cfg.model, outputs, cfg.output, 4);
  if (map.shape[2] !== h || map.shape[3] !== w) {
    throw new Error(`model '${cfg.model}' returned a ${map.shape[3]}×${map.shape[2]} map for a ${w}×${h} input`);
  }
  const { scale_x: sx, scale_y: sy, offset_x: ox, offset_y: oy } = pre.mapping;
  return dbBoxes(map.data, w, h, cfg).map((b) => {
    const box: Box = [
      Math.max(0, Math.floor(ox + b.x0 * sx)),
      Math.max(0, Math.floor(oy + b.y0 * sy)),
      Math.min(image.width, Math.ceil(ox + b.x1 * sx)),
      Math.min(image.height, Math.ceil(oy + b.y1 * sy)),
    ];
    return { box, score: b.score };
  });
}

/** 0 or 180 for each line image, with p(180°). */
export async function classifyDirection(
  lines: readonly RawImage[],
  cfg: OcrConfig['direction'],
  runModel: RunModel,
): Promise<{ angle: 0 | 180; p180: number }[]> {
  const spec = linePreprocess(192);
  const results = await Promise.all(chunks(lines, cfg.batch_size).map(async (chunk) => {
    const inputs = await Promise.all(chunk.map((im) => preprocessRaw(im, spec)));
    const outputs = await runModel(cfg.model, stack(cfg.input, inputs));
    const out = pickOutput(cfg.model, outputs, cfg.output, 2);
    if (out.shape[0] !== chunk.length || out.shape[1] !== 2) {
      throw new Error(`model '${cfg.model}' returned shape ${JSON.stringify(out.shape)} for ${chunk.length} lines; expected [${chunk.length}, 2] (0°, 180°)`);
    }
    return chunk.map((_, i) => {
      const p180 = out.data[i * 2 + 1]!;
      return { angle: (p180 > out.data[i * 2]! && p180 > cfg.threshold ? 180 : 0) as 0 | 180, p180 };
    });
  }));
  return results.flat();
}

/** Recognised text of each line image (same order as `lines`). */
export async function recognizeText(
  lines: readonly RawImage[],
  cfg: OcrConfig['recognition'],
  dictionary: readonly string[],
  runModel: RunModel,
  height = 48,
): Promise<CtcResult[]> {
  // Similar widths together (PaddleOCR sorts by aspect ratio), so little of each batch is padding.
  const order = lines.map((im, i) => ({ i, ratio: im.width / im.height })).sort((a, b) => a.ratio - b.ratio);
  const results: CtcResult[] = new Array(lines.length);
  await Promise.all(chunks(order, cfg.batch_size).map(async (chunk) => {
    const widest = Math.ceil(height * chunk[chunk.length - 1]!.ratio);
    const width = Math.min(cfg.max_width, Math.max(cfg.min_width, Math.ceil(widest / 8) * 8));
    const spec = linePreprocess(width, height);
    const inputs = await Promise.all(chunk.map(({ i }) => preprocessRaw(lines[i]!, spec)));
    const outputs = await runModel(cfg.model, stack(cfg.input, inputs));
    const out = pickOutput(cfg.model, outputs, cfg.output, 3);
    if (out.shape[0] !== chunk.length) {
      throw new Error(`model '${cfg.model}' returned ${out.shape[0]} results for ${chunk.length} lines`);
    }
    const decoded = ctcGreedyDecodeBatch(out.data, out.shape, dictionary);
    chunk.forEach(({ i }, k) => {
      results[i] = decoded[k]!;
    });
  }));
  return results;
}

/**
 * The whole pipeline on one encoded image. Lines come back in reading order (top to bottom,
 * then left to right), their text trimmed; lines below recognition.min_confidence or with no
 * text are left out.
 */
export async function runOcr(bytes: Uint8Array, config: OcrConfig, deps: OcrDeps, opts: OcrRunOptions): Promise<OcrLine[]> {
  const timings = opts.timings;
  const decode = () => decodeRaw(bytes, { ...opts, maxPixels: Math.min(opts.maxPixels, config.max_pixels ?? Infinity), color: 'RGB' });
  const image = await stage('decode', timings, () => (deps.decodeQueue ? deps.decodeQueue.run(decode) : decode()));
  const boxes = await stage('detection', timings, () => detectText(image, config.detection, deps.runModel));
  if (boxes.length === 0) return [];
  let crops = await stage('crop', timings, async () =>
    boxes.map(({ box: [x0, y0, x1, y1] }) => cropRaw(image, { x: x0, y: y0, width: x1 - x0, height: y1 - y0 })));
  let angles: (0 | 180)[] = crops.map(() => 0);
  if (config.direction.enabled) {
    const dirs = await stage('direction', timings, () => classifyDirection(crops, config.direction, deps.runModel));
    angles = dirs.map((d) => d.angle);
    crops = crops.map((c, i) => (angles[i] === 180 ? rotateRaw180(c) : c));
  }
  const texts = await stage('recognition', timings, () => recognizeText(crops, config.recognition, deps.dictionary, deps.runModel));
  const lines: OcrLine[] = [];
  texts.forEach((t, i) => {
    const text = t.text.trim(); // a space at either end is an artefact of the box margins
    if (text === '' || t.confidence < config.recognition.min_confidence) return;
    lines.push({ text, confidence: t.confidence, box: boxes[i]!.box, angle: angles[i]! });
  });
  return readingOrder(lines);
}
