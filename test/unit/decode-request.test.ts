import { describe, expect, it } from 'vitest';
import { AgentError } from '../../src/errors.js';
import type { Datatype } from '../../src/execution/datatypes.js';
import {
  decodeBinary,
  decodeInferRequest,
  decodeJsonData,
  parseHeaderLength,
} from '../../src/protocol/decode-request.js';
import type { InferRequest } from '../../src/protocol/tensor.js';

const enc = new TextEncoder();

/** Decode a plain JSON request (no Inference-Header-Content-Length). */
function json(req: unknown): InferRequest {
  return decodeInferRequest(enc.encode(JSON.stringify(req)), undefined);
}

/** A binary-extension body: the JSON header, then the chunks; returns body and header length. */
function framed(header: unknown, ...chunks: Uint8Array[]): { body: Uint8Array; headerLength: number } {
  const head = enc.encode(JSON.stringify(header));
  const total = head.length + chunks.reduce((n, c) => n + c.length, 0);
  const body = new Uint8Array(total);
  body.set(head, 0);
  let off = head.length;
  for (const c of chunks) {
    body.set(c, off);
    off += c.length;
  }
  return { body, headerLength: head.length };
}

function binary(header: unknown, ...chunks: Uint8Array[]): InferRequest {
  const { body, headerLength } = framed(header, ...chunks);
  return decodeInferRequest(body, headerLength);
}

/** The bytes of a typed array (little-endian host). */
function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** BYTES elements as Triton frames them: 4-byte little-endian length, then the UTF-8 bytes. */
function bytesElements(...items: string[]): Uint8Array {
  const parts = items.map((s) => enc.encode(s));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const dv = new DataView(out.buffer);
  let off = 0;
  for (const p of parts) {
    dv.setUint32(off, p.length, true);
    out.set(p, off + 4);
    off += 4 + p.length;
  }
  return out;
}

/** The message of the INVALID_ARGUMENT AgentError that `fn` throws. */
function invalidMessage(fn: () => unknown): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AgentError);
  const e = caught as AgentError;
  expect(e.code).toBe('INVALID_ARGUMENT');
  expect(e.status).toBe(400);
  return e.message;
}

function one(datatype: string, shape: unknown[], data: unknown, extra: Record<string, unknown> = {}): unknown {
  return { inputs: [{ name: 'x', datatype, shape, data, ...extra }] };
}

function dataOf(datatype: Datatype | string, shape: number[], data: unknown): unknown {
  return json(one(datatype, shape, data)).inputs[0]!.data;
}

describe('decodeInferRequest: JSON data for every datatype', () => {
  it('BOOL from true/false and 0/1', () => {
    const d = dataOf('BOOL', [4], [true, false, 1, 0]);
    expect(d).toBeInstanceOf(Uint8Array);
    expect(Array.from(d as Uint8Array)).toEqual([1, 0, 1, 0]);
  });

  it('BOOL refuses other values, naming the input and element', () => {
    expect(invalidMessage(() => dataOf('BOOL', [3], [true, false, 2]))).toBe(
      "input 'x' element 2 is 2; BOOL needs true or false",
    );
    expect(invalidMessage(() => dataOf('BOOL', [1], ['true']))).toContain("element 0 is \"true\"; BOOL needs true or false");
  });

  it.each([
    ['INT8', Int8Array, [-128, 0, 127], 128, -129],
    ['INT16', Int16Array, [-32768, 1, 32767], 32768, -32769],
    ['INT32', Int32Array, [-2147483648, 7, 2147483647], 2147483648, -2147483649],
    ['UINT8', Uint8Array, [0, 1, 255], 256, -1],
    ['UINT16', Uint16Array, [0, 2, 65535], 65536, -1],
    ['UINT32', Uint32Array, [0, 3, 4294967295], 4294967296, -1],
  ] as const)('%s keeps its full range and refuses values outside it', (dt, ctor, values, above, below) => {
    const d = dataOf(dt, [3], values);
    expect(d).toBeInstanceOf(ctor);
    expect(Array.from(d as Int32Array)).toEqual(values);
    expect(invalidMessage(() => dataOf(dt, [3], [values[0], above, values[2]]))).toMatch(
      new RegExp(`^input 'x' element 1 is ${above}; ${dt} needs an integer in \\[-?\\d+, \\d+\\]$`),
    );
    expect(invalidMessage(() => dataOf(dt, [1], [below]))).toContain(`element 0 is ${below}; ${dt} needs an integer in`);
    expect(invalidMessage(() => dataOf(dt, [2], [1, 1.5]))).toContain('element 1 is 1.5');
    expect(invalidMessage(() => dataOf(dt, [1], ['1']))).toContain('element 0 is "1"');
  });

  it('INT64 from numbers and decimal strings, at both ends of its range', () => {
    const d = dataOf('INT64', [4], [-3, '9007199254740993', '-9223372036854775808', '9223372036854775807']);
    expect(d).toBeInstanceOf(BigInt64Array);
    expect(Array.from(d as BigInt64Array)).toEqual([-3n, 9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n]);
  });

  it('INT64 refuses out-of-range, fractional and non-decimal values', () => {
    expect(invalidMessage(() => dataOf('INT64', [1], ['9223372036854775808']))).toBe(
      "input 'x' element 0 is \"9223372036854775808\"; INT64 needs an integer in range (or a decimal string)",
    );
    expect(invalidMessage(() => dataOf('INT64', [1], ['-9223372036854775809']))).toContain('element 0');
    expect(invalidMessage(() => dataOf('INT64', [2], [1, 2.5]))).toContain('element 1 is 2.5; INT64');
    expect(invalidMessage(() => dataOf('INT64', [1], ['0x10']))).toContain('element 0 is "0x10"');
    expect(invalidMessage(() => dataOf('INT64', [1], [null]))).toContain('element 0 is null');
  });

  it('UINT64 from decimal strings beyond 2^53, up to 2^64 - 1', () => {
    const d = dataOf('UINT64', [3], [5, '9007199254740993', '18446744073709551615']);
    expect(d).toBeInstanceOf(BigUint64Array);
    expect(Array.from(d as BigUint64Array)).toEqual([5n, 9007199254740993n, 2n ** 64n - 1n]);
    expect(invalidMessage(() => dataOf('UINT64', [1], ['18446744073709551616']))).toContain(
      'element 0 is "18446744073709551616"; UINT64 needs an integer in range',
    );
    expect(invalidMessage(() => dataOf('UINT64', [2], [0, -1]))).toContain('element 1 is -1; UINT64');
  });

  it('FP16 from JSON numbers, stored as half bits', () => {
    const d = dataOf('FP16', [4], [1, -2.5, 65504, 0]);
    expect(d).toBeInstanceOf(Uint16Array);
    expect(Array.from(d as Uint16Array)).toEqual([0x3c00, 0xc100, 0x7bff, 0]);
    expect(invalidMessage(() => dataOf('FP16', [1], ['1']))).toBe("input 'x' element 0 is \"1\"; FP16 needs a number");
  });

  it('FP32 rounds to float32, FP64 keeps doubles', () => {
    const f = dataOf('FP32', [3], [0.1, -1, 3e38]);
    expect(f).toBeInstanceOf(Float32Array);
    expect(Array.from(f as Float32Array)).toEqual([Math.fround(0.1), -1, Math.fround(3e38)]);
    const d = dataOf('FP64', [2], [0.1, -1e300]);
    expect(d).toBeInstanceOf(Float64Array);
    expect(Array.from(d as Float64Array)).toEqual([0.1, -1e300]);
    expect(invalidMessage(() => dataOf('FP32', [2], [1, true]))).toBe("input 'x' element 1 is true; FP32 needs a number");
    expect(invalidMessage(() => dataOf('FP64', [1], [null]))).toContain('element 0 is null; FP64 needs a number');
  });

  it('BYTES from strings (UTF-8 kept as text)', () => {
    expect(dataOf('BYTES', [3], ['a', 'héllo ✓', ''])).toEqual(['a', 'héllo ✓', '']);
    expect(invalidMessage(() => dataOf('BYTES', [2], ['a', 5]))).toBe("input 'x' element 1 is 5; BYTES needs a string");
  });

  it('accepts nested (row-major) data as well as flat', () => {
    const flat = dataOf('INT32', [2, 3], [1, 2, 3, 4, 5, 6]);
    const nested = dataOf('INT32', [2, 3], [[1, 2, 3], [4, 5, 6]]);
    expect(Array.from(nested as Int32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(nested as Int32Array)).toEqual(Array.from(flat as Int32Array));
    const deep = dataOf('BYTES', [2, 2, 1], [[['a'], ['b']], [['c'], ['d']]]);
    expect(deep).toEqual(['a', 'b', 'c', 'd']);
  });

  it('accepts empty tensors', () => {
    const d = dataOf('FP32', [0, 3], []);
    expect(d).toBeInstanceOf(Float32Array);
    expect((d as Float32Array).length).toBe(0);
  });

  it('refuses an element count that does not match the shape', () => {
    expect(invalidMessage(() => dataOf('FP32', [2, 3], [1, 2, 3, 4, 5]))).toBe(
      "input 'x' has 5 elements in 'data' but its shape needs 6",
    );
    expect(invalidMessage(() => dataOf('FP32', [2, 2], [[1, 2], [3, 4], [5, 6]]))).toContain(
      "nested 'data' that does not match its shape [2,2]: 3 arrays at depth 0",
    );
  });

  it('refuses ragged nested data even when the element count is right', () => {
    expect(invalidMessage(() => dataOf('FP32', [2, 2], [[1, 2, 3], [4]]))).toContain("nested 'data' that does not match its shape [2,2] at depth 1: expected 2 values");
    expect(invalidMessage(() => dataOf('FP32', [2, 2], [[1, 2], 3]))).toContain('mixes arrays and values');
    // Partial nesting along the leading dimensions is fine.
    expect(Array.from(dataOf('FP32', [2, 2, 2], [[1, 2, 3, 4], [5, 6, 7, 8]]) as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('names the element index in flattened (row-major) order for nested data', () => {
    expect(invalidMessage(() => dataOf('INT8', [2, 2], [[1, 2], [3, 'x']]))).toContain("input 'x' element 3 is \"x\"");
  });

  it('decodeJsonData works on its own too', () => {
    expect(Array.from(decodeJsonData('UINT16', 'u', [[1], [2]], [2, 1]) as Uint16Array)).toEqual([1, 2]);
    expect(invalidMessage(() => decodeJsonData('UINT16', 'u', [1, 2], [3]))).toContain("input 'u' has 2 elements");
    expect(invalidMessage(() => decodeJsonData('UINT16', 'u', 5, [1]))).toContain("'data' must be an array");
  });
});

describe('decodeInferRequest: request fields', () => {
  it('keeps id and parameters, and defaults the rest', () => {
    const r = json({
      id: 'req-1',
      parameters: { priority: 2, tag: 'a', flag: false },
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }],
    });
    expect(r.id).toBe('req-1');
    expect(r.parameters).toEqual({ priority: 2, tag: 'a', flag: false });
    expect(r.outputs).toBeUndefined();
    expect(r.binaryOutputDefault).toBe(false);
    expect(r.inputs).toHaveLength(1);
    expect(r.inputs[0]).toMatchObject({ name: 'x', datatype: 'FP32', shape: [1] });
  });

  it('without id or parameters', () => {
    const r = json(one('FP32', [1], [1]));
    expect(r.id).toBeUndefined();
    expect(r.parameters).toEqual({});
  });

  it('reads requested outputs with binary_data, and binary_data_output as the default', () => {
    const r = json({
      parameters: { binary_data_output: true },
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }],
      outputs: [
        { name: 'a', parameters: { binary_data: false } },
        { name: 'b', parameters: { binary_data: true } },
        { name: 'c' },
      ],
    });
    expect(r.binaryOutputDefault).toBe(true);
    expect(r.outputs).toEqual([
      { name: 'a', binary: false },
      { name: 'b', binary: true },
      { name: 'c', binary: undefined },
    ]);
  });

  it('binary_data_output must be exactly true to switch the default', () => {
    expect(json({ ...(one('FP32', [1], [1]) as object), parameters: { binary_data_output: false } }).binaryOutputDefault).toBe(false);
  });

  it('refuses a malformed id, parameters or outputs', () => {
    expect(invalidMessage(() => json({ id: 7, ...(one('FP32', [1], [1]) as object) }))).toBe("'id' must be a string");
    expect(invalidMessage(() => json({ parameters: [1], ...(one('FP32', [1], [1]) as object) }))).toBe(
      "request 'parameters' must be an object",
    );
    expect(invalidMessage(() => json({ parameters: { a: { b: 1 } }, ...(one('FP32', [1], [1]) as object) }))).toBe(
      "request parameter 'a' must be a string, number or boolean",
    );
    expect(invalidMessage(() => json({ ...(one('FP32', [1], [1]) as object), outputs: { name: 'y' } }))).toContain(
      "'outputs' must be an array",
    );
    expect(invalidMessage(() => json({ ...(one('FP32', [1], [1]) as object), outputs: [{ nom: 'y' }] }))).toBe(
      "outputs[0] must be an object with a string 'name'",
    );
    expect(invalidMessage(() => json({ ...(one('FP32', [1], [1]) as object), outputs: [{ name: 'y', parameters: { binary_data: 'yes' } }] }))).toBe(
      "output 'y' parameter 'binary_data' must be a boolean",
    );
    expect(json({ ...(one('FP32', [1], [1]) as object), outputs: [{ name: 'y', parameters: { classification: 3 } }] }).outputs).toEqual([
      { name: 'y', binary: undefined, classification: 3 },
    ]);
    expect(invalidMessage(() => json({ ...(one('FP32', [1], [1]) as object), outputs: [{ name: 'y', parameters: { classification: 0 } }] }))).toContain(
      "output 'y' parameter 'classification' must be an integer ≥ 1",
    );
    expect(invalidMessage(() => json({ ...(one('FP32', [1], [1]) as object), outputs: [{ name: 'y', parameters: 3 }] }))).toBe(
      "output 'y' 'parameters' must be an object",
    );
  });

  it('refuses duplicate inputs and duplicate requested outputs', () => {
    const x = { name: 'x', datatype: 'FP32', shape: [1], data: [1] };
    expect(invalidMessage(() => json({ inputs: [x, { ...x, data: [2] }] }))).toBe("input 'x' is given more than once");
    expect(invalidMessage(() => json({ inputs: [x], outputs: [{ name: 'y' }, { name: 'z' }, { name: 'y' }] }))).toBe(
      "output 'y' is requested more than once",
    );
  });

  it('refuses a missing or empty inputs array', () => {
    expect(invalidMessage(() => json({}))).toBe("'inputs' must be a non-empty array of tensors");
    expect(invalidMessage(() => json({ inputs: [] }))).toBe("'inputs' must be a non-empty array of tensors");
    expect(invalidMessage(() => json({ inputs: { x: 1 } }))).toBe("'inputs' must be a non-empty array of tensors");
  });

  it('refuses inputs with missing or malformed fields, naming them', () => {
    expect(invalidMessage(() => json({ inputs: [5] }))).toBe('inputs[0] must be an object');
    expect(invalidMessage(() => json({ inputs: [{ datatype: 'FP32', shape: [1], data: [1] }] }))).toBe(
      "inputs[0] needs a string 'name'",
    );
    expect(invalidMessage(() => json({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }, { name: '', datatype: 'FP32', shape: [1], data: [1] }] }))).toBe(
      "inputs[1] needs a string 'name'",
    );
    expect(invalidMessage(() => json({ inputs: [{ name: 'x', shape: [1], data: [1] }] }))).toBe("input 'x' needs a 'datatype'");
    expect(invalidMessage(() => json(one('FLOAT32', [1], [1])))).toBe("input 'x' has unknown datatype 'FLOAT32'");
    expect(invalidMessage(() => json({ inputs: [{ name: 'x', datatype: 'FP32', data: [1] }] }))).toBe("input 'x' needs a 'shape' array");
    expect(invalidMessage(() => json(one('FP32', [-1], [1])))).toBe(
      "input 'x' has an invalid shape [-1]: dimensions must be non-negative integers",
    );
    expect(invalidMessage(() => json(one('FP32', [1.5], [1])))).toContain('has an invalid shape [1.5]');
    expect(invalidMessage(() => json(one('FP32', ['2'], [1, 2])))).toContain('has an invalid shape ["2"]');
    expect(invalidMessage(() => json({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }] }))).toBe(
      "input 'x' has no 'data' (nor binary_data_size)",
    );
    expect(invalidMessage(() => json(one('FP32', [1], [1], { parameters: 'p' })))).toBe("input 'x' 'parameters' must be an object");
  });

  it('refuses BF16 with a hint', () => {
    expect(invalidMessage(() => json(one('BF16', [1], [1])))).toBe(
      "input 'x': BF16 is not supported by onnxruntime-node; send FP16 or FP32",
    );
  });

  it('refuses shared memory inputs where no registry is given, and checks their parameters', () => {
    expect(
      invalidMessage(() => json(one('FP32', [1], undefined, { parameters: { shared_memory_region: 'r0', shared_memory_byte_size: 4 } }))),
    ).toBe("input 'x': shared memory is not available on this endpoint; send the data in the request");
    expect(invalidMessage(() => json(one('FP32', [1], undefined, { parameters: { shared_memory_region: 'r0' } })))).toBe(
      "input 'x' with shared_memory_region needs shared_memory_byte_size (a non-negative integer)",
    );
    expect(invalidMessage(() => json(one('FP32', [1], undefined, { parameters: { shared_memory_byte_size: 4 } })))).toBe(
      "input 'x' has shared_memory_byte_size or shared_memory_offset but no shared_memory_region",
    );
  });

  it('refuses bodies that are not a JSON object', () => {
    expect(invalidMessage(() => decodeInferRequest(new Uint8Array(0), undefined))).toBe(
      'the request body is empty: expected a JSON inference request',
    );
    expect(invalidMessage(() => decodeInferRequest(enc.encode('{"inputs": ['), undefined))).toContain(
      'the request body is not valid JSON: ',
    );
    expect(invalidMessage(() => decodeInferRequest(enc.encode('[1,2]'), undefined))).toBe(
      'the inference request must be a JSON object',
    );
    expect(invalidMessage(() => decodeInferRequest(enc.encode('null'), undefined))).toBe(
      'the inference request must be a JSON object',
    );
  });
});

describe('decodeInferRequest: binary tensor data extension', () => {
  const FIXED: [Datatype, ArrayBufferView & ArrayLike<number | bigint>][] = [
    ['BOOL', new Uint8Array([1, 0, 1])],
    ['UINT8', new Uint8Array([0, 7, 255])],
    ['UINT16', new Uint16Array([0, 513, 65535])],
    ['UINT32', new Uint32Array([0, 70000, 4294967295])],
    ['UINT64', new BigUint64Array([0n, 9007199254740993n, 2n ** 64n - 1n])],
    ['INT8', new Int8Array([-128, 0, 127])],
    ['INT16', new Int16Array([-32768, -2, 32767])],
    ['INT32', new Int32Array([-2147483648, 12345, 2147483647])],
    ['INT64', new BigInt64Array([-(2n ** 63n), -1n, 2n ** 63n - 1n])],
    ['FP16', new Uint16Array([0x3c00, 0xc100, 0x7bff])],
    ['FP32', new Float32Array([1.5, -0.25, 3.4e38])],
    ['FP64', new Float64Array([0.1, -1e300, Number.MIN_VALUE])],
  ];

  it.each(FIXED)('%s: raw little-endian bytes decode to the same values', (dt, values) => {
    const raw = bytesOf(values);
    const r = binary({ inputs: [{ name: 'x', datatype: dt, shape: [3], parameters: { binary_data_size: raw.length } }] }, raw);
    const t = r.inputs[0]!;
    expect(t.datatype).toBe(dt);
    expect(t.shape).toEqual([3]);
    expect(t.data.constructor).toBe(values.constructor);
    expect(Array.from(t.data as ArrayLike<number | bigint>)).toEqual(Array.from(values));
  });

  it('BYTES: 4-byte little-endian length prefix per element', () => {
    const raw = bytesElements('hello', '', 'wörld ✓');
    const r = binary({ inputs: [{ name: 's', datatype: 'BYTES', shape: [3], parameters: { binary_data_size: raw.length } }] }, raw);
    expect(r.inputs[0]!.data).toEqual(['hello', '', 'wörld ✓']);
  });

  it('BYTES: a length prefix with the top bit set is read as unsigned (not negative)', () => {
    // 0x80000000 bytes declared, 1 present: a truncation error, not a negative length.
    const raw = new Uint8Array([0, 0, 0, 0x80, 65]);
    expect(
      invalidMessage(() => binary({ inputs: [{ name: 's', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 5 } }] }, raw)),
    ).toBe("input 's': BYTES element 0 declares 2147483648 bytes but only 1 remain");
  });

  it('reads several binary inputs in the order they are listed', () => {
    const a = new Float32Array([1, 2, 3, 4]);
    const b = new BigInt64Array([5n, 6n]);
    const c = bytesElements('x', 'yz');
    const r = binary(
      {
        id: 'bin',
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } },
          { name: 'b', datatype: 'INT64', shape: [2], parameters: { binary_data_size: 16 } },
          { name: 'c', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: c.length } },
        ],
      },
      bytesOf(a), bytesOf(b), c,
    );
    expect(r.id).toBe('bin');
    expect(r.inputs.map((t) => t.name)).toEqual(['a', 'b', 'c']);
    expect(Array.from(r.inputs[0]!.data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from(r.inputs[1]!.data as BigInt64Array)).toEqual([5n, 6n]);
    expect(r.inputs[2]!.data).toEqual(['x', 'yz']);
  });

  it('mixes JSON and binary inputs; the binary ones consume the body in order', () => {
    const a = new Int32Array([7, 8]);
    const c = new Uint8Array([9]);
    const r = binary(
      {
        inputs: [
          { name: 'a', datatype: 'INT32', shape: [2], parameters: { binary_data_size: 8 } },
          { name: 'b', datatype: 'FP64', shape: [1], data: [2.5] },
          { name: 'c', datatype: 'UINT8', shape: [1], parameters: { binary_data_size: 1 } },
        ],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      },
      bytesOf(a), c,
    );
    expect(Array.from(r.inputs[0]!.data as Int32Array)).toEqual([7, 8]);
    expect(Array.from(r.inputs[1]!.data as Float64Array)).toEqual([2.5]);
    expect(Array.from(r.inputs[2]!.data as Uint8Array)).toEqual([9]);
    expect(r.outputs).toEqual([{ name: 'y', binary: true }]);
  });

  it('accepts a header with only JSON inputs and nothing after it', () => {
    const r = binary(one('INT8', [2], [1, -1]));
    expect(Array.from(r.inputs[0]!.data as Int8Array)).toEqual([1, -1]);
  });

  it('accepts binary_data_size 0 for an empty tensor', () => {
    const r = binary({ inputs: [{ name: 'x', datatype: 'FP32', shape: [0], parameters: { binary_data_size: 0 } }] });
    expect((r.inputs[0]!.data as Float32Array).length).toBe(0);
  });

  describe('framing errors', () => {
    const fp32 = (size: unknown, extra: Record<string, unknown> = {}) => ({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: size }, ...extra }],
    });

    it('header length larger than the body', () => {
      const { body } = framed(fp32(8), new Uint8Array(8));
      expect(invalidMessage(() => decodeInferRequest(body, body.length + 1))).toBe(
        `Inference-Header-Content-Length is ${body.length + 1} but the body has only ${body.length} bytes`,
      );
    });

    it('header length that cuts the JSON short', () => {
      const { body, headerLength } = framed(fp32(8), new Uint8Array(8));
      expect(invalidMessage(() => decodeInferRequest(body, headerLength - 1))).toContain('the request body is not valid JSON');
    });

    it('header length 0 leaves no JSON', () => {
      const { body } = framed(fp32(8), new Uint8Array(8));
      expect(invalidMessage(() => decodeInferRequest(body, 0))).toContain('the request body is empty');
    });

    it('binary_data_size beyond the end of the body', () => {
      expect(invalidMessage(() => binary(fp32(16), new Uint8Array(8)))).toBe(
        "input 'x' declares binary_data_size 16 but only 8 bytes remain in the body",
      );
    });

    it('second input overruns what the first left', () => {
      const h = {
        inputs: [
          { name: 'a', datatype: 'UINT8', shape: [4], parameters: { binary_data_size: 4 } },
          { name: 'b', datatype: 'UINT8', shape: [4], parameters: { binary_data_size: 4 } },
        ],
      };
      expect(invalidMessage(() => binary(h, new Uint8Array(6)))).toBe(
        "input 'b' declares binary_data_size 4 but only 2 bytes remain in the body",
      );
    });

    it('trailing bytes after the declared binary data', () => {
      expect(invalidMessage(() => binary(fp32(8), new Uint8Array(11)))).toContain(
        'the body has 3 bytes after the JSON header and the binary inputs it declares',
      );
    });

    it('binary bytes that do not match the shape', () => {
      expect(invalidMessage(() => binary(fp32(6), new Uint8Array(6)))).toBe(
        "input 'x' has 6 bytes of binary data but shape and FP32 need 8 (2 × 4)",
      );
    });

    it('BYTES element truncated (length prefix or payload)', () => {
      const good = bytesElements('abc');
      const cutPayload = new Uint8Array([...good, 5, 0, 0, 0, 65, 66]);
      const h = (n: number) => ({ inputs: [{ name: 's', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: n } }] });
      expect(invalidMessage(() => binary(h(cutPayload.length), cutPayload))).toBe(
        "input 's': BYTES element 1 declares 5 bytes but only 2 remain",
      );
      const cutLength = new Uint8Array([...good, 5, 0]);
      expect(invalidMessage(() => binary(h(cutLength.length), cutLength))).toBe(
        `input 's': truncated BYTES element length at byte ${good.length}`,
      );
    });

    it('BYTES element count that does not match the shape', () => {
      const raw = bytesElements('a', 'b', 'c');
      expect(
        invalidMessage(() => binary({ inputs: [{ name: 's', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: raw.length } }] }, raw)),
      ).toBe("input 's' has 3 BYTES elements but its shape needs 2");
    });

    it('binary_data_size without an Inference-Header-Content-Length header', () => {
      expect(invalidMessage(() => json(fp32(8)))).toBe(
        "input 'x' has binary_data_size but the request has no Inference-Header-Content-Length header",
      );
    });

    it('both data and binary_data_size', () => {
      expect(invalidMessage(() => binary(fp32(8, { data: [1, 2] }), new Uint8Array(8)))).toBe(
        "input 'x' has both 'data' and binary_data_size; send one",
      );
    });

    it.each([[-1], [1.5], ['8'], [true]])('binary_data_size %j is not a non-negative integer', (size) => {
      expect(invalidMessage(() => binary(fp32(size), new Uint8Array(8)))).toBe(
        "input 'x' binary_data_size must be a non-negative integer",
      );
    });
  });

  it('decodeBinary alone: views aligned data, copies unaligned data', () => {
    const backing = new Uint8Array(12);
    new DataView(backing.buffer).setFloat32(4, 2.5, true);
    const aligned = decodeBinary('FP32', 'x', backing.subarray(4, 8), 1) as Float32Array;
    expect(aligned[0]).toBe(2.5);
    expect(aligned.buffer).toBe(backing.buffer);
    new DataView(backing.buffer).setFloat32(5, -4, true);
    const unaligned = decodeBinary('FP32', 'x', backing.subarray(5, 9), 1) as Float32Array;
    expect(unaligned[0]).toBe(-4);
  });
});

describe('parseHeaderLength', () => {
  it('is undefined when the header is absent', () => {
    expect(parseHeaderLength(undefined)).toBeUndefined();
  });

  it.each([
    ['0', 0],
    ['123', 123],
    [' 42 ', 42],
    ['007', 7],
  ])('parses %j as %d', (v, n) => {
    expect(parseHeaderLength(v)).toBe(n);
  });

  it('uses the first value of a repeated header', () => {
    expect(parseHeaderLength(['17', '99'])).toBe(17);
  });

  it.each([[''], ['-1'], ['1.5'], ['abc'], ['12abc'], ['1e3'], ['+5']])('refuses %j', (v) => {
    expect(invalidMessage(() => parseHeaderLength(v))).toBe(
      `Inference-Header-Content-Length must be a non-negative integer, got '${v}'`,
    );
  });

  it('refuses an empty list of values', () => {
    expect(invalidMessage(() => parseHeaderLength([]))).toContain('must be a non-negative integer');
  });
});
