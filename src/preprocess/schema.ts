/**
 * Declared preprocessing of an image input: how the agent turns encoded image bytes (JPEG, PNG,
 * WebP, GIF, TIFF) into the tensor a model expects. snake_case and strict, in the style of
 * Triton's model config, so it can sit next to an input in `config.json`:
 *
 *   "input": [{ "name": "x", "data_type": "TYPE_FP32", "dims": [3, 48, 192],
 *               "preprocess": { "color": "BGR", "resize": { "mode": "fixed_height", "height": 48, "width": 192, "pad_value": 0 },
 *                               "scale": 0.00392156862745098, "mean": [0.5], "std": [0.5], "layout": "NCHW" } }]
 *
 * The steps, in order: decode → EXIF auto-orient → flatten alpha onto `background` → colour
 * conversion → `crop {x,y,width,height}` (a region of the decoded image) → resize → pad →
 * `crop {center}` (of the resized, padded image) → `(pixel·scale − mean[c]) / std[c]` per output
 * channel → layout and datatype. Every error message names the field and says how to fix it.
 */
import { z } from 'zod';
import { formatIssues, strictObject } from '../util/zod-issues.js';

/** A positive integer number of pixels; `what` says what it is for, in the message. */
const pixels = (what: string) =>
  z.number({ error: (iss) => (iss.input === undefined ? `${what} is required (a positive integer number of pixels)` : `${what} must be a positive integer number of pixels`) })
    .int({ error: `${what} must be a whole number of pixels` })
    .min(1, { error: `${what} must be at least 1 pixel` })
    .max(65535, { error: `${what} must be at most 65535 pixels` });

const byte = z.number().int().min(0).max(255);
const rgb = (what: string) =>
  z.tuple([byte, byte, byte], { error: `${what} must be [r, g, b] with integers 0-255, e.g. [0, 0, 0]` });

export const INTERPOLATIONS = ['nearest', 'linear', 'cubic', 'lanczos3'] as const;
const interpolation = z.enum(INTERPOLATIONS, {
  error: `interpolation must be one of ${INTERPOLATIONS.join(', ')} (default linear, as OpenCV's INTER_LINEAR)`,
}).default('linear');

/** A value written into the tensor as is (after normalisation), e.g. PaddleOCR's 0. */
const padValue = z.number({ error: 'pad_value must be a finite number: the tensor value of padded elements, after normalisation' })
  .refine(Number.isFinite, { error: 'pad_value must be a finite number' });

const StretchSchema = strictObject({
  mode: z.literal('stretch'),
  width: pixels('resize.width'),
  height: pixels('resize.height'),
  interpolation,
}, "resize mode 'stretch' (resize to exactly width × height, ignoring the aspect ratio)");

const LetterboxSchema = strictObject({
  mode: z.literal('letterbox'),
  width: pixels('resize.width'),
  height: pixels('resize.height'),
  /** Colour of the padding, before normalisation. Default black. */
  pad_color: rgb('resize.pad_color').optional(),
  /** Tensor value of the padding, after normalisation (instead of pad_color). */
  pad_value: padValue.optional(),
  align: z.enum(['center', 'top_left'], { error: "resize.align must be 'center' or 'top_left'" }).default('center'),
  /** false: never enlarge a smaller image, only pad it. */
  upscale: z.boolean({ error: 'resize.upscale must be true or false' }).default(true),
  interpolation,
}, "resize mode 'letterbox' (keep the aspect ratio, fit inside width × height, pad the rest)");

const FixedHeightSchema = strictObject({
  mode: z.literal('fixed_height'),
  height: pixels('resize.height'),
  /** Output width: the resized image is cut to at most this and right-padded up to it. */
  width: pixels('resize.width').optional(),
  /** Variable output width: ceil(height · aspect), rounded up to multiple_of, at most max_width. */
  max_width: pixels('resize.max_width').optional(),
  multiple_of: pixels('resize.multiple_of').optional(),
  pad_color: rgb('resize.pad_color').optional(),
  pad_value: padValue.optional(),
  interpolation,
}, "resize mode 'fixed_height' (height fixed, aspect kept, right-padded up to a width)")
  .superRefine((r, ctx) => {
    if ((r.width === undefined) === (r.max_width === undefined)) {
      ctx.addIssue({
        code: 'custom', path: ['width'],
        message: "resize mode 'fixed_height' needs exactly one of width (a fixed output width, e.g. 192 for PaddleOCR's classifier) or max_width (a variable width up to a limit, e.g. 1600 for recognition)",
      });
    }
    if (r.multiple_of !== undefined && r.width !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['multiple_of'], message: 'resize.multiple_of applies to a variable width only: remove it, or use max_width instead of width' });
    }
    if (r.multiple_of !== undefined && r.max_width !== undefined && r.max_width % r.multiple_of !== 0) {
      ctx.addIssue({ code: 'custom', path: ['max_width'], message: `resize.max_width ${r.max_width} must be a multiple of resize.multiple_of ${r.multiple_of}` });
    }
  });

const KeepAspectSchema = strictObject({
  mode: z.literal('keep_aspect'),
  /** Scale so that the shorter side has this length (up or down), e.g. 256 before a 224 centre crop. */
  shorter_side: pixels('resize.shorter_side').optional(),
  /** Then scale down (never up) so that the longer side is at most this, e.g. 960 for PaddleOCR detection. */
  max_side: pixels('resize.max_side').optional(),
  /** Then round each side to the nearest multiple (at least one multiple), e.g. 32 for detection. */
  multiple_of: pixels('resize.multiple_of').optional(),
  interpolation,
}, "resize mode 'keep_aspect' (scale keeping the aspect ratio; the output size follows the image)")
  .superRefine((r, ctx) => {
    if (r.shorter_side === undefined && r.max_side === undefined && r.multiple_of === undefined) {
      ctx.addIssue({ code: 'custom', path: ['mode'], message: "resize mode 'keep_aspect' needs shorter_side, max_side or multiple_of (or use mode 'none')" });
    }
  });

const NoResizeSchema = strictObject({ mode: z.literal('none') }, "resize mode 'none' (the decoded size, unchanged)");

export const RESIZE_MODES = ['stretch', 'letterbox', 'fixed_height', 'keep_aspect', 'none'] as const;

export const ResizeSchema = z.discriminatedUnion('mode', [StretchSchema, LetterboxSchema, FixedHeightSchema, KeepAspectSchema, NoResizeSchema], {
  error: (iss) =>
    iss.code === 'invalid_union'
      ? `resize.mode must be one of ${RESIZE_MODES.map((m) => `'${m}'`).join(', ')}`
      : iss.code === 'invalid_type' ? `resize must be an object such as {"mode": "stretch", "width": 224, "height": 224}` : undefined,
});

export const CropSchema = z.union([
  strictObject({
    x: z.number().int().min(0, { error: 'crop.x must be an integer ≥ 0' }),
    y: z.number().int().min(0, { error: 'crop.y must be an integer ≥ 0' }),
    width: pixels('crop.width'),
    height: pixels('crop.height'),
  }, 'crop (region)'),
  strictObject({ center: z.tuple([pixels('crop.center[0] (width)'), pixels('crop.center[1] (height)')]) }, 'crop (center)'),
], {
  error: 'crop must be {"x", "y", "width", "height"} (a region of the decoded image, cut before resizing) or {"center": [width, height]} (cut from the middle of the resized image)',
});

export const COLORS = ['RGB', 'BGR', 'GRAY'] as const;
export const LAYOUTS = ['NCHW', 'NHWC'] as const;
export const IMAGE_DATATYPES = ['FP32', 'FP16', 'UINT8'] as const;

const channelValues = (field: string) =>
  z.array(z.number({ error: `${field} entries must be numbers` }).refine(Number.isFinite, { error: `${field} entries must be finite` }), {
    error: `${field} must be an array of numbers, one per channel in output order (e.g. [0.485, 0.456, 0.406]) or a single number for all`,
  }).min(1, { error: `${field} needs at least one value` });

export const ImagePreprocessSchema = strictObject({
  /** Output channels and their order. GRAY has one channel. */
  color: z.enum(COLORS, { error: `color must be one of ${COLORS.join(', ')}` }).default('RGB'),
  resize: ResizeSchema,
  crop: CropSchema.optional(),
  /** Multiplies each pixel (0-255) first, e.g. 1/255. */
  scale: z.number({ error: 'scale must be a number, e.g. 0.00392156862745098 (1/255)' })
    .refine((s) => Number.isFinite(s) && s !== 0, { error: 'scale must be a finite non-zero number, e.g. 0.00392156862745098 (1/255)' }).optional(),
  /** Subtracted after scaling, per output channel (after the BGR swap). */
  mean: channelValues('mean').optional(),
  /** Divides after subtracting the mean, per output channel. */
  std: channelValues('std').refine((a) => a.every((v) => v !== 0), { error: 'std must not contain 0' }).optional(),
  layout: z.enum(LAYOUTS, { error: "layout must be 'NCHW' (channels first) or 'NHWC' (channels last)" }).default('NCHW'),
  datatype: z.enum(IMAGE_DATATYPES, { error: `datatype must be one of ${IMAGE_DATATYPES.join(', ')}` }).default('FP32'),
  /** Largest decoded image (width × height) accepted for this input; lowers the agent-wide limit. */
  max_pixels: z.number().int({ error: 'max_pixels must be an integer' }).min(1, { error: 'max_pixels must be at least 1' }).optional(),
  /** Colour that transparent pixels are flattened onto. Default white. */
  background: rgb('background').default([255, 255, 255]),
  /** Apply the EXIF orientation (photos from phones). */
  auto_orient: z.boolean({ error: 'auto_orient must be true or false' }).default(true),
}, 'preprocess').superRefine((p, ctx) => {
  const channels = p.color === 'GRAY' ? 1 : 3;
  for (const key of ['mean', 'std'] as const) {
    const v = p[key];
    if (v && v.length !== 1 && v.length !== channels) {
      ctx.addIssue({
        code: 'custom', path: [key],
        message: `${key} has ${v.length} values but color ${p.color} has ${channels} channel${channels > 1 ? 's' : ''}; give ${channels === 1 ? 'one value' : `${channels} values (in ${p.color} order) or one for all`}`,
      });
    }
  }
  if (p.datatype === 'UINT8') {
    for (const key of ['scale', 'mean', 'std'] as const) {
      if (p[key] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `datatype UINT8 carries raw pixel values 0-255: remove ${key}, or use datatype FP32 or FP16` });
      }
    }
    const pv = 'pad_value' in p.resize ? p.resize.pad_value : undefined;
    if (pv !== undefined && !(Number.isInteger(pv) && pv >= 0 && pv <= 255)) {
      ctx.addIssue({ code: 'custom', path: ['resize', 'pad_value'], message: 'with datatype UINT8, resize.pad_value must be an integer 0-255' });
    }
  }
  if ('pad_value' in p.resize && p.resize.pad_value !== undefined && 'pad_color' in p.resize && p.resize.pad_color !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['resize', 'pad_value'], message: 'give resize.pad_color (a pixel colour, before normalisation) or resize.pad_value (a tensor value, after normalisation), not both' });
  }
  const fixed = fixedOutputSize(p.resize);
  if (p.crop && 'center' in p.crop && fixed) {
    const [cw, ch] = p.crop.center;
    if (cw > fixed.width || ch > fixed.height) {
      ctx.addIssue({
        code: 'custom', path: ['crop', 'center'],
        message: `crop.center [${cw}, ${ch}] is larger than the resized image ${fixed.width}×${fixed.height}; make it at most [${fixed.width}, ${fixed.height}] or resize larger`,
      });
    }
  }
});

export type ImagePreprocessInput = z.input<typeof ImagePreprocessSchema>;
export type ImagePreprocess = z.output<typeof ImagePreprocessSchema>;
export type Resize = z.output<typeof ResizeSchema>;
export type Crop = z.output<typeof CropSchema>;
export type ImageDatatype = (typeof IMAGE_DATATYPES)[number];

/** The output width/height of a resize when it does not depend on the image, else undefined. */
function fixedOutputSize(r: Resize): { width: number; height: number } | undefined {
  if (r.mode === 'stretch' || r.mode === 'letterbox') return { width: r.width, height: r.height };
  if (r.mode === 'fixed_height' && r.width !== undefined) return { width: r.width, height: r.height };
  return undefined;
}

/** `source: field 'a.b': message` lines of a zod error. */
export const formatPreprocessIssues = formatIssues;

/** Parse and validate a preprocess spec; throws an Error whose message names each bad field. */
export function parseImagePreprocess(source: string, raw: unknown): ImagePreprocess {
  const r = ImagePreprocessSchema.safeParse(raw);
  if (!r.success) throw new Error(formatPreprocessIssues(source, r.error));
  return r.data;
}

/** Number of channels the spec produces. */
export function channelCount(spec: Pick<ImagePreprocess, 'color'>): 1 | 3 {
  return spec.color === 'GRAY' ? 1 : 3;
}

/**
 * The tensor shape (without batch) the spec produces, with -1 where it depends on the image
 * (keep_aspect, none, fixed_height with max_width). Compare it with the model input's dims.
 */
export function preprocessOutputShape(spec: ImagePreprocess): number[] {
  let w = -1;
  let h = -1;
  const fixed = fixedOutputSize(spec.resize);
  if (fixed) ({ width: w, height: h } = fixed);
  else if (spec.resize.mode === 'fixed_height') h = spec.resize.height;
  if (spec.crop && 'center' in spec.crop) [w, h] = spec.crop.center;
  const c = channelCount(spec);
  return spec.layout === 'NCHW' ? [c, h, w] : [h, w, c];
}

/**
 * Problems between a spec and the model input it feeds (dims without the batch dimension, -1 =
 * variable; datatype as in the V2 protocol, e.g. 'FP32'). Empty when they fit.
 */
export function checkPreprocessAgainstInput(
  spec: ImagePreprocess,
  input: { name: string; datatype: string; dims: readonly number[] },
): string[] {
  const problems: string[] = [];
  const shape = preprocessOutputShape(spec);
  if (input.datatype !== spec.datatype) {
    problems.push(`input '${input.name}' is ${input.datatype} but preprocess.datatype is ${spec.datatype}; set preprocess.datatype to ${input.datatype}`);
  }
  if (input.dims.length !== shape.length) {
    problems.push(`input '${input.name}' has ${input.dims.length} dimensions ${JSON.stringify(input.dims)} but an image tensor has 3 (${spec.layout}, without the batch dimension)`);
    return problems;
  }
  const names = spec.layout === 'NCHW' ? ['channels', 'height', 'width'] : ['height', 'width', 'channels'];
  for (let i = 0; i < shape.length; i++) {
    const want = input.dims[i]!;
    const got = shape[i]!;
    if (want === -1) continue;
    if (got === -1) {
      problems.push(`input '${input.name}' needs ${names[i]} ${want} but preprocess gives a ${names[i]} that depends on the image; use a resize mode with a fixed ${names[i]} (stretch, letterbox, fixed_height with width)`);
    } else if (got !== want) {
      problems.push(`input '${input.name}' needs ${names[i]} ${want} (dims ${JSON.stringify(input.dims)}, ${spec.layout}) but preprocess gives ${got}; ${names[i] === 'channels' ? `set color to ${want === 1 ? 'GRAY' : 'RGB or BGR'}` : `set the resize (or crop.center) ${names[i]} to ${want}`}`);
    }
  }
  return problems;
}
