/**
 * Encoded image bytes → model tensor, following an ImagePreprocess spec (see schema.ts).
 *
 * sharp (libvips) decodes, orients, converts colour, crops and resizes on libuv's thread pool,
 * so everything here is async and never blocks the event loop for the decode itself; only the
 * final per-pixel normalisation (a table lookup per element) runs in JS. Untrusted input is
 * checked before libvips sees it: the format is sniffed from the magic bytes against an
 * allow-list (no SVG, PDF or other parsers reachable), and the pixel count is bounded with
 * sharp's `limitInputPixels` (decompression bombs). Every failure is an ImageError naming the
 * image's index and the cause.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import { floatToHalf } from '../execution/datatypes.js';
import { channelCount, type ImagePreprocess, type Resize } from './schema.js';

export type ImageErrorReason =
  /** Zero bytes. */
  | 'empty'
  /** Not a recognised image format at all. */
  | 'not_image'
  /** A real image format that is not on the allow-list (SVG, PDF, BMP, HEIF, ...). */
  | 'unsupported_format'
  /** More pixels than the limit. */
  | 'too_large'
  /** The format is recognised but the data is truncated or damaged. */
  | 'corrupt'
  /** Decoded fine but cannot be preprocessed as declared (e.g. the crop lies outside it). */
  | 'invalid';

/** A bad image in a request: the caller answers 400 with this message. */
export class ImageError extends Error {
  /** Position of the image in the request (the element of the BYTES tensor). */
  readonly index: number;
  readonly reason: ImageErrorReason;
  /** The cause, in words (without the index). */
  readonly detail: string;

  constructor(index: number, reason: ImageErrorReason, detail: string, options?: { cause?: unknown }) {
    super(`image ${index}: ${detail}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImageError';
    this.index = index;
    this.reason = reason;
    this.detail = detail;
  }
}

export function isImageError(err: unknown): err is ImageError {
  return err instanceof ImageError;
}

/** Formats decoded unless the caller narrows or widens the list. */
export const DEFAULT_IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff'] as const;
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif' | 'heif';

export interface DecodeOptions {
  /** Largest width × height accepted (the spec's max_pixels can only lower it). */
  maxPixels: number;
  /** Index of the image in the request, for error messages. Default 0. */
  index?: number;
  /** Allowed formats; default DEFAULT_IMAGE_FORMATS. */
  formats?: readonly ImageFormat[];
  /** Abort a decode that takes longer (sharp's timeout), in whole seconds. */
  timeoutSeconds?: number;
}

/** 8-bit pixels, row-major, interleaved channels (1 = gray, 3 = RGB). */
export interface RawImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
}

export interface PreprocessedImage {
  /** Float32Array for FP32, Uint16Array of IEEE half bits for FP16, Uint8Array for UINT8. */
  readonly data: Float32Array | Uint16Array | Uint8Array;
  /** [C, H, W] (NCHW) or [H, W, C] (NHWC), without the batch dimension. */
  readonly shape: number[];
  /** Size of the decoded (auto-oriented) image. */
  readonly original: { width: number; height: number };
  /**
   * Where a tensor pixel came from: original_x = offset_x + tensor_x · scale_x (same for y),
   * for mapping detections back onto the image. Padding maps outside the source region.
   */
  readonly mapping: { scale_x: number; scale_y: number; offset_x: number; offset_y: number };
}

// ---------------------------------------------------------------------------------------------
// Format sniffing

function ascii(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < Math.min(end, bytes.length); i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/**
 * The image format from the magic bytes, or undefined when nothing is recognised. Names what
 * it can even for formats that are never decoded, so the error can say "unsupported format 'svg'".
 */
export function sniffImageFormat(bytes: Uint8Array): string | undefined {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && ascii(b, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*' || ascii(b, 0, 4) === 'II+\0' || ascii(b, 0, 4) === 'MM\0+') return 'tiff';
  if (ascii(b, 4, 8) === 'ftyp') {
    const brand = ascii(b, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'hevc', 'hevx', 'mif1', 'msf1', 'heim', 'heis'].includes(brand)) return 'heif';
    if (brand.startsWith('jp2') || brand === 'jpx ') return 'jp2';
    return undefined;
  }
  if (ascii(b, 0, 2) === 'BM') return 'bmp';
  if (ascii(b, 0, 4) === '%PDF') return 'pdf';
  if (ascii(b, 0, 12) === '\0\0\0\x0cjP  \r\n\x87\n') return 'jp2';
  if ((b[0] === 0xff && b[1] === 0x0a) || ascii(b, 0, 12) === '\0\0\0\x0cJXL \r\n\x87\n') return 'jxl';
  if (ascii(b, 0, 4) === '8BPS') return 'psd';
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return 'ico';
  if (/^P[1-7]\s/.test(ascii(b, 0, 3))) return 'ppm';
  if (ascii(b, 0, 9) === 'SIMPLE  =') return 'fits';
  if (ascii(b, 0, 10) === '#?RADIANCE' || ascii(b, 0, 6) === '#?RGBE') return 'rad';
  // SVG/XML: skip a BOM and whitespace, then look for markup.
  const head = ascii(b, 0, 512).replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg')) || (head.startsWith('<!doctype svg'))) return 'svg';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Decoding

function sharpMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).trim().replace(/\s+/g, ' ').replace(/:$/, '');
}

/** An ImageError for a sharp failure while reading image `index` of format `format`. */
function classifySharpError(index: number, format: string, maxPixels: number, err: unknown): ImageError {
  const msg = sharpMessage(err);
  if (/pixel limit/i.test(msg)) {
    return new ImageError(index, 'too_large', `${format} image has more than ${maxPixels} pixels (the limit); send a smaller image`, { cause: err });
  }
  if (/timeout/i.test(msg)) {
    return new ImageError(index, 'invalid', `${format} image took too long to decode (${msg})`, { cause: err });
  }
  return new ImageError(index, 'corrupt', `${format} image data is truncated or corrupt (${msg})`, { cause: err });
}

interface Opened {
  /** A fresh sharp pipeline over the input, with limits set. */
  make: () => Sharp;
  format: string;
  /** Size after auto-orientation (if applied). */
  width: number;
  height: number;
  hasAlpha: boolean;
}

async function openImage(bytes: Uint8Array, opts: DecodeOptions, specMaxPixels: number | undefined, autoOrient: boolean): Promise<Opened> {
  const index = opts.index ?? 0;
  const maxPixels = Math.floor(Math.min(opts.maxPixels, specMaxPixels ?? Infinity));
  if (!Number.isFinite(maxPixels) || maxPixels < 1) throw new Error(`decodeImage: maxPixels must be a finite number ≥ 1 (got ${opts.maxPixels})`);
  if (bytes.length === 0) throw new ImageError(index, 'empty', 'image is empty (0 bytes)');
  const allowed: readonly string[] = opts.formats ?? DEFAULT_IMAGE_FORMATS;
  const format = sniffImageFormat(bytes);
  if (format === undefined) {
    throw new ImageError(index, 'not_image', `not an image: the data does not start like any of ${allowed.join(', ')} (${bytes.length} bytes)`);
  }
  if (!allowed.includes(format)) {
    throw new ImageError(index, 'unsupported_format', `unsupported image format '${format}'; send one of ${allowed.join(', ')}`);
  }
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const make = () => {
    const s = sharp(input, { limitInputPixels: maxPixels, failOn: 'warning', sequentialRead: true });
    return opts.timeoutSeconds ? s.timeout({ seconds: opts.timeoutSeconds }) : s;
  };
  let meta: Metadata;
  try {
    meta = await make().metadata();
  } catch (err) {
    throw classifySharpError(index, format, maxPixels, err);
  }
  if (meta.format !== format && !(format === 'avif' && meta.format === 'heif')) {
    throw new ImageError(index, 'corrupt', `image looks like ${format} but decodes as ${meta.format ?? 'nothing'}`);
  }
  if (!meta.width || !meta.height) throw new ImageError(index, 'corrupt', `${format} image has no size`);
  if (meta.width * meta.height > maxPixels) {
    throw new ImageError(index, 'too_large', `${format} image is ${meta.width}×${meta.height} = ${meta.width * meta.height} pixels, more than the limit of ${maxPixels}; send a smaller image`);
  }
  const oriented = autoOrient && meta.autoOrient ? meta.autoOrient : { width: meta.width, height: meta.height };
  return { make, format, width: oriented.width, height: oriented.height, hasAlpha: meta.hasAlpha === true };
}

type Rgb = readonly [number, number, number];

/** Orientation, alpha and colour steps shared by every decode. */
function colourSteps(s: Sharp, gray: boolean, background: Rgb, autoOrient: boolean, hasAlpha: boolean): Sharp {
  if (autoOrient) s = s.autoOrient();
  if (hasAlpha) s = s.flatten({ background: { r: background[0], g: background[1], b: background[2] } });
  return s.toColourspace(gray ? 'b-w' : 'srgb').removeAlpha();
}

async function toRaw(s: Sharp, expectChannels: 1 | 3): Promise<RawImage> {
  const { data, info } = await s.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== expectChannels) {
    // libvips keeps an alpha band in a few edge cases: drop extra bands here.
    const n = info.width * info.height;
    const out = new Uint8Array(n * expectChannels);
    for (let i = 0; i < n; i++) for (let c = 0; c < expectChannels; c++) out[i * expectChannels + c] = data[i * info.channels + Math.min(c, info.channels - 1)]!;
    return { data: out, width: info.width, height: info.height, channels: expectChannels };
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, channels: expectChannels };
}

/**
 * Decode to 8-bit pixels (auto-oriented, alpha flattened onto `background`), without resizing:
 * for pipelines that cut several regions out of one image (OCR).
 */
export async function decodeRaw(
  bytes: Uint8Array,
  opts: DecodeOptions & { color?: 'RGB' | 'GRAY'; background?: Rgb; autoOrient?: boolean },
): Promise<RawImage> {
  const gray = opts.color === 'GRAY';
  const autoOrient = opts.autoOrient ?? true;
  const img = await openImage(bytes, opts, undefined, autoOrient);
  try {
    return await toRaw(colourSteps(img.make(), gray, opts.background ?? [255, 255, 255], autoOrient, img.hasAlpha), gray ? 1 : 3);
  } catch (err) {
    throw classifySharpError(opts.index ?? 0, img.format, opts.maxPixels, err);
  }
}

// ---------------------------------------------------------------------------------------------
// Geometry

export interface ResizePlan {
  /** Size the image (or its crop region) is resized to. */
  width: number;
  height: number;
  /** Size of the canvas it is placed on (before a centre crop). */
  canvasWidth: number;
  canvasHeight: number;
  /** Top-left position of the resized image on the canvas. */
  x: number;
  y: number;
}

const roundTo = (v: number, m: number) => Math.max(m, Math.round(v / m) * m);

/** Where an image of `w × h` goes for a resize spec. Pure; exported for tests. */
export function planResize(w: number, h: number, r: Resize): ResizePlan {
  switch (r.mode) {
    case 'stretch':
      return { width: r.width, height: r.height, canvasWidth: r.width, canvasHeight: r.height, x: 0, y: 0 };
    case 'letterbox': {
      let s = Math.min(r.width / w, r.height / h);
      if (!r.upscale) s = Math.min(s, 1);
      const rw = Math.min(r.width, Math.max(1, Math.round(w * s)));
      const rh = Math.min(r.height, Math.max(1, Math.round(h * s)));
      const center = r.align === 'center';
      return {
        width: rw, height: rh, canvasWidth: r.width, canvasHeight: r.height,
        x: center ? Math.floor((r.width - rw) / 2) : 0,
        y: center ? Math.floor((r.height - rh) / 2) : 0,
      };
    }
    case 'fixed_height': {
      const cap = r.width ?? r.max_width!;
      const rw = Math.min(cap, Math.max(1, Math.ceil((r.height * w) / h)));
      const canvas = r.width ?? Math.min(r.max_width!, Math.ceil(rw / (r.multiple_of ?? 1)) * (r.multiple_of ?? 1));
      return { width: rw, height: r.height, canvasWidth: canvas, canvasHeight: r.height, x: 0, y: 0 };
    }
    case 'keep_aspect': {
      let s = 1;
      if (r.shorter_side !== undefined) s = r.shorter_side / Math.min(w, h);
      if (r.max_side !== undefined && Math.max(w, h) * s > r.max_side) s = r.max_side / Math.max(w, h);
      let rw = Math.max(1, Math.round(w * s));
      let rh = Math.max(1, Math.round(h * s));
      if (r.multiple_of !== undefined) {
        rw = roundTo(rw, r.multiple_of);
        rh = roundTo(rh, r.multiple_of);
      }
      return { width: rw, height: rh, canvasWidth: rw, canvasHeight: rh, x: 0, y: 0 };
    }
    case 'none':
      return { width: w, height: h, canvasWidth: w, canvasHeight: h, x: 0, y: 0 };
  }
}

const KERNELS = { nearest: 'nearest', linear: 'linear', cubic: 'cubic', lanczos3: 'lanczos3' } as const;

// ---------------------------------------------------------------------------------------------
// Tensor assembly

/** Per output channel: the 256 tensor values of the pixel values, and the padding value. */
function lookupTables(spec: ImagePreprocess): { luts: (Float32Array | Uint16Array | Uint8Array)[]; pad: number[] } {
  const channels = channelCount(spec);
  const r = spec.resize;
  const padValue = 'pad_value' in r ? r.pad_value : undefined;
  const padColor = ('pad_color' in r ? r.pad_color : undefined) ?? [0, 0, 0];
  const luts: (Float32Array | Uint16Array | Uint8Array)[] = [];
  const pad: number[] = [];
  for (let c = 0; c < channels; c++) {
    const mean = spec.mean ? spec.mean[spec.mean.length === 1 ? 0 : c]! : 0;
    const std = spec.std ? spec.std[spec.std.length === 1 ? 0 : c]! : 1;
    const scale = spec.scale ?? 1;
    const f = (v: number) => (v * scale - mean) / std;
    // Pad colour in output channel order (BGR swaps it like the pixels; GRAY uses Rec. 601 luma).
    const padPixel = spec.color === 'GRAY'
      ? Math.round(0.299 * padColor[0] + 0.587 * padColor[1] + 0.114 * padColor[2])
      : padColor[spec.color === 'BGR' ? 2 - c : c]!;
    if (spec.datatype === 'UINT8') {
      luts.push(Uint8Array.from({ length: 256 }, (_, v) => v));
      pad.push(padValue ?? padPixel);
    } else if (spec.datatype === 'FP16') {
      luts.push(Uint16Array.from({ length: 256 }, (_, v) => floatToHalf(f(v))));
      pad.push(floatToHalf(padValue ?? f(padPixel)));
    } else {
      luts.push(Float32Array.from({ length: 256 }, (_, v) => f(v)));
      pad.push(padValue ?? f(padPixel));
    }
  }
  return { luts, pad };
}

/**
 * Place `img` at (x, y) on a canvas of `cw × ch` (anything outside it is cut, anything not
 * covered is padding), apply the lookup tables per channel and write in the spec's layout.
 */
function assemble(img: RawImage, x: number, y: number, cw: number, ch: number, spec: ImagePreprocess): Float32Array | Uint16Array | Uint8Array {
  const channels = channelCount(spec);
  if (img.channels !== channels) throw new Error(`internal: ${img.channels} decoded channels for ${spec.color}`);
  const { luts, pad } = lookupTables(spec);
  const n = cw * ch;
  const out = spec.datatype === 'FP32' ? new Float32Array(n * channels) : spec.datatype === 'FP16' ? new Uint16Array(n * channels) : new Uint8Array(n * channels);
  const nchw = spec.layout === 'NCHW';
  // Padding everywhere first (typed arrays start at 0, so skip when the pad is 0).
  for (let c = 0; c < channels; c++) {
    const p = pad[c]!;
    if (p === 0) continue;
    if (nchw) out.fill(p, c * n, (c + 1) * n);
    else for (let i = c; i < out.length; i += channels) out[i] = p;
  }
  // The visible part of the image.
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(cw, x + img.width);
  const y1 = Math.min(ch, y + img.height);
  const src = img.data;
  const swap = spec.color === 'BGR';
  for (let c = 0; c < channels; c++) {
    const lut = luts[c]!;
    const sc = swap ? 2 - c : c;
    for (let ty = y0; ty < y1; ty++) {
      let si = ((ty - y) * img.width + (x0 - x)) * channels + sc;
      if (nchw) {
        let oi = c * n + ty * cw + x0;
        for (let tx = x0; tx < x1; tx++, si += channels) out[oi++] = lut[src[si]!]!;
      } else {
        let oi = (ty * cw + x0) * channels + c;
        for (let tx = x0; tx < x1; tx++, si += channels, oi += channels) out[oi] = lut[src[si]!]!;
      }
    }
  }
  return out;
}

/**
 * Run the geometric steps (crop region, resize) through sharp and assemble the tensor.
 * `make` returns a sharp pipeline already oriented and colour-converted, of size w × h.
 */
async function preprocessFrom(
  make: () => Sharp,
  w: number,
  h: number,
  spec: ImagePreprocess,
  index: number,
  format: string,
  maxPixels: number,
): Promise<PreprocessedImage> {
  const channels = channelCount(spec);
  let region = { x: 0, y: 0, width: w, height: h };
  let s = make();
  if (spec.crop && 'x' in spec.crop) {
    const c = spec.crop;
    if (c.x + c.width > w || c.y + c.height > h) {
      throw new ImageError(index, 'invalid', `crop {x: ${c.x}, y: ${c.y}, width: ${c.width}, height: ${c.height}} lies outside the ${w}×${h} image; send an image at least ${c.x + c.width}×${c.y + c.height}`);
    }
    region = { x: c.x, y: c.y, width: c.width, height: c.height };
    s = s.extract({ left: c.x, top: c.y, width: c.width, height: c.height });
  }
  const plan = planResize(region.width, region.height, spec.resize);
  if (plan.width !== region.width || plan.height !== region.height) {
    const kernel = spec.resize.mode === 'none' ? 'linear' : KERNELS[spec.resize.interpolation];
    s = s.resize(plan.width, plan.height, { fit: 'fill', kernel });
  }
  let cw = plan.canvasWidth;
  let ch = plan.canvasHeight;
  let px = plan.x;
  let py = plan.y;
  if (spec.crop && 'center' in spec.crop) {
    const [ccw, cch] = spec.crop.center;
    if (ccw > cw || cch > ch) {
      throw new ImageError(index, 'invalid', `the resized image is ${cw}×${ch}, smaller than crop.center [${ccw}, ${cch}]; send a larger image`);
    }
    px -= Math.floor((cw - ccw) / 2);
    py -= Math.floor((ch - cch) / 2);
    cw = ccw;
    ch = cch;
  }
  let raw: RawImage;
  try {
    raw = await toRaw(s, channels);
  } catch (err) {
    throw classifySharpError(index, format, maxPixels, err);
  }
  const data = assemble(raw, px, py, cw, ch, spec);
  const sx = region.width / plan.width;
  const sy = region.height / plan.height;
  return {
    data,
    shape: spec.layout === 'NCHW' ? [channels, ch, cw] : [ch, cw, channels],
    original: { width: w, height: h },
    mapping: { scale_x: sx, scale_y: sy, offset_x: region.x - px * sx, offset_y: region.y - py * sy },
  };
}

/**
 * Decode one encoded image and preprocess it as `spec` declares. Throws ImageError (with
 * `opts.index`) for anything wrong with the image; other errors are bugs.
 */
export async function decodeImage(bytes: Uint8Array, spec: ImagePreprocess, opts: DecodeOptions): Promise<PreprocessedImage> {
  const index = opts.index ?? 0;
  const img = await openImage(bytes, opts, spec.max_pixels, spec.auto_orient);
  const gray = spec.color === 'GRAY';
  const make = () => colourSteps(img.make(), gray, spec.background, spec.auto_orient, img.hasAlpha);
  return preprocessFrom(make, img.width, img.height, spec, index, img.format, Math.min(opts.maxPixels, spec.max_pixels ?? Infinity));
}

/** Preprocess already decoded pixels (e.g. a region cut out by cropRaw). */
export async function preprocessRaw(img: RawImage, spec: ImagePreprocess, opts: { index?: number } = {}): Promise<PreprocessedImage> {
  const want = channelCount(spec);
  const make = () => {
    const s = sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
      raw: { width: img.width, height: img.height, channels: img.channels },
    });
    return img.channels === want ? s : s.toColourspace(want === 1 ? 'b-w' : 'srgb');
  };
  return preprocessFrom(make, img.width, img.height, spec, opts.index ?? 0, 'raw', img.width * img.height);
}

/** The pixels of a region (clamped to the image; at least 1×1). */
export function cropRaw(img: RawImage, region: { x: number; y: number; width: number; height: number }): RawImage {
  const x0 = Math.min(img.width - 1, Math.max(0, Math.floor(region.x)));
  const y0 = Math.min(img.height - 1, Math.max(0, Math.floor(region.y)));
  const x1 = Math.max(x0 + 1, Math.min(img.width, Math.ceil(region.x + region.width)));
  const y1 = Math.max(y0 + 1, Math.min(img.height, Math.ceil(region.y + region.height)));
  const w = x1 - x0;
  const h = y1 - y0;
  const c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) {
    const s = ((y0 + y) * img.width + x0) * c;
    out.set(img.data.subarray(s, s + w * c), y * w * c);
  }
  return { data: out, width: w, height: h, channels: c };
}

/** The image turned upside down (180°). */
export function rotateRaw180(img: RawImage): RawImage {
  const c = img.channels;
  const n = img.width * img.height;
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < n; i++) {
    const s = i * c;
    const d = (n - 1 - i) * c;
    for (let k = 0; k < c; k++) out[d + k] = img.data[s + k]!;
  }
  return { data: out, width: img.width, height: img.height, channels: c };
}

// ---------------------------------------------------------------------------------------------
// Bounded concurrency

export interface DecodeQueue {
  /** Run `task` when fewer than `limit` tasks are running (FIFO). */
  run<T>(task: () => Promise<T>): Promise<T>;
  /** decodeImage through the queue. */
  decode(bytes: Uint8Array, spec: ImagePreprocess, opts: DecodeOptions): Promise<PreprocessedImage>;
  /** Tasks running now. */
  readonly active: number;
  /** Tasks waiting for a slot. */
  readonly waiting: number;
}

/**
 * At most `limit` decodes at once across all requests. libuv's pool has 4 threads by default
 * (UV_THREADPOOL_SIZE) and libvips adds its own per image; without a bound, a burst of large
 * images would hold every decoded buffer in memory at the same time.
 */
export function createDecodeQueue(limit: number): DecodeQueue {
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`createDecodeQueue: limit must be an integer ≥ 1 (got ${limit})`);
  let active = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    active--;
    const next = queue.shift();
    if (next) {
      active++;
      next();
    }
  };
  const run = <T>(task: () => Promise<T>): Promise<T> => {
    const start = (): Promise<T> => {
      let p: Promise<T>;
      try {
        p = task();
      } catch (err) {
        p = Promise.reject(err);
      }
      return p.finally(release);
    };
    if (active < limit) {
      active++;
      return start();
    }
    return new Promise<T>((resolve, reject) => {
      queue.push(() => start().then(resolve, reject));
    });
  };
  return {
    run,
    decode: (bytes, spec, opts) => run(() => decodeImage(bytes, spec, opts)),
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}
