// The declared pre/postprocessing schemas and the OCR config: defaults, and errors that name the
// field and the fix.
import { describe, expect, it } from 'vitest';
import {
  checkPreprocessAgainstInput, parseImagePreprocess, preprocessOutputShape, type ImagePreprocessInput,
} from '../../src/preprocess/schema.js';
import { parsePostprocess } from '../../src/postprocess/schema.js';
import { parseOcrConfig } from '../../src/pipeline/ocr.js';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

const pre = (raw: unknown) => parseImagePreprocess('models/m/config.json input x preprocess', raw);

/** The examples of the final report: text_direction, text_recognition and an ImageNet classifier. */
export const EXAMPLES: Record<string, ImagePreprocessInput> = {
  text_direction: {
    color: 'BGR', resize: { mode: 'fixed_height', height: 48, width: 192, pad_value: 0 },
    scale: 1 / 255, mean: [0.5], std: [0.5], layout: 'NCHW', datatype: 'FP32',
  },
  text_recognition: {
    color: 'BGR', resize: { mode: 'fixed_height', height: 48, max_width: 1600, multiple_of: 8, pad_value: 0 },
    scale: 1 / 255, mean: [0.5], std: [0.5], layout: 'NCHW', datatype: 'FP32',
  },
  text_detection: {
    color: 'BGR', resize: { mode: 'keep_aspect', max_side: 960, multiple_of: 32 },
    scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: 'NCHW',
  },
  imagenet: {
    resize: { mode: 'keep_aspect', shorter_side: 256 }, crop: { center: [224, 224] },
    scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], layout: 'NCHW', datatype: 'FP16',
  },
  yolo: { resize: { mode: 'letterbox', width: 640, height: 640, pad_color: [114, 114, 114] }, scale: 1 / 255, layout: 'NCHW' },
};

describe('image preprocess schema', () => {
  it('accepts the examples and fills defaults', () => {
    for (const [name, raw] of Object.entries(EXAMPLES)) expect(() => pre(raw), name).not.toThrow();
    const p = pre({ resize: { mode: 'stretch', width: 224, height: 224 } });
    expect(p).toEqual({
      color: 'RGB', resize: { mode: 'stretch', width: 224, height: 224, interpolation: 'linear' },
      layout: 'NCHW', datatype: 'FP32', background: [255, 255, 255], auto_orient: true,
    });
    expect(pre(EXAMPLES.yolo).resize).toMatchObject({ align: 'center', upscale: true, pad_color: [114, 114, 114] });
  });

  it('gives the output shape, -1 where it depends on the image', () => {
    expect(preprocessOutputShape(pre(EXAMPLES.text_direction!))).toEqual([3, 48, 192]);
    expect(preprocessOutputShape(pre(EXAMPLES.text_recognition!))).toEqual([3, 48, -1]);
    expect(preprocessOutputShape(pre(EXAMPLES.text_detection!))).toEqual([3, -1, -1]);
    expect(preprocessOutputShape(pre(EXAMPLES.imagenet!))).toEqual([3, 224, 224]);
    expect(preprocessOutputShape(pre({ color: 'GRAY', resize: { mode: 'stretch', width: 28, height: 28 }, layout: 'NHWC' }))).toEqual([28, 28, 1]);
  });

  it('checks a spec against the model input it feeds', () => {
    const cls = pre(EXAMPLES.text_direction!);
    expect(checkPreprocessAgainstInput(cls, { name: 'x', datatype: 'FP32', dims: [3, -1, -1] })).toEqual([]);
    expect(checkPreprocessAgainstInput(cls, { name: 'x', datatype: 'FP32', dims: [3, 48, 192] })).toEqual([]);
    const bad = checkPreprocessAgainstInput(cls, { name: 'x', datatype: 'FP16', dims: [1, 32, 192] });
    expect(bad.join('\n')).toMatch(/input 'x' is FP16 but preprocess.datatype is FP32; set preprocess.datatype to FP16/);
    expect(bad.join('\n')).toMatch(/needs channels 1 .* gives 3; set color to GRAY/);
    expect(bad.join('\n')).toMatch(/needs height 32 .* gives 48; set the resize \(or crop.center\) height to 32/);
    const det = pre(EXAMPLES.text_detection!);
    expect(checkPreprocessAgainstInput(det, { name: 'x', datatype: 'FP32', dims: [3, 640, 640] })[0]).toMatch(/depends on the image; use a resize mode with a fixed height/);
    expect(checkPreprocessAgainstInput(det, { name: 'x', datatype: 'FP32', dims: [640, 640] })[0]).toMatch(/has 2 dimensions/);
  });

  it.each([
    [{ resize: { mode: 'zoom' } }, /field 'resize.mode': resize.mode must be one of 'stretch', 'letterbox', 'fixed_height', 'keep_aspect', 'none'/],
    [{}, /field 'resize': resize must be an object such as/],
    [{ resize: { mode: 'stretch', width: 224 } }, /field 'resize.height': resize.height is required \(a positive integer number of pixels\)/],
    [{ resize: { mode: 'stretch', width: 22.5, height: 2 } }, /field 'resize.width': resize.width must be a whole number of pixels/],
    [{ resize: { mode: 'stretch', width: 0, height: 2 } }, /resize.width must be at least 1 pixel/],
    [{ resize: { mode: 'stretch', width: 2, height: 2, pad_color: [0, 0, 0] } }, /unknown field 'pad_color' in resize mode 'stretch'.*; its fields are: mode, width, height, interpolation/],
    [{ resize: { mode: 'letterbox', width: 2, height: 2, pad_color: [0, 0] } }, /field 'resize.pad_color': resize.pad_color must be \[r, g, b\] with integers 0-255/],
    [{ resize: { mode: 'letterbox', width: 2, height: 2, align: 'bottom' } }, /resize.align must be 'center' or 'top_left'/],
    [{ resize: { mode: 'letterbox', width: 2, height: 2, pad_color: [0, 0, 0], pad_value: 0 } }, /field 'resize.pad_value': give resize.pad_color .* or resize.pad_value .*, not both/],
    [{ resize: { mode: 'fixed_height', height: 48 } }, /needs exactly one of width .* or max_width/],
    [{ resize: { mode: 'fixed_height', height: 48, width: 192, max_width: 320 } }, /needs exactly one of width/],
    [{ resize: { mode: 'fixed_height', height: 48, width: 192, multiple_of: 8 } }, /field 'resize.multiple_of': resize.multiple_of applies to a variable width only/],
    [{ resize: { mode: 'fixed_height', height: 48, max_width: 100, multiple_of: 8 } }, /resize.max_width 100 must be a multiple of resize.multiple_of 8/],
    [{ resize: { mode: 'keep_aspect' } }, /'keep_aspect' needs shorter_side, max_side or multiple_of \(or use mode 'none'\)/],
    [{ resize: { mode: 'none', width: 3 } }, /unknown field 'width' in resize mode 'none'/],
    [{ resize: { mode: 'stretch', width: 2, height: 2, interpolation: 'area' } }, /interpolation must be one of nearest, linear, cubic, lanczos3/],
    [{ resize: { mode: 'none' }, crop: { x: 0, y: 0, width: 2 } }, /field 'crop': crop must be \{"x", "y", "width", "height"\} .* or \{"center": \[width, height\]\}/],
    [{ resize: { mode: 'stretch', width: 200, height: 200 }, crop: { center: [224, 224] } }, /field 'crop.center': crop.center \[224, 224\] is larger than the resized image 200×200; make it at most \[200, 200\]/],
    [{ resize: { mode: 'none' }, color: 'HSV' }, /field 'color': color must be one of RGB, BGR, GRAY/],
    [{ resize: { mode: 'none' }, layout: 'CHW' }, /layout must be 'NCHW' \(channels first\) or 'NHWC' \(channels last\)/],
    [{ resize: { mode: 'none' }, datatype: 'INT8' }, /datatype must be one of FP32, FP16, UINT8/],
    [{ resize: { mode: 'none' }, mean: [1, 2] }, /field 'mean': mean has 2 values but color RGB has 3 channels; give 3 values \(in RGB order\) or one for all/],
    [{ resize: { mode: 'none' }, color: 'GRAY', std: [1, 2, 3] }, /std has 3 values but color GRAY has 1 channel; give one value/],
    [{ resize: { mode: 'none' }, std: [0.5, 0, 1] }, /field 'std': std must not contain 0/],
    [{ resize: { mode: 'none' }, mean: 0.5 }, /mean must be an array of numbers, one per channel/],
    [{ resize: { mode: 'none' }, scale: 0 }, /scale must be a finite non-zero number/],
    [{ resize: { mode: 'none' }, datatype: 'UINT8', scale: 1 / 255 }, /field 'scale': datatype UINT8 carries raw pixel values 0-255: remove scale, or use datatype FP32 or FP16/],
    [{ resize: { mode: 'fixed_height', height: 4, width: 8, pad_value: -1 }, datatype: 'UINT8' }, /with datatype UINT8, resize.pad_value must be an integer 0-255/],
    [{ resize: { mode: 'none' }, max_pixel: 5 }, /unknown field 'max_pixel' in preprocess; its fields are: color, resize, crop, scale, mean, std, layout, datatype, max_pixels, background, auto_orient/],
  ])('rejects %j', (raw, message) => {
    const msg = errorOf(() => pre(raw));
    expect(msg).toMatch(/^models\/m\/config.json input x preprocess: field '/);
    expect(msg).toMatch(message);
  });
});

describe('postprocess schema', () => {
  const post = (raw: unknown) => parsePostprocess('models/m/config.json output y postprocess', raw);

  it('accepts classification, ctc and none with defaults', () => {
    expect(post({ type: 'classification' })).toEqual({ type: 'classification', top_k: 1, apply_softmax: false });
    expect(post({ type: 'classification', labels_file: 'labels.txt', top_k: 5, apply_softmax: true }))
      .toEqual({ type: 'classification', labels_file: 'labels.txt', top_k: 5, apply_softmax: true });
    expect(post({ type: 'ctc', dict_file: 'ppocr_keys_v1.txt' })).toEqual({ type: 'ctc', dict_file: 'ppocr_keys_v1.txt', blank_index: 0 });
    expect(post({ type: 'none' })).toEqual({ type: 'none' });
  });

  it.each([
    [{ type: 'regression' }, /field 'type': postprocess.type must be one of 'classification', 'ctc', 'none'/],
    [{ type: 'classification', top_k: 0 }, /field 'top_k': postprocess.top_k must be at least 1/],
    [{ type: 'classification', topk: 3 }, /unknown field 'topk' in postprocess type 'classification'; its fields are: type, labels_file, top_k, apply_softmax/],
    [{ type: 'ctc' }, /field 'dict_file': postprocess.dict_file must be a file name relative to the model folder/],
    [{ type: 'ctc', dict_file: '../other/keys.txt' }, /postprocess.dict_file must stay inside the model folder/],
    [{ type: 'ctc', dict_file: '/etc/passwd' }, /must stay inside the model folder/],
    [{ type: 'ctc', dict_file: 'k.txt', blank_index: 5 }, /blank_index must be 0/],
    ['ctc', /postprocess must be an object/],
  ])('rejects %j', (raw, message) => {
    expect(errorOf(() => post(raw))).toMatch(message);
  });
});

describe('OCR pipeline config', () => {
  it('fills every default from {}', () => {
    expect(parseOcrConfig('ocr', {})).toEqual({
      detection: {
        model: 'text_detection', input: 'x', max_side: 960, multiple_of: 32, threshold: 0.3, box_threshold: 0.6,
        unclip_ratio: 2, min_size: 3, max_boxes: 200,
      },
      direction: { enabled: true, model: 'text_direction', input: 'x', threshold: 0.9, batch_size: 8 },
      recognition: { model: 'text_recognition', input: 'x', min_width: 320, max_width: 1600, batch_size: 8, min_confidence: 0.5 },
    });
    expect(parseOcrConfig('ocr', { direction: { enabled: false } }).direction.enabled).toBe(false);
  });

  it.each([
    [{ detection: { threshold: 1.5 } }, /field 'detection.threshold': detection.threshold must be ≤ 1/],
    [{ recognition: { min_width: 400, max_width: 320 } }, /field 'recognition.min_width': recognition.min_width must be ≤ recognition.max_width/],
    [{ direction: { thresh: 0.9 } }, /unknown field 'thresh' in ocr.direction; its fields are: enabled, model, input, output, threshold, batch_size/],
    [{ ocr: {} }, /unknown field 'ocr' in ocr/],
  ])('rejects %j', (raw, message) => {
    expect(errorOf(() => parseOcrConfig('models/ocr/config.json pipeline', raw))).toMatch(message);
  });
});
