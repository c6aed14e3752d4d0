import { describe, expect, it } from 'vitest';
import {
  allocate,
  DATATYPES,
  datatypeFromOrt,
  datatypeFromTriton,
  elementCount,
  elementSize,
  floatToHalf,
  halfToFloat,
  isDatatype,
  ortTypeOf,
  TRITON_TYPE_NAMES,
  tritonTypeOf,
  viewOf,
  type Datatype,
} from '../../src/execution/datatypes.js';

describe('floatToHalf / halfToFloat', () => {
  it.each([
    [0, 0x0000],
    [1, 0x3c00],
    [-2.5, 0xc100],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [0.333251953125, 0x3555],
  ])('%d encodes to 0x%s and decodes back exactly', (value, bits) => {
    expect(floatToHalf(value)).toBe(bits);
    expect(halfToFloat(bits)).toBe(value);
  });

  it('keeps the sign of -0', () => {
    expect(floatToHalf(-0)).toBe(0x8000);
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(Object.is(halfToFloat(0x0000), 0)).toBe(true);
  });

  it('underflows tiny values to signed zero', () => {
    expect(floatToHalf(1e-8)).toBe(0x0000);
    expect(floatToHalf(-1e-8)).toBe(0x8000);
    // Exactly half the smallest subnormal ties to even (0); anything above rounds up to it.
    expect(floatToHalf(2 ** -25)).toBe(0x0000);
    expect(floatToHalf(2 ** -25 * 1.0001)).toBe(0x0001);
  });

  it('maps infinities and overflow to ±Inf', () => {
    expect(floatToHalf(Infinity)).toBe(0x7c00);
    expect(floatToHalf(-Infinity)).toBe(0xfc00);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(-1e300)).toBe(0xfc00);
    // 65504 + half an ulp (16) rounds to even, which is Inf; just below stays at max.
    expect(floatToHalf(65520)).toBe(0x7c00);
    expect(floatToHalf(65519.99)).toBe(0x7bff);
  });

  it('maps NaN to a quiet NaN and back', () => {
    const h = floatToHalf(NaN);
    expect(h & 0x7c00).toBe(0x7c00);
    expect(h & 0x3ff).not.toBe(0);
    expect(halfToFloat(h)).toBeNaN();
    expect(halfToFloat(0x7c01)).toBeNaN();
    expect(halfToFloat(0xfe00)).toBeNaN();
  });

  it('rounds to nearest, ties to even', () => {
    const ulp1 = 2 ** -10; // spacing of halves in [1, 2)
    expect(floatToHalf(1 + ulp1 / 2)).toBe(0x3c00); // tie, 0x3c00 is even → down
    expect(floatToHalf(1 + 3 * (ulp1 / 2))).toBe(0x3c02); // tie between 0x3c01 and 0x3c02 → even, up
    expect(floatToHalf(1 + ulp1 / 2 + 2 ** -20)).toBe(0x3c01); // above the tie → up
    expect(floatToHalf(1 + ulp1 / 2 - 2 ** -20)).toBe(0x3c00); // below the tie → down
    // Ties among subnormals, and a subnormal rounding up into the smallest normal.
    expect(floatToHalf(2.5 * 2 ** -24)).toBe(0x0002);
    expect(floatToHalf(3.5 * 2 ** -24)).toBe(0x0004);
    expect(floatToHalf(1023.5 * 2 ** -24)).toBe(0x0400);
    // Mantissa carry into the exponent: just under 2 rounds to 2.
    expect(floatToHalf(2 - 2 ** -12)).toBe(0x4000);
    expect(floatToHalf(-(2 - 2 ** -12))).toBe(0xc000);
  });

  it('rounds once, from the float64 value (no double rounding through float32)', () => {
    // 1 + 2^-11 + 2^-40 is just above the tie between 1 and 1 + 2^-10; through float32 it
    // would first become the exact tie and then round (to even) down to 1.
    expect(floatToHalf(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
    expect(floatToHalf(2 ** -25 + 2 ** -60)).toBe(0x0001);
  });

  it('round-trips every finite half exactly', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue; // Inf / NaN
      const f = halfToFloat(h);
      checked++;
      if (!Number.isFinite(f) || floatToHalf(f) !== h) wrong.push(`0x${h.toString(16)} -> ${f}`);
    }
    expect(checked).toBe(0x10000 - 2 * 0x400);
    expect(wrong).toEqual([]);
  });

  it('rounds every midpoint between adjacent positive halves to the even one', () => {
    const wrong: string[] = [];
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (halfToFloat(h) + halfToFloat(h + 1)) / 2;
      const want = h % 2 === 0 ? h : h + 1;
      if (floatToHalf(mid) !== want || floatToHalf(-mid) !== (want | 0x8000)) wrong.push(`${mid}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('viewOf', () => {
  it('returns a view sharing the buffer when the offset is aligned', () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setFloat32(4, 1.5, true);
    new DataView(bytes.buffer).setFloat32(8, -7.25, true);
    const v = viewOf('FP32', bytes, 4, 2) as Float32Array;
    expect(v).toBeInstanceOf(Float32Array);
    expect(Array.from(v)).toEqual([1.5, -7.25]);
    expect(v.buffer).toBe(bytes.buffer);
    expect(v.byteOffset).toBe(4);
    bytes.set([0, 0, 0x80, 0x3f], 4); // 1.0f little-endian
    expect(v[0]).toBe(1);
  });

  it('respects the byteOffset of a subarray when deciding alignment', () => {
    const backing = new Uint8Array(24);
    const sub = backing.subarray(8); // absolute offset 8: aligned for 8-byte elements
    new DataView(backing.buffer).setBigInt64(8, -5n, true);
    const v = viewOf('INT64', sub, 0, 2) as BigInt64Array;
    expect(v.buffer).toBe(backing.buffer);
    expect(v[0]).toBe(-5n);
  });

  it('copies when the offset is unaligned, with the right values', () => {
    const bytes = new Uint8Array(1 + 3 * 4);
    const dv = new DataView(bytes.buffer);
    dv.setInt32(1, -1, true);
    dv.setInt32(5, 123456789, true);
    dv.setInt32(9, -2147483648, true);
    const v = viewOf('INT32', bytes, 1, 3) as Int32Array;
    expect(v).toBeInstanceOf(Int32Array);
    expect(Array.from(v)).toEqual([-1, 123456789, -2147483648]);
    expect(v.buffer).not.toBe(bytes.buffer);
    bytes.fill(0);
    expect(v[1]).toBe(123456789); // independent of the source
  });

  it('copies an unaligned subarray (absolute offset odd) for 2-byte types', () => {
    const backing = new Uint8Array(8);
    const sub = backing.subarray(3);
    new DataView(backing.buffer).setUint16(3, 0xbeef, true);
    const v = viewOf('UINT16', sub, 0, 1) as Uint16Array;
    expect(v.buffer).not.toBe(backing.buffer);
    expect(v[0]).toBe(0xbeef);
  });

  it('uses the right array type for each fixed-size datatype', () => {
    const ctor: Record<Exclude<Datatype, 'BYTES'>, unknown> = {
      BOOL: Uint8Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array,
      INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array,
      FP16: Uint16Array, FP32: Float32Array, FP64: Float64Array,
    };
    for (const [dt, c] of Object.entries(ctor) as [Exclude<Datatype, 'BYTES'>, unknown][]) {
      const v = viewOf(dt, new Uint8Array(16), 0, 2);
      expect(v.constructor).toBe(c);
      expect(v.length).toBe(2);
    }
  });

  it('refuses BYTES', () => {
    expect(() => viewOf('BYTES', new Uint8Array(4), 0, 1)).toThrow(/BYTES has no fixed-size elements/);
  });
});

describe('elementCount / allocate / sizes', () => {
  it('multiplies the dimensions; a scalar has one element; a zero dim none', () => {
    expect(elementCount([])).toBe(1);
    expect(elementCount([7])).toBe(7);
    expect(elementCount([2, 3, 4])).toBe(24);
    expect(elementCount([5, 0, 3])).toBe(0);
  });

  it('allocates zero-filled storage', () => {
    expect(allocate('BYTES', 3)).toEqual(['', '', '']);
    const f = allocate('FP64', 2);
    expect(f).toBeInstanceOf(Float64Array);
    expect(Array.from(f as Float64Array)).toEqual([0, 0]);
    expect(allocate('INT64', 1)).toBeInstanceOf(BigInt64Array);
  });

  it('knows the wire size of each element', () => {
    const sizes = Object.fromEntries(DATATYPES.map((d) => [d, elementSize(d)]));
    expect(sizes).toEqual({
      BOOL: 1, UINT8: 1, UINT16: 2, UINT32: 4, UINT64: 8,
      INT8: 1, INT16: 2, INT32: 4, INT64: 8,
      FP16: 2, FP32: 4, FP64: 8, BYTES: 0,
    });
  });
});

describe('datatype mappings', () => {
  const TABLE: [Datatype, string, string][] = [
    ['BOOL', 'bool', 'TYPE_BOOL'],
    ['UINT8', 'uint8', 'TYPE_UINT8'],
    ['UINT16', 'uint16', 'TYPE_UINT16'],
    ['UINT32', 'uint32', 'TYPE_UINT32'],
    ['UINT64', 'uint64', 'TYPE_UINT64'],
    ['INT8', 'int8', 'TYPE_INT8'],
    ['INT16', 'int16', 'TYPE_INT16'],
    ['INT32', 'int32', 'TYPE_INT32'],
    ['INT64', 'int64', 'TYPE_INT64'],
    ['FP16', 'float16', 'TYPE_FP16'],
    ['FP32', 'float32', 'TYPE_FP32'],
    ['FP64', 'float64', 'TYPE_FP64'],
    ['BYTES', 'string', 'TYPE_STRING'],
  ];

  it('covers all 13 datatypes', () => {
    expect(DATATYPES).toHaveLength(13);
    expect(TABLE.map((r) => r[0]).sort()).toEqual([...DATATYPES].sort());
    expect([...TRITON_TYPE_NAMES].sort()).toEqual(TABLE.map((r) => r[2]).sort());
  });

  it.each(TABLE)('%s <-> ort %s <-> triton %s', (dt, ort, triton) => {
    expect(ortTypeOf(dt)).toBe(ort);
    expect(tritonTypeOf(dt)).toBe(triton);
    expect(datatypeFromOrt(ort)).toBe(dt);
    expect(datatypeFromTriton(triton)).toBe(dt);
    expect(isDatatype(dt)).toBe(true);
  });

  it('returns undefined for types it cannot serve', () => {
    expect(datatypeFromOrt('bfloat16')).toBeUndefined();
    expect(datatypeFromOrt('complex64')).toBeUndefined();
    expect(datatypeFromOrt('FP32')).toBeUndefined();
    expect(datatypeFromTriton('TYPE_BF16')).toBeUndefined();
    expect(datatypeFromTriton('FP32')).toBeUndefined();
    expect(isDatatype('BF16')).toBe(false);
    expect(isDatatype('toString')).toBe(false);
    expect(isDatatype('fp32')).toBe(false);
  });
});
