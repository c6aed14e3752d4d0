// decodeImage on tiny synthetic images through real sharp: every resize mode, colour order,
// layout, datatype and normalisation with exact expected values; every kind of bad image; the
// bounded decode queue.
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { halfToFloat } from '../../src/execution/datatypes.js';
import {
  createDecodeQueue, cropRaw, decodeImage, decodeRaw, ImageError, planResize, preprocessRaw, rotateRaw180,
  sniffImageFormat, type DecodeOptions,
} from '../../src/preprocess/image.js';
import { parseImagePreprocess, type ImagePreprocess, type ImagePreprocessInput } from '../../src/preprocess/schema.js';

const spec = (raw: ImagePreprocessInput): ImagePreprocess => parseImagePreprocess('test', raw);
const OPTS: DecodeOptions = { maxPixels: 1_000_000 };

/** A lossless PNG of the given RGB pixels (row-major). */
function png(width: number, height: number, rgb: number[], channels: 3 | 4 = 3): Promise<Buffer> {
  return sharp(Buffer.from(rgb), { raw: { width, height, channels } }).png().toBuffer();
}
function solid(width: number, height: number, [r, g, b]: [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).png().toBuffer();
}

const R = [255, 0, 0];
const G = [0, 255, 0];
const B = [0, 0, 255];
const W = [255, 255, 255];
/** 2×2: red, green / blue, white. */
const QUAD = [...R, ...G, ...B, ...W];

const IMAGENET = { scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const close = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]!, `element ${i}`).toBeCloseTo(e, 5));
};

describe('colour, layout and normalisation (2×2 images)', () => {
  it('a red 2×2 image → ImageNet-normalised values in NCHW and NHWC', async () => {
    const red = await solid(2, 2, [255, 0, 0]);
    const r = (1 - 0.485) / 0.229;
    const g = (0 - 0.456) / 0.224;
    const b = (0 - 0.406) / 0.225;
    const nchw = await decodeImage(red, spec({ resize: { mode: 'none' }, ...IMAGENET, layout: 'NCHW' }), OPTS);
    expect(nchw.shape).toEqual([3, 2, 2]);
    expect(nchw.data).toBeInstanceOf(Float32Array);
    expect(nchw.original).toEqual({ width: 2, height: 2 });
    close(nchw.data, [r, r, r, r, g, g, g, g, b, b, b, b]);
    const nhwc = await decodeImage(red, spec({ resize: { mode: 'none' }, ...IMAGENET, layout: 'NHWC' }), OPTS);
    expect(nhwc.shape).toEqual([2, 2, 3]);
    close(nhwc.data, [r, g, b, r, g, b, r, g, b, r, g, b]);
  });

  it('keeps pixel positions, and BGR swaps the channels (mean/std follow the output order)', async () => {
    const img = await png(2, 2, QUAD);
    const rgb = await decodeImage(img, spec({ resize: { mode: 'none' }, datatype: 'UINT8' }), OPTS);
    expect(rgb.data).toBeInstanceOf(Uint8Array);
    expect([...rgb.data]).toEqual([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255]);
    const bgrHwc = await decodeImage(img, spec({ color: 'BGR', resize: { mode: 'none' }, layout: 'NHWC', datatype: 'UINT8' }), OPTS);
    expect([...bgrHwc.data]).toEqual([0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255]);
    const bgr = await decodeImage(img, spec({ color: 'BGR', resize: { mode: 'none' }, scale: 1 / 255, mean: [0.1, 0.2, 0.3], std: [1, 2, 4] }), OPTS);
    // Output channel 0 is blue: (x/255 − 0.1) / 1; channel 2 is red: (x/255 − 0.3) / 4.
    close(bgr.data, [-0.1, -0.1, 0.9, 0.9, -0.1, 0.4, -0.1, 0.4, 0.175, -0.075, -0.075, 0.175]);
  });

  it('GRAY gives one channel', async () => {
    const img = await png(2, 1, [0, 0, 0, 255, 255, 255]);
    const out = await decodeImage(img, spec({ color: 'GRAY', resize: { mode: 'none' }, scale: 1 / 255 }), OPTS);
    expect(out.shape).toEqual([1, 1, 2]);
    close(out.data, [0, 1]);
    const grey = await decodeImage(await solid(1, 1, [128, 128, 128]), spec({ color: 'GRAY', resize: { mode: 'none' }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect(grey.shape).toEqual([1, 1, 1]);
    expect([...grey.data]).toEqual([128]);
  });

  it('a gray PNG becomes 3 equal channels for RGB', async () => {
    const gray = await sharp(Buffer.from([10, 200]), { raw: { width: 2, height: 1, channels: 1 } }).png().toBuffer();
    const out = await decodeImage(gray, spec({ resize: { mode: 'none' }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect([...out.data]).toEqual([10, 10, 10, 200, 200, 200]);
  });

  it('decodes every allowed format, 16-bit, palette and CMYK to the same 8-bit RGB', async () => {
    const base = sharp({ create: { width: 2, height: 1, channels: 3, background: { r: 200, g: 100, b: 50 } } });
    const s = spec({ resize: { mode: 'none' }, datatype: 'UINT8', layout: 'NHWC' });
    const encoded = {
      png16: await base.clone().toColourspace('rgb16').png().toBuffer(),
      palette: await base.clone().png({ palette: true }).toBuffer(),
      gif: await base.clone().gif().toBuffer(),
      webp: await base.clone().webp({ lossless: true }).toBuffer(),
      tiff: await base.clone().tiff().toBuffer(),
    };
    for (const [name, bytes] of Object.entries(encoded)) {
      expect([...(await decodeImage(bytes, s, OPTS)).data], name).toEqual([200, 100, 50, 200, 100, 50]);
    }
    const cmyk = await decodeImage(await base.clone().toColourspace('cmyk').jpeg().toBuffer(), s, OPTS);
    [...cmyk.data].forEach((v, i) => expect(Math.abs(v - [200, 100, 50][i % 3]!), `CMYK element ${i}`).toBeLessThan(35));
  });

  it('FP16 output holds IEEE half bits (floatToHalf)', async () => {
    const out = await decodeImage(await solid(1, 1, [255, 0, 51]), spec({ resize: { mode: 'none' }, scale: 1 / 255, mean: [0.5], std: [0.5], datatype: 'FP16' }), OPTS);
    expect(out.data).toBeInstanceOf(Uint16Array);
    expect([...out.data]).toEqual([0x3c00, 0xbc00, 0xb8cd]); // 1, -1, -0.6 (51/255 = 0.2)
    expect(halfToFloat(out.data[2]!)).toBeCloseTo(-0.6, 3);
  });

  it('flattens transparency onto the background colour', async () => {
    const rgba = await png(2, 1, [255, 0, 0, 255, 0, 0, 0, 0], 4);
    const white = await decodeImage(rgba, spec({ resize: { mode: 'none' }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect([...white.data]).toEqual([255, 0, 0, 255, 255, 255]);
    const black = await decodeImage(rgba, spec({ resize: { mode: 'none' }, datatype: 'UINT8', layout: 'NHWC', background: [0, 0, 0] }), OPTS);
    expect([...black.data]).toEqual([255, 0, 0, 0, 0, 0]);
  });

  it('applies the EXIF orientation (auto_orient, default on)', async () => {
    // 32×16, left half red, right half blue, tagged "rotate 90° clockwise" (orientation 6):
    // upright it is 16×32 with red on top.
    const px: number[] = [];
    for (let y = 0; y < 16; y++) for (let x = 0; x < 32; x++) px.push(...(x < 16 ? R : B));
    const jpg = await sharp(await png(32, 16, px)).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const upright = await decodeImage(jpg, spec({ resize: { mode: 'none' }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect(upright.original).toEqual({ width: 16, height: 32 });
    expect(upright.shape).toEqual([32, 16, 3]);
    const at = (x: number, y: number) => [...upright.data.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3)];
    expect(at(8, 4)[0]).toBeGreaterThan(200); // red on top
    expect(at(8, 28)[2]).toBeGreaterThan(200); // blue below
    const asStored = await decodeImage(jpg, spec({ resize: { mode: 'none' }, datatype: 'UINT8', auto_orient: false }), OPTS);
    expect(asStored.original).toEqual({ width: 32, height: 16 });
  });
});

describe('resize modes', () => {
  it('stretch ignores the aspect ratio', async () => {
    const out = await decodeImage(await solid(8, 2, [255, 255, 255]), spec({ resize: { mode: 'stretch', width: 3, height: 5 }, datatype: 'UINT8' }), OPTS);
    expect(out.shape).toEqual([3, 5, 3]);
    expect([...out.data].every((v) => v === 255)).toBe(true);
    expect(out.mapping).toEqual({ scale_x: 8 / 3, scale_y: 2 / 5, offset_x: 0, offset_y: 0 });
  });

  it('letterbox centres the image and pads with pad_color', async () => {
    const wide = await solid(4, 2, [255, 255, 255]);
    const out = await decodeImage(wide, spec({ color: 'GRAY', resize: { mode: 'letterbox', width: 4, height: 4, pad_color: [114, 114, 114] }, datatype: 'UINT8' }), OPTS);
    expect(out.shape).toEqual([1, 4, 4]);
    expect([...out.data]).toEqual([...Array(4).fill(114), ...Array(8).fill(255), ...Array(4).fill(114)]);
    expect(out.mapping).toEqual({ scale_x: 1, scale_y: 1, offset_x: 0, offset_y: -1 });
    const topLeft = await decodeImage(wide, spec({ color: 'GRAY', resize: { mode: 'letterbox', width: 4, height: 4, align: 'top_left' }, datatype: 'UINT8' }), OPTS);
    expect([...topLeft.data]).toEqual([...Array(8).fill(255), ...Array(8).fill(0)]);
    // A tall 2×8 image shrinks to 1×4 and sits in column 1 (centre rounded down) of a 4×4 canvas.
    const tall = await decodeImage(await solid(2, 8, [255, 255, 255]), spec({ color: 'GRAY', resize: { mode: 'letterbox', width: 4, height: 4 }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect([...tall.data]).toEqual([0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0]);
    expect(tall.mapping).toEqual({ scale_x: 2, scale_y: 2, offset_x: -2, offset_y: 0 });
  });

  it('letterbox pad_value is written after normalisation; upscale=false only pads', async () => {
    const out = await decodeImage(await solid(2, 1, [255, 255, 255]), spec({
      color: 'GRAY', resize: { mode: 'letterbox', width: 4, height: 4, pad_value: -9, upscale: false }, scale: 1 / 255,
    }), OPTS);
    expect([...out.data]).toEqual([-9, -9, -9, -9, -9, 1, 1, -9, -9, -9, -9, -9, -9, -9, -9, -9]);
  });

  it('fixed_height keeps the aspect ratio and right-pads up to width (PaddleOCR cls)', async () => {
    // 4×2 → height 4 → 8 wide, padded to 12 with tensor value 0; white → (1 − 0.5) / 0.5 = 1.
    const out = await decodeImage(await solid(4, 2, [255, 255, 255]), spec({
      resize: { mode: 'fixed_height', height: 4, width: 12, pad_value: 0 }, scale: 1 / 255, mean: [0.5], std: [0.5],
    }), OPTS);
    expect(out.shape).toEqual([3, 4, 12]);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 4; y++) {
        const row = [...out.data.subarray((c * 4 + y) * 12, (c * 4 + y + 1) * 12)];
        expect(row).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
      }
    }
    // Default padding is black before normalisation: (0 − 0.5) / 0.5 = −1.
    const black = await decodeImage(await solid(4, 2, [255, 255, 255]), spec({
      color: 'GRAY', resize: { mode: 'fixed_height', height: 2, width: 6 }, scale: 1 / 255, mean: [0.5], std: [0.5],
    }), OPTS);
    expect([...black.data]).toEqual([1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1]);
    // Wider than width: squeezed into it, no padding.
    const squeezed = await decodeImage(await solid(40, 2, [255, 255, 255]), spec({ color: 'GRAY', resize: { mode: 'fixed_height', height: 2, width: 6 }, datatype: 'UINT8' }), OPTS);
    expect([...squeezed.data]).toEqual(Array(12).fill(255));
  });

  it('fixed_height with max_width gives a variable width rounded up to multiple_of', async () => {
    const s = spec({ color: 'GRAY', resize: { mode: 'fixed_height', height: 4, max_width: 16, multiple_of: 4 }, datatype: 'UINT8' });
    expect((await decodeImage(await solid(6, 2, [255, 255, 255]), s, OPTS)).shape).toEqual([1, 4, 12]);
    const seven = await decodeImage(await solid(7, 2, [255, 255, 255]), s, OPTS);
    expect(seven.shape).toEqual([1, 4, 16]);
    expect([...seven.data.subarray(0, 16)]).toEqual([...Array(14).fill(255), 0, 0]);
    expect((await decodeImage(await solid(20, 2, [255, 255, 255]), s, OPTS)).shape).toEqual([1, 4, 16]);
  });

  it('keep_aspect: max_side, then rounding to multiple_of (PaddleOCR detection)', async () => {
    const det = spec({ resize: { mode: 'keep_aspect', max_side: 64, multiple_of: 32 }, ...IMAGENET });
    const big = await decodeImage(await solid(100, 50, [0, 0, 0]), det, OPTS);
    expect(big.shape).toEqual([3, 32, 64]);
    const small = await decodeImage(await solid(70, 30, [0, 0, 0]), spec({ resize: { mode: 'keep_aspect', multiple_of: 32 }, datatype: 'UINT8' }), OPTS);
    expect(small.shape).toEqual([3, 32, 64]);
    expect(small.mapping.scale_x).toBeCloseTo(70 / 64, 10);
    expect(small.mapping.scale_y).toBeCloseTo(30 / 32, 10);
    expect(planResize(1000, 500, { mode: 'keep_aspect', max_side: 960, multiple_of: 32, interpolation: 'linear' }))
      .toMatchObject({ width: 960, height: 480 });
    expect(planResize(10, 10, { mode: 'keep_aspect', multiple_of: 32, interpolation: 'linear' })).toMatchObject({ width: 32, height: 32 });
    expect(planResize(400, 300, { mode: 'keep_aspect', shorter_side: 256, interpolation: 'linear' })).toMatchObject({ width: 341, height: 256 });
  });

  it('crop: a region before resizing, or the centre after resizing', async () => {
    // 4×4: left half red, right half blue; the top-right 2×2 region is all blue.
    const px: number[] = [];
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) px.push(...(x < 2 ? R : B));
    const img = await png(4, 4, px);
    const region = await decodeImage(img, spec({ resize: { mode: 'none' }, crop: { x: 2, y: 0, width: 2, height: 2 }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect(region.shape).toEqual([2, 2, 3]);
    expect([...region.data]).toEqual([...B, ...B, ...B, ...B]);
    expect(region.mapping).toEqual({ scale_x: 1, scale_y: 1, offset_x: 2, offset_y: 0 });
    const regionResized = await decodeImage(img, spec({ resize: { mode: 'stretch', width: 3, height: 3 }, crop: { x: 2, y: 0, width: 2, height: 2 }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect([...regionResized.data]).toEqual(Array(9).fill(B).flat());
    expect(regionResized.mapping).toEqual({ scale_x: 2 / 3, scale_y: 2 / 3, offset_x: 2, offset_y: 0 });
    const centre = await decodeImage(img, spec({ resize: { mode: 'stretch', width: 4, height: 4 }, crop: { center: [2, 1] }, datatype: 'UINT8', layout: 'NHWC' }), OPTS);
    expect(centre.shape).toEqual([1, 2, 3]);
    expect([...centre.data]).toEqual([...R, ...B]);
    expect(centre.mapping).toEqual({ scale_x: 1, scale_y: 1, offset_x: 1, offset_y: 1 });
  });

  it('raw helpers: cropRaw clamps, rotateRaw180 reverses, preprocessRaw resizes', async () => {
    const raw = await decodeRaw(await png(2, 2, QUAD), OPTS);
    expect(raw).toMatchObject({ width: 2, height: 2, channels: 3 });
    expect([...cropRaw(raw, { x: 1, y: -5, width: 10, height: 1 }).data]).toEqual(G);
    expect([...rotateRaw180(raw).data]).toEqual([...W, ...B, ...G, ...R]);
    const out = await preprocessRaw(raw, spec({ resize: { mode: 'stretch', width: 4, height: 4 }, datatype: 'UINT8' }));
    expect(out.shape).toEqual([3, 4, 4]);
    const gray = await preprocessRaw(raw, spec({ color: 'GRAY', resize: { mode: 'none' }, datatype: 'UINT8' }));
    expect(gray.shape).toEqual([1, 2, 2]);
    expect(gray.data[3]).toBe(255);
  });
});

describe('bad images → ImageError with index and cause', () => {
  const S = spec({ resize: { mode: 'stretch', width: 8, height: 8 } });

  async function imageError(bytes: Uint8Array, opts: Partial<DecodeOptions> = {}, s = S): Promise<ImageError> {
    try {
      await decodeImage(bytes, s, { ...OPTS, index: 3, ...opts });
    } catch (err) {
      expect(err).toBeInstanceOf(ImageError);
      const e = err as ImageError;
      expect(e.index).toBe(3);
      expect(e.message).toBe(`image 3: ${e.detail}`);
      return e;
    }
    throw new Error('expected an ImageError');
  }

  /** A real (8×8) PNG whose header claims width × height: what a decompression bomb looks like to a decoder. */
  async function bomb(width: number, height: number): Promise<Uint8Array> {
    const b = Buffer.from(await solid(8, 8, [0, 0, 0]));
    b.writeUInt32BE(width, 16); // IHDR data starts at byte 16
    b.writeUInt32BE(height, 20);
    b.writeUInt32BE(zlib.crc32(b.subarray(12, 29)), 29); // CRC of 'IHDR' + 13 data bytes
    return b;
  }

  it('empty', async () => {
    const e = await imageError(new Uint8Array(0));
    expect(e.reason).toBe('empty');
    expect(e.message).toBe('image 3: image is empty (0 bytes)');
  });

  it('not an image', async () => {
    const e = await imageError(Buffer.from('{"not": "an image"}'));
    expect(e.reason).toBe('not_image');
    expect(e.detail).toMatch(/^not an image: the data does not start like any of jpeg, png, webp, gif, tiff \(19 bytes\)$/);
  });

  it('truncated PNG and JPEG', async () => {
    const big = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } }).png({ compressionLevel: 0 }).toBuffer();
    const png1 = await imageError(big.subarray(0, big.length >> 1));
    expect(png1.reason).toBe('corrupt');
    expect(png1.detail).toMatch(/^png image data is truncated or corrupt \(.+\)$/);
    const jpg = await sharp(big).jpeg().toBuffer();
    const jpg1 = await imageError(jpg.subarray(0, jpg.length >> 1));
    expect(jpg1.reason).toBe('corrupt');
    expect(jpg1.detail).toMatch(/^jpeg image data is truncated or corrupt \(.*(premature end|JPEG).*\)$/i);
    const header = await imageError(big.subarray(0, 20));
    expect(header.reason).toBe('corrupt');
    expect(header.detail).toMatch(/^png image data is truncated or corrupt/);
  });

  it('formats outside the allow-list: SVG, BMP, PDF, and a narrowed list', async () => {
    const svg = await imageError(Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'));
    expect(svg.reason).toBe('unsupported_format');
    expect(svg.detail).toBe("unsupported image format 'svg'; send one of jpeg, png, webp, gif, tiff");
    expect((await imageError(Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]))).detail).toMatch(/unsupported image format 'bmp'/);
    expect((await imageError(Buffer.from('%PDF-1.7\n...'))).detail).toMatch(/unsupported image format 'pdf'/);
    const jpg = await sharp(await solid(2, 2, [1, 2, 3])).jpeg().toBuffer();
    const narrowed = await imageError(jpg, { formats: ['png'] });
    expect(narrowed.detail).toBe("unsupported image format 'jpeg'; send one of png");
    expect(sniffImageFormat(await sharp(jpg).webp().toBuffer())).toBe('webp');
    expect(sniffImageFormat(await sharp(jpg).gif().toBuffer())).toBe('gif');
    expect(sniffImageFormat(await sharp(jpg).tiff().toBuffer())).toBe('tiff');
  });

  it('more pixels than the limit, including a decompression bomb header', async () => {
    const e = await imageError(await solid(100, 60, [0, 0, 0]), { maxPixels: 5000 });
    expect(e.reason).toBe('too_large');
    expect(e.detail).toMatch(/more than (the limit of )?5000/);
    // The spec's max_pixels lowers the agent-wide limit.
    const lowered = await imageError(await solid(100, 60, [0, 0, 0]), {}, spec({ resize: { mode: 'none' }, max_pixels: 1000 }));
    expect(lowered.reason).toBe('too_large');
    const bombed = await imageError(await bomb(100_000, 100_000), { maxPixels: 40_000_000 });
    expect(bombed.reason).toBe('too_large');
    expect(bombed.detail).toMatch(/more than (the limit of )?40000000 pixels/);
  });

  it('a crop region outside the image', async () => {
    const e = await imageError(await solid(4, 4, [0, 0, 0]), {}, spec({ resize: { mode: 'none' }, crop: { x: 2, y: 2, width: 4, height: 1 } }));
    expect(e.reason).toBe('invalid');
    expect(e.detail).toBe('crop {x: 2, y: 2, width: 4, height: 1} lies outside the 4×4 image; send an image at least 6×3');
    const small = await imageError(await solid(10, 10, [0, 0, 0]), {}, spec({ resize: { mode: 'keep_aspect', multiple_of: 8 }, crop: { center: [16, 16] } }));
    expect(small.detail).toBe('the resized image is 8×8, smaller than crop.center [16, 16]; send a larger image');
  });
});

describe('createDecodeQueue', () => {
  it('runs at most `limit` tasks at once, in FIFO order, and survives failures', async () => {
    const q = createDecodeQueue(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates: (() => void)[] = [];
    const tasks = Array.from({ length: 6 }, (_, i) =>
      q.run(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running--;
        if (i === 1) throw new Error('task 1 failed');
        return i;
      }));
    tasks.forEach((t) => t.catch(() => undefined)); // checked below with allSettled
    await new Promise((r) => setImmediate(r));
    expect(q.active).toBe(2);
    expect(q.waiting).toBe(4);
    while (gates.length || q.active) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.allSettled(tasks);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([0, 'task 1 failed', 2, 3, 4, 5]);
    expect(q.active).toBe(0);
    expect(q.waiting).toBe(0);
  });

  it('decodes real images through the queue, bad ones rejecting with their index', async () => {
    const q = createDecodeQueue(2);
    const s = spec({ resize: { mode: 'stretch', width: 4, height: 4 } });
    const good = await solid(16, 16, [10, 20, 30]);
    const inputs = [good, good, Buffer.from('nope'), good, good];
    const results = await Promise.allSettled(inputs.map((b, index) => q.decode(b, s, { ...OPTS, index })));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const bad = (results[2] as PromiseRejectedResult).reason as ImageError;
    expect(bad).toBeInstanceOf(ImageError);
    expect(bad.index).toBe(2);
    expect(q.active).toBe(0);
  });

  it('rejects a bad limit', () => {
    expect(() => createDecodeQueue(0)).toThrow(/limit must be an integer ≥ 1/);
  });
});
