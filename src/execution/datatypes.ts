/**
 * The datatypes of the Open Inference Protocol and how each maps onto onnxruntime and a
 * typed array. BF16 is listed by the protocol but onnxruntime-node cannot hold it, so it is
 * refused with a clear error instead of being silently converted.
 */

export const DATATYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64',
  'INT8', 'INT16', 'INT32', 'INT64',
  'FP16', 'FP32', 'FP64', 'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

export type NumericArray =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Float32Array | Float64Array;

/** Element storage: a typed array for fixed-size types, strings for BYTES. */
export type TensorData = NumericArray | string[];

export type OrtType =
  | 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'float16' | 'float32' | 'float64' | 'string';

interface TypeInfo {
  ort: OrtType;
  /** Bytes per element on the wire (binary extension); 0 for BYTES (length-prefixed). */
  size: number;
  /** Triton's config.pbtxt name. */
  triton: string;
  array?: { new (n: number): NumericArray; new (buf: ArrayBufferLike, offset: number, length: number): NumericArray };
}

const INFO: Record<Datatype, TypeInfo> = {
  BOOL: { ort: 'bool', size: 1, triton: 'TYPE_BOOL', array: Uint8Array },
  UINT8: { ort: 'uint8', size: 1, triton: 'TYPE_UINT8', array: Uint8Array },
  UINT16: { ort: 'uint16', size: 2, triton: 'TYPE_UINT16', array: Uint16Array },
  UINT32: { ort: 'uint32', size: 4, triton: 'TYPE_UINT32', array: Uint32Array },
  UINT64: { ort: 'uint64', size: 8, triton: 'TYPE_UINT64', array: BigUint64Array },
  INT8: { ort: 'int8', size: 1, triton: 'TYPE_INT8', array: Int8Array },
  INT16: { ort: 'int16', size: 2, triton: 'TYPE_INT16', array: Int16Array },
  INT32: { ort: 'int32', size: 4, triton: 'TYPE_INT32', array: Int32Array },
  INT64: { ort: 'int64', size: 8, triton: 'TYPE_INT64', array: BigInt64Array },
  FP16: { ort: 'float16', size: 2, triton: 'TYPE_FP16', array: Uint16Array },
  FP32: { ort: 'float32', size: 4, triton: 'TYPE_FP32', array: Float32Array },
  FP64: { ort: 'float64', size: 8, triton: 'TYPE_FP64', array: Float64Array },
  BYTES: { ort: 'string', size: 0, triton: 'TYPE_STRING' },
};

export function isDatatype(s: string): s is Datatype {
  return Object.prototype.hasOwnProperty.call(INFO, s);
}

export function ortTypeOf(dt: Datatype): OrtType {
  return INFO[dt].ort;
}

export function elementSize(dt: Datatype): number {
  return INFO[dt].size;
}

export function tritonTypeOf(dt: Datatype): string {
  return INFO[dt].triton;
}

const FROM_ORT = new Map<string, Datatype>(DATATYPES.map((d) => [INFO[d].ort, d]));
const FROM_TRITON = new Map<string, Datatype>(DATATYPES.map((d) => [INFO[d].triton, d]));

/** The V2 datatype of an onnxruntime type name, or undefined for types we cannot serve. */
export function datatypeFromOrt(t: string): Datatype | undefined {
  return FROM_ORT.get(t);
}

/** The V2 datatype of a Triton `TYPE_*` name, or undefined. */
export function datatypeFromTriton(t: string): Datatype | undefined {
  return FROM_TRITON.get(t);
}

export const TRITON_TYPE_NAMES: readonly string[] = DATATYPES.map((d) => INFO[d].triton);

/** A zero-filled array of `n` elements of `dt`. */
export function allocate(dt: Datatype, n: number): TensorData {
  const ctor = INFO[dt].array;
  if (!ctor) return new Array<string>(n).fill('');
  return new ctor(n);
}

/**
 * A typed array over `length` elements of `buf` starting at `byteOffset`: a view when the
 * offset is aligned for the element size, else a copy (typed arrays need aligned offsets).
 */
export function viewOf(dt: Datatype, buf: Uint8Array, byteOffset: number, length: number): NumericArray {
  const info = INFO[dt];
  if (!info.array) throw new Error(`viewOf: ${dt} has no fixed-size elements`);
  const abs = buf.byteOffset + byteOffset;
  if (abs % info.size === 0) return new info.array(buf.buffer, abs, length);
  const copy = new Uint8Array(length * info.size);
  copy.set(buf.subarray(byteOffset, byteOffset + length * info.size));
  return new info.array(copy.buffer, 0, length);
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// IEEE 754 half precision, for FP16 carried as JSON numbers (binary FP16 needs no conversion).
// Rounded straight from the float64 value: going through float32 first would round twice
// (e.g. 1 + 2^-11 + 2^-40 would become 1 instead of 1 + 2^-10).

/** Round to the nearest integer, ties to even (x is small and exact here). */
function roundEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

export function floatToHalf(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a >= 65520) return sign | 0x7c00; // 65504 + half an ulp and above (and Infinity) → Inf
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24); // subnormal or ±0; may round up to 0x0400
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const m = roundEven((a / 2 ** e) * 1024); // 1024..2048; 2048 carries into the exponent
  return sign | (((e + 15) << 10) + (m - 1024));
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
