/**
 * Warm-up before a model is READY.
 *
 * - Triton's `model_warmup`: each sample (batch_size, inputs with zero_data / random_data /
 *   input_data_file from the model's `warmup/` folder) runs `count` times (at least once) on
 *   every instance. A sample that cannot be built or fails to run fails the load, naming the
 *   sample: the model is UNAVAILABLE, as in Triton.
 * - Without `model_warmup`, the automatic warm-up runs zero data at batch 1 and at
 *   max_batch_size, but only when it can build inputs sensibly: every input numeric and every
 *   non-batch dimension known. Otherwise it is skipped with a note. If it fails, the model is
 *   still READY and the warning is kept (index, metadata, logs): zeros are not real inputs
 *   (a string→number Cast of "" fails, a model may divide by a zero input), so a failure
 *   says nothing about the model's health.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { allocate, datatypeFromTriton, elementCount, elementSize, floatToHalf, type NumericArray } from '../execution/datatypes.js';
import { decodeBinary } from '../protocol/decode-request.js';
import type { PreparedRequest } from '../protocol/validate-request.js';
import type { HostTensor } from '../protocol/tensor.js';
import type { ModelSpec } from './model-spec.js';

export interface WarmupSample {
  readonly name: string;
  readonly request: PreparedRequest;
  /** Runs per instance (≥ 1). */
  readonly count: number;
}

export type WarmupPlan =
  | { readonly kind: 'samples'; readonly samples: readonly WarmupSample[] }
  | { readonly kind: 'auto'; readonly samples: readonly WarmupSample[] }
  | { readonly kind: 'skip'; readonly note: string };

/** What the automatic warm-up would need to invent, or undefined when it can build every input. */
export function autoWarmupObstacle(spec: ModelSpec): string | undefined {
  for (const s of spec.inputs) {
    if (s.datatype === 'BYTES') return `input '${s.name}' is BYTES (zero-length strings are not real inputs)`;
    const dims = spec.maxBatchSize > 0 ? s.shape.slice(1) : s.shape;
    if (dims.some((d) => d === -1)) return `input '${s.name}' has variable dimensions [${s.shape.join(',')}]`;
  }
  return undefined;
}

function zeroRequest(spec: ModelSpec, rows: number): PreparedRequest {
  const inputs = spec.inputs.filter((s) => !s.optional).map((s) => {
    const shape = s.shape.map((d, i) => (i === 0 && spec.maxBatchSize > 0 ? rows : d));
    return { name: s.name, datatype: s.datatype, shape, data: allocate(s.datatype, elementCount(shape)) };
  });
  return { inputs, rows, shapeKey: 'warmup', outputs: spec.outputs.map((o) => ({ name: o.name, binary: true })) };
}

/**
 * mulberry32: a small seeded PRNG, so random_data is the same on every load. The same function
 * lives in scripts/generate-models.mjs on purpose: the scripts are plain .mjs that run before
 * the build (they cannot import src/ or dist/), and the agent at run time has no scripts/ (the
 * bundle ships dist/ only), so neither side can import the other's copy.
 */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomFill(data: NumericArray, seed: number, datatype: string): void {
  const next = mulberry32(seed);
  for (let i = 0; i < data.length; i++) {
    const r = next();
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) (data as BigInt64Array)[i] = BigInt(Math.floor(r * 100));
    else if (datatype === 'FP32' || datatype === 'FP64') (data as Float32Array)[i] = r;
    else if (datatype === 'FP16') (data as Uint16Array)[i] = floatToHalf(r);
    else if (datatype === 'BOOL') (data as Uint8Array)[i] = r < 0.5 ? 0 : 1;
    else (data as Int32Array)[i] = Math.floor(r * 100);
  }
}

/** Build the plan: Triton's samples when the config has them, else the automatic one (or why not). */
export async function planWarmup(spec: ModelSpec, modelDir: string): Promise<WarmupPlan> {
  const configured = spec.config.model_warmup;
  if (configured && configured.length) {
    const samples: WarmupSample[] = [];
    for (const [n, sample] of configured.entries()) {
      try {
        samples.push(await buildSample(spec, sample, modelDir, n));
      } catch (err) {
        throw new Error(`model_warmup sample '${sample.name}': ${(err as Error).message}`);
      }
    }
    return { kind: 'samples', samples };
  }
  if (!spec.warmup) return { kind: 'skip', note: 'warm-up disabled by parameter warmup "0"' };
  const obstacle = autoWarmupObstacle(spec);
  if (obstacle) return { kind: 'skip', note: `auto warm-up skipped: ${obstacle}; give model_warmup to warm up with real inputs` };
  const sizes = spec.maxBatchSize > 1 ? [1, spec.maxBatchSize] : [1];
  return { kind: 'auto', samples: sizes.map((rows) => ({ name: `auto (zeros, batch ${rows})`, request: zeroRequest(spec, rows), count: 1 })) };
}

async function buildSample(spec: ModelSpec, sample: NonNullable<ModelSpec['config']['model_warmup']>[number], modelDir: string, n: number): Promise<WarmupSample> {
  const batched = spec.maxBatchSize > 0;
  const rows = sample.batch_size;
  if (!batched && rows !== 1) throw new Error(`batch_size is ${rows} but the model does not batch (max_batch_size 0); use batch_size: 1`);
  if (batched && (rows < 1 || rows > spec.maxBatchSize)) throw new Error(`batch_size ${rows} is outside 1..${spec.maxBatchSize} (max_batch_size)`);
  for (const name of Object.keys(sample.inputs)) {
    if (!spec.inputs.some((s) => s.name === name)) throw new Error(`input '${name}' is not an input of the model (its inputs: ${spec.inputs.map((s) => s.name).join(', ')})`);
  }
  const inputs: HostTensor[] = [];
  for (const [i, s] of spec.inputs.entries()) {
    const given = sample.inputs[s.name];
    if (!given) {
      if (s.optional) continue;
      throw new Error(`input '${s.name}' is missing (every non-optional input needs an entry in inputs)`);
    }
    const dt = datatypeFromTriton(given.data_type);
    if (dt !== s.datatype) throw new Error(`input '${s.name}' data_type is ${given.data_type} but the model takes ${s.datatype}`);
    const own = batched ? s.shape.slice(1) : s.shape;
    if (given.dims.length !== own.length || given.dims.some((d, j) => own[j] !== -1 && own[j] !== d)) {
      throw new Error(`input '${s.name}' dims [${given.dims.join(',')}] do not fit the input's [${own.join(',')}]`);
    }
    const rowShape = given.dims;
    const perRow = elementCount(rowShape);
    const shape = batched ? [rows, ...rowShape] : rowShape;
    let data: HostTensor['data'];
    if (given.input_data_file !== undefined) {
      const file = path.join(modelDir, 'warmup', given.input_data_file);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new Error(`input '${s.name}' input_data_file: cannot read ${file}: ${(err as Error).message}`);
      }
      let row: HostTensor['data'];
      if (s.datatype === 'BYTES') {
        row = decodeBinary('BYTES', s.name, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), perRow);
      } else {
        const need = perRow * elementSize(s.datatype);
        if (bytes.length < need) throw new Error(`input '${s.name}' input_data_file ${file} has ${bytes.length} bytes; dims [${rowShape.join(',')}] need ${need}`);
        const copy = new Uint8Array(need);
        copy.set(bytes.subarray(0, need));
        row = decodeBinary(s.datatype, s.name, copy, perRow);
      }
      data = repeatRows(row, rows);
    } else if (s.datatype === 'BYTES') {
      // As in Triton, random_data on strings falls back to zero data: empty strings.
      data = new Array<string>(perRow * rows).fill('');
    } else {
      const buf = allocate(s.datatype, perRow * rows) as NumericArray;
      if (given.random_data) randomFill(buf, 0x5eed + n * 31 + i, s.datatype);
      data = buf;
    }
    inputs.push({ name: s.name, datatype: s.datatype, shape, data });
  }
  return {
    name: sample.name,
    request: { inputs, rows: batched ? rows : 1, shapeKey: `warmup:${sample.name}`, outputs: spec.outputs.map((o) => ({ name: o.name, binary: true })) },
    count: Math.max(1, sample.count),
  };
}

function repeatRows(row: HostTensor['data'], rows: number): HostTensor['data'] {
  if (rows === 1) return row;
  if (Array.isArray(row)) return Array.from({ length: rows }, () => row).flat();
  const out = new (row.constructor as new (n: number) => NumericArray)(row.length * rows);
  for (let r = 0; r < rows; r++) (out as Float32Array).set(row as Float32Array, r * row.length);
  return out;
}
