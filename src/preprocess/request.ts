/**
 * The preprocessing step of a request: image inputs arrive as BYTES (one encoded image per
 * row: binary elements, or base64 strings in JSON) and leave as the model's tensor. Runs after
 * the request is decoded and before it is checked against the model and queued, so images of
 * concurrent requests batch together like any tensors. Decoding goes through the agent's
 * bounded queue (libuv threads); a bad image is a 400 naming the input, the image index and
 * the cause, and nothing else is affected.
 */
import { invalid } from '../errors.js';
import type { HostTensor, InferRequest } from '../protocol/tensor.js';
import type { ModelSpec } from '../sessions/model-spec.js';
import { isImageError, type DecodeQueue, type PreprocessedImage } from './image.js';

export interface ImageLimits {
  readonly queue: DecodeQueue;
  /** Largest width × height accepted (decompression bombs). */
  readonly maxPixels: number;
}

/** True when the model has at least one image input. */
export function hasImageInputs(spec: ModelSpec): boolean {
  return spec.inputs.some((i) => i.preprocess);
}

/** The encoded image in row `i` of a BYTES tensor: its raw bytes, or base64 from JSON. */
export function imageBytes(t: HostTensor, i: number): Uint8Array {
  const raw = t.raw?.[i];
  if (raw) return raw;
  // JSON carries binary as base64 (the usual convention for bytes in JSON).
  return Buffer.from((t.data as string[])[i]!, 'base64');
}

/** Replace the image inputs of `req` by decoded, preprocessed tensors; returns ms spent. */
export async function preprocessImages(req: InferRequest, spec: ModelSpec, limits: ImageLimits): Promise<{ request: InferRequest; ms: number }> {
  const started = performance.now();
  const inputs = await Promise.all(req.inputs.map(async (t) => {
    const s = spec.inputs.find((x) => x.name === t.name);
    if (!s?.preprocess) return t;
    // A client may also send the model's own tensor (already preprocessed).
    if (t.datatype === s.datatype) return t;
    if (t.datatype !== 'BYTES') {
      throw invalid(`input '${t.name}' takes encoded images as BYTES (one per row; binary, or base64 strings in JSON), or the model's ${s.datatype} tensor; got ${t.datatype}`);
    }
    const batched = spec.maxBatchSize > 0;
    const okShape = batched ? (t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1)) : t.shape.every((d) => d === 1);
    if (!okShape || t.shape.length === 0) {
      throw invalid(`input '${t.name}' has shape [${t.shape.join(',')}]; send images as shape ${batched ? '[n] or [n,1], one image per row' : '[1]'}`);
    }
    const n = t.shape[0]!;
    const spec_ = s.preprocess;
    let images: PreprocessedImage[];
    try {
      images = await Promise.all(Array.from({ length: n }, (_, i) => limits.queue.decode(imageBytes(t, i), spec_, { maxPixels: limits.maxPixels, index: i })));
    } catch (err) {
      if (isImageError(err)) throw invalid(`input '${t.name}' ${err.message}`);
      throw err;
    }
    const shape = images[0]!.shape;
    const other = images.findIndex((im) => im.shape.join() !== shape.join());
    if (other >= 0) {
      throw invalid(`input '${t.name}': image ${other} becomes a [${images[other]!.shape.join(',')}] tensor but image 0 a [${shape.join(',')}] one; send images of different sizes in separate requests`);
    }
    const size = images[0]!.data.length;
    const Ctor = images[0]!.data.constructor as new (n: number) => Float32Array | Uint16Array | Uint8Array;
    const data = new Ctor(size * n);
    images.forEach((im, i) => data.set(im.data, i * size));
    return { name: t.name, datatype: s.datatype, shape: batched ? [n, ...shape] : shape, data } satisfies HostTensor;
  }));
  return { request: { ...req, inputs }, ms: performance.now() - started };
}
