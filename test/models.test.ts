// Checks the generated models against real onnxruntime-node (CPU): values, shapes, per-datatype
// identity round trips, byte-for-byte reproducibility, and that the corrupt model is rejected.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { keepFloat16AsUint16 } from '../src/execution/ort-session.js';
import pkg from 'onnx-proto';
import {
  IDENTITY_DTYPES,
  generateBundledModels,
  generateComputeModel,
  generateCorruptModel,
  generateIdentityModels,
} from '../scripts/generate-models.mjs';

// As the agent does: float16 as Uint16Array also on Node >= 24 (see keepFloat16AsUint16).
keepFloat16AsUint16(ort);

const { onnx } = pkg;

type WriteResult = { name: string; file: string; bytes: number; written: boolean };

async function generateAll(repoDir: string): Promise<WriteResult[]> {
  return [
    ...(await generateBundledModels(repoDir)),
    ...(await generateIdentityModels(repoDir)),
    await generateComputeModel(repoDir),
    await generateCorruptModel(repoDir),
  ];
}

let repo: string;
let generated: WriteResult[];
const modelPath = (name: string) => path.join(repo, name, '1', 'model.onnx');
const session = (name: string) => ort.InferenceSession.create(modelPath(name));

beforeAll(async () => {
  repo = fs.mkdtempSync(path.join(os.tmpdir(), 'gna-models-'));
  generated = await generateAll(repo);
});

afterAll(() => {
  fs.rmSync(repo, { recursive: true, force: true });
});

describe('bundled models', () => {
  it('add_sub adds and subtracts float32 at batch 2', async () => {
    const s = await session('add_sub');
    const a = Float32Array.from({ length: 32 }, (_, i) => i * 0.5);
    const b = Float32Array.from({ length: 32 }, (_, i) => 100 - i);
    const out = await s.run({
      INPUT0: new ort.Tensor('float32', a, [2, 16]),
      INPUT1: new ort.Tensor('float32', b, [2, 16]),
    });
    expect(out.OUTPUT0.dims).toEqual([2, 16]);
    expect(out.OUTPUT1.dims).toEqual([2, 16]);
    expect(Array.from(out.OUTPUT0.data as Float32Array)).toEqual(Array.from(a, (v, i) => v + b[i]));
    expect(Array.from(out.OUTPUT1.data as Float32Array)).toEqual(Array.from(a, (v, i) => v - b[i]));
  });

  it('simple adds and subtracts int32', async () => {
    const s = await session('simple');
    const a = Int32Array.from({ length: 16 }, (_, i) => i);
    const b = Int32Array.from({ length: 16 }, () => 1);
    const out = await s.run({
      INPUT0: new ort.Tensor('int32', a, [1, 16]),
      INPUT1: new ort.Tensor('int32', b, [1, 16]),
    });
    expect(out.OUTPUT0.type).toBe('int32');
    expect(Array.from(out.OUTPUT0.data as Int32Array)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(Array.from(out.OUTPUT1.data as Int32Array)).toEqual(Array.from({ length: 16 }, (_, i) => i - 1));
  });

  it('identity_bytes round-trips strings at [batch,1]', async () => {
    const s = await session('identity_bytes');
    expect(s.inputMetadata[0]).toMatchObject({ name: 'INPUT0', type: 'string', shape: ['batch', 1] });
    const input = ['hello', '', 'ünïcødé ✓'];
    const out = await s.run({ INPUT0: new ort.Tensor('string', input, [3, 1]) });
    expect(out.OUTPUT0.type).toBe('string');
    expect(out.OUTPUT0.dims).toEqual([3, 1]);
    expect(out.OUTPUT0.data).toEqual(input);
  });

  it('identity_bytes: onnxruntime-node cuts string elements at the first NUL (known limitation)', async () => {
    // Pinned so a change in onnxruntime-node's behaviour is noticed; the server must not promise
    // binary-safe BYTES through ONNX string tensors while this holds.
    const s = await session('identity_bytes');
    const out = await s.run({ INPUT0: new ort.Tensor('string', ['a\u0000b', '\u0000z'], [2, 1]) });
    expect(out.OUTPUT0.data).toEqual(['a', '']);
  });

  it('fixed_scale doubles a fixed [2,8] input and declares no batch dim', async () => {
    const s = await session('fixed_scale');
    expect(s.inputMetadata[0]).toMatchObject({ name: 'X', shape: [2, 8] });
    const x = Float32Array.from({ length: 16 }, (_, i) => i - 7.25);
    const out = await s.run({ X: new ort.Tensor('float32', x, [2, 8]) });
    expect(out.Y.dims).toEqual([2, 8]);
    expect(Array.from(out.Y.data as Float32Array)).toEqual(Array.from(x, (v) => v * 2));
  });

  it('mlp gives finite [3,256] output matching a JS reference forward pass', async () => {
    const s = await session('mlp');
    const x = Float32Array.from({ length: 3 * 256 }, (_, i) => Math.sin(i));
    const out = await s.run({ x: new ort.Tensor('float32', x, [3, 256]) });
    expect(out.y.dims).toEqual([3, 256]);
    const y = out.y.data as Float32Array;
    expect(y.every(Number.isFinite)).toBe(true);
    expect(y.some((v) => v !== 0)).toBe(true);

    // Recompute from the stored weights: W0..W2 [256,256], B0..B2 [256], Relu between layers.
    const model = onnx.ModelProto.decode(fs.readFileSync(modelPath('mlp')));
    const init = new Map(
      (model.graph?.initializer ?? []).map((t) => {
        const raw = t.rawData!;
        return [t.name!, new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))];
      }),
    );
    expect(init.size).toBe(6);
    let h = Array.from(x);
    for (let l = 0; l < 3; l++) {
      const W = init.get(`W${l}`)!;
      const B = init.get(`B${l}`)!;
      const next = new Array<number>(3 * 256);
      for (let r = 0; r < 3; r++) {
        for (let j = 0; j < 256; j++) {
          let acc = B[j];
          for (let k = 0; k < 256; k++) acc += h[r * 256 + k] * W[k * 256 + j];
          next[r * 256 + j] = l < 2 ? Math.max(0, acc) : acc;
        }
      }
      h = next;
    }
    for (let i = 0; i < y.length; i++) expect(y[i]).toBeCloseTo(h[i], 4);
  });

  it('mlp_heavy runs at batch 2 with finite output', async () => {
    const s = await session('mlp_heavy');
    const width = 1024;
    const out = await s.run({ x: new ort.Tensor('float32', new Float32Array(2 * width).fill(0.25), [2, width]) });
    expect(out.y.dims).toEqual([2, width]);
    const y = out.y.data as Float32Array;
    expect(y.every(Number.isFinite)).toBe(true);
    expect(y.some((v) => v !== 0)).toBe(true);
    expect(fs.statSync(modelPath('mlp_heavy')).size).toBeLessThan(40 * 1024 * 1024);
  });
});

describe('identity_<dtype> models', () => {
  // dtype -> [onnxruntime-node tensor type, 8 sample elements]
  const samples: Record<string, [ort.Tensor.Type, () => ort.Tensor.DataType]> = {
    bool: ['bool', () => Uint8Array.from([1, 0, 0, 1, 1, 1, 0, 0])],
    int8: ['int8', () => Int8Array.from([-128, -1, 0, 1, 2, 3, 64, 127])],
    int16: ['int16', () => Int16Array.from([-32768, -1, 0, 1, 2, 3, 300, 32767])],
    int32: ['int32', () => Int32Array.from([-(2 ** 31), -1, 0, 1, 2, 3, 70000, 2 ** 31 - 1])],
    int64: ['int64', () => BigInt64Array.from([-(2n ** 63n), -1n, 0n, 1n, 2n, 3n, 2n ** 40n, 2n ** 63n - 1n])],
    uint8: ['uint8', () => Uint8Array.from([0, 1, 2, 3, 100, 128, 200, 255])],
    uint16: ['uint16', () => Uint16Array.from([0, 1, 2, 3, 1000, 32768, 50000, 65535])],
    uint32: ['uint32', () => Uint32Array.from([0, 1, 2, 3, 1e6, 2 ** 31, 3e9, 2 ** 32 - 1])],
    uint64: ['uint64', () => BigUint64Array.from([0n, 1n, 2n, 3n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n])],
    // IEEE half bit patterns: 1, 2, 0, -2, 0.5, 65504 (max), -0, +inf
    fp16: ['float16', () => Uint16Array.from([0x3c00, 0x4000, 0x0000, 0xc000, 0x3800, 0x7bff, 0x8000, 0x7c00])],
    fp32: ['float32', () => Float32Array.from([1.5, -2.25, 0, 3.4e38, -1e-30, 7, 8, 9])],
    fp64: ['float64', () => Float64Array.from([Math.PI, -Math.E, 0, 1e300, -1e-300, 6, 7, 8])],
    bytes: ['string', () => ['a', 'bb', '', 'ü', 'x y', '✓', '7', 'eight']],
  };
  // identity_bytes doubles as the bundled model, whose contract is [batch,1].
  const shapeOf = (dtype: string) => (dtype === 'bytes' ? [8, 1] : [2, 4]);

  it('covers exactly the generated datatypes', () => {
    expect(Object.keys(samples).sort()).toEqual(Object.keys(IDENTITY_DTYPES).sort());
  });

  for (const [dtype, [type, make]] of Object.entries(samples)) {
    it(`identity_${dtype} round-trips ${type}`, async () => {
      const s = await session(`identity_${dtype}`);
      const data = make();
      const out = await s.run({ INPUT0: new ort.Tensor(type, data as never, shapeOf(dtype)) });
      expect(out.OUTPUT0.type).toBe(type);
      expect(out.OUTPUT0.dims).toEqual(shapeOf(dtype));
      expect(Array.from(out.OUTPUT0.data as ArrayLike<unknown>)).toEqual(Array.from(data as ArrayLike<unknown>));
    });
  }
});

describe('generation', () => {
  it('is deterministic: a second repository gets identical bytes', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'gna-models-'));
    try {
      const again = await generateAll(other);
      expect(again.map((r) => r.name)).toEqual(generated.map((r) => r.name));
      for (const r of again) {
        const rel = path.relative(other, r.file);
        expect(fs.readFileSync(r.file).equals(fs.readFileSync(path.join(repo, rel))), rel).toBe(true);
      }
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('does not rewrite identical files', async () => {
    // Only the second write of identity_bytes (by generateIdentityModels) found identical bytes.
    expect(generated.filter((r) => !r.written).map((r) => r.name)).toEqual(['identity_bytes']);
    const again = await generateAll(repo);
    expect(again.filter((r) => r.written)).toEqual([]);
  });

  it('writes only model.onnx files in the Triton layout', () => {
    for (const r of generated) expect(path.relative(repo, r.file)).toBe(path.join(r.name, '1', 'model.onnx'));
    const names = fs.readdirSync(repo).sort();
    // identity_bytes comes from both the bundled and the per-dtype generator (same bytes).
    expect(names).toEqual([...new Set(generated.map((r) => r.name))].sort());
    for (const n of names) expect(fs.readdirSync(path.join(repo, n, '1'))).toEqual(['model.onnx']);
  });

  it('corrupt model makes InferenceSession.create throw', async () => {
    expect(fs.statSync(modelPath('corrupt')).size).toBeGreaterThan(0);
    await expect(session('corrupt')).rejects.toThrow(/protobuf parsing failed|failed/i);
  });
});
