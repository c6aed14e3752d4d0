import { describe, expect, it } from 'vitest';
import type { Datatype, TensorData } from '../../src/execution/datatypes.js';
import { binaryOf, encodeInferResponse, jsonDataOf, type ResponseOutput } from '../../src/protocol/encode-response.js';
import type { HostTensor } from '../../src/protocol/tensor.js';

const HEAD = { model_name: 'm', model_version: '3' };

function tensor(name: string, datatype: Datatype, shape: number[], data: TensorData): HostTensor {
  return { name, datatype, shape, data };
}

function out(t: HostTensor, binary = false): ResponseOutput {
  return { tensor: t, binary };
}

/** The parsed JSON data array of a single JSON output. */
function jsonData(t: HostTensor): unknown[] {
  const r = encodeInferResponse(HEAD, [out(t)]);
  expect(r.headerLength).toBeUndefined();
  expect(r.contentType).toBe('application/json');
  expect(typeof r.body).toBe('string');
  const parsed = JSON.parse(r.body as string) as { outputs: { data: unknown[] }[] };
  return parsed.outputs[0]!.data;
}

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('encodeInferResponse: JSON outputs', () => {
  it('writes the header fields and each output with name, datatype, shape and data', () => {
    const r = encodeInferResponse(
      { model_name: 'resnet "50"', model_version: '1', id: 'abc-1', parameters: { sequence_end: true } },
      [out(tensor('y', 'FP32', [2, 2], new Float32Array([1, 2, 3.5, -4])))],
    );
    expect(r.headerLength).toBeUndefined();
    expect(r.contentType).toBe('application/json');
    expect(JSON.parse(r.body as string)).toEqual({
      model_name: 'resnet "50"',
      model_version: '1',
      id: 'abc-1',
      parameters: { sequence_end: true },
      outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3.5, -4] }],
    });
  });

  it('omits id and parameters when not given', () => {
    const parsed = JSON.parse(encodeInferResponse(HEAD, [out(tensor('y', 'INT8', [1], new Int8Array([1])))]).body as string);
    expect(Object.keys(parsed)).toEqual(['model_name', 'model_version', 'outputs']);
  });

  it('echoes an id that needs escaping', () => {
    const id = 'quote " backslash \\ newline \n ✓';
    const parsed = JSON.parse(encodeInferResponse({ ...HEAD, id }, [out(tensor('y', 'BOOL', [1], new Uint8Array([1])))]).body as string);
    expect(parsed.id).toBe(id);
  });

  it('encodes an output list that is empty', () => {
    expect(JSON.parse(encodeInferResponse(HEAD, []).body as string)).toEqual({ ...HEAD, outputs: [] });
  });

  it.each([
    ['UINT8', new Uint8Array([0, 255]), [0, 255]],
    ['UINT16', new Uint16Array([1, 65535]), [1, 65535]],
    ['UINT32', new Uint32Array([2, 4294967295]), [2, 4294967295]],
    ['INT8', new Int8Array([-128, 127]), [-128, 127]],
    ['INT16', new Int16Array([-32768, 32767]), [-32768, 32767]],
    ['INT32', new Int32Array([-2147483648, 2147483647]), [-2147483648, 2147483647]],
    ['FP64', new Float64Array([0.1, -1e300]), [0.1, -1e300]],
    ['FP32', new Float32Array([0.5, -2, 1e-7]), [0.5, -2, Math.fround(1e-7)]],
  ] as const)('%s data as JSON numbers', (dt, data, expected) => {
    expect(jsonData(tensor('y', dt, [2], data))).toEqual(expected);
  });

  it('FP32 prints the float32 value exactly (parses back to the same float32)', () => {
    const data = new Float32Array([0.1, 1 / 3, 3.4e38, -1.17549435e-38]);
    const back = jsonData(tensor('y', 'FP32', [4], data)) as number[];
    expect(back.map(Math.fround)).toEqual(Array.from(data));
  });

  it('INT64 and UINT64 are printed exactly, beyond 2^53', () => {
    const i64 = new BigInt64Array([9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n]);
    expect(jsonDataOf('INT64', i64)).toBe('[9007199254740993,-9223372036854775808,9223372036854775807]');
    const u64 = new BigUint64Array([2n ** 64n - 1n, 0n]);
    expect(jsonDataOf('UINT64', u64)).toBe('[18446744073709551615,0]');
    const r = encodeInferResponse(HEAD, [out(tensor('y', 'INT64', [3], i64))]);
    expect(r.body as string).toContain('"data":[9007199254740993,-9223372036854775808,9223372036854775807]');
    expect(() => JSON.parse(r.body as string)).not.toThrow();
  });

  it('BOOL as true/false', () => {
    expect(jsonDataOf('BOOL', new Uint8Array([1, 0, 1]))).toBe('[true,false,true]');
    expect(jsonData(tensor('y', 'BOOL', [3], new Uint8Array([0, 1, 2])))).toEqual([false, true, true]);
  });

  it('FP16 decoded to numbers', () => {
    expect(jsonData(tensor('y', 'FP16', [4], new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x0001])))).toEqual([
      1, -2.5, 65504, 2 ** -24,
    ]);
  });

  it('non-finite floats become null', () => {
    expect(jsonDataOf('FP32', new Float32Array([NaN, Infinity, -Infinity, 1.5]))).toBe('[null,null,null,1.5]');
    expect(jsonDataOf('FP64', new Float64Array([1, NaN, -Infinity]))).toBe('[1,null,null]');
    expect(jsonDataOf('FP16', new Uint16Array([0x7e00, 0x7c00, 0xfc00, 0x3800]))).toBe('[null,null,null,0.5]');
    expect(jsonData(tensor('y', 'FP64', [2], new Float64Array([NaN, 2])))).toEqual([null, 2]);
  });

  it('floats with exponents stay valid JSON', () => {
    const back = jsonData(tensor('y', 'FP64', [3], new Float64Array([1e21, -1e-7, 5e-324])));
    expect(back).toEqual([1e21, -1e-7, 5e-324]);
  });

  it('BYTES as JSON strings', () => {
    expect(jsonData(tensor('y', 'BYTES', [3], ['a', 'quo"te', 'ünï ✓']))).toEqual(['a', 'quo"te', 'ünï ✓']);
  });

  it('empty tensors', () => {
    expect(jsonData(tensor('y', 'FP32', [0], new Float32Array(0)))).toEqual([]);
    expect(jsonData(tensor('y', 'BYTES', [0], []))).toEqual([]);
  });
});

describe('encodeInferResponse: binary outputs', () => {
  /** Split a binary response into its parsed JSON header and the bytes after it. */
  function split(r: ReturnType<typeof encodeInferResponse>): { header: any; rest: Buffer } {
    expect(r.contentType).toBe('application/octet-stream');
    expect(Buffer.isBuffer(r.body)).toBe(true);
    const body = r.body as Buffer;
    expect(r.headerLength).toBeDefined();
    const header = JSON.parse(body.subarray(0, r.headerLength!).toString('utf8'));
    return { header, rest: body.subarray(r.headerLength!) };
  }

  it('writes the header length and the typed array bytes after the JSON header', () => {
    const data = new Float32Array([1, -2, 3.25]);
    const r = encodeInferResponse({ ...HEAD, id: 'ü' }, [out(tensor('y', 'FP32', [3], data), true)]);
    const { header, rest } = split(r);
    expect(header).toEqual({
      model_name: 'm',
      model_version: '3',
      id: 'ü',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [3], parameters: { binary_data_size: 12 } }],
    });
    // The header length is in bytes (UTF-8), not characters.
    expect(r.headerLength).toBe(Buffer.byteLength(JSON.stringify(header)));
    expect(rest.equals(bytesOf(data))).toBe(true);
  });

  it.each([
    ['BOOL', new Uint8Array([1, 0])],
    ['UINT8', new Uint8Array([0, 255])],
    ['UINT16', new Uint16Array([1, 65535])],
    ['UINT32', new Uint32Array([2, 4294967295])],
    ['UINT64', new BigUint64Array([2n ** 64n - 1n, 1n])],
    ['INT8', new Int8Array([-128, 127])],
    ['INT16', new Int16Array([-32768, 32767])],
    ['INT32', new Int32Array([-1, 2147483647])],
    ['INT64', new BigInt64Array([-(2n ** 63n), 9007199254740993n])],
    ['FP16', new Uint16Array([0x3c00, 0x7e00])],
    ['FP32', new Float32Array([NaN, 0.1])],
    ['FP64', new Float64Array([Infinity, -0.1])],
  ] as const)('%s: raw bytes, binary_data_size = byteLength', (dt, data) => {
    const { header, rest } = split(encodeInferResponse(HEAD, [out(tensor('y', dt, [2], data), true)]));
    expect(header.outputs[0].parameters.binary_data_size).toBe(data.byteLength);
    expect(header.outputs[0].data).toBeUndefined();
    expect(rest.equals(bytesOf(data))).toBe(true);
  });

  it('writes only the bytes of a typed array that is a view into a larger buffer', () => {
    const backing = new Int32Array([9, 9, 5, 6, 9]);
    const view = backing.subarray(2, 4);
    const { rest } = split(encodeInferResponse(HEAD, [out(tensor('y', 'INT32', [2], view), true)]));
    expect(rest.length).toBe(8);
    expect(rest.readInt32LE(0)).toBe(5);
    expect(rest.readInt32LE(4)).toBe(6);
  });

  it('BYTES: 4-byte little-endian length prefix, then the UTF-8 bytes', () => {
    const { header, rest } = split(encodeInferResponse(HEAD, [out(tensor('s', 'BYTES', [3], ['ab', '', 'é✓']), true)]));
    const expected = Buffer.concat([
      Buffer.from([2, 0, 0, 0]), Buffer.from('ab'),
      Buffer.from([0, 0, 0, 0]),
      Buffer.from([5, 0, 0, 0]), Buffer.from('é✓', 'utf8'),
    ]);
    expect(rest.equals(expected)).toBe(true);
    expect(header.outputs[0].parameters.binary_data_size).toBe(expected.length);
  });

  it('binaryOf on its own', () => {
    expect(binaryOf('BYTES', ['xyz']).equals(Buffer.from([3, 0, 0, 0, 0x78, 0x79, 0x7a]))).toBe(true);
    expect(binaryOf('BYTES', []).length).toBe(0);
    expect(binaryOf('INT16', new Int16Array([-2])).equals(Buffer.from([0xfe, 0xff]))).toBe(true);
  });

  it('mixes binary and JSON outputs: binary data follows the header in output order', () => {
    const a = new Float32Array([1, 2]);
    const c = new BigInt64Array([7n]);
    const { header, rest } = split(
      encodeInferResponse(HEAD, [
        out(tensor('a', 'FP32', [2], a), true),
        out(tensor('b', 'INT32', [2], new Int32Array([3, 4])), false),
        out(tensor('c', 'INT64', [1], c), true),
        out(tensor('d', 'BYTES', [1], ['x']), false),
      ]),
    );
    expect(header.outputs).toEqual([
      { name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
      { name: 'b', datatype: 'INT32', shape: [2], data: [3, 4] },
      { name: 'c', datatype: 'INT64', shape: [1], parameters: { binary_data_size: 8 } },
      { name: 'd', datatype: 'BYTES', shape: [1], data: ['x'] },
    ]);
    expect(rest.equals(Buffer.concat([bytesOf(a), bytesOf(c)]))).toBe(true);
  });

  it('a binary output of zero bytes still makes a binary response', () => {
    const r = encodeInferResponse(HEAD, [out(tensor('y', 'FP32', [0], new Float32Array(0)), true)]);
    const { header, rest } = split(r);
    expect(header.outputs[0].parameters.binary_data_size).toBe(0);
    expect(rest.length).toBe(0);
    expect((r.body as Buffer).length).toBe(r.headerLength);
  });
});
