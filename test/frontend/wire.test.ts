/**
 * The IPC wire form of the front ends (src/frontend/messages.ts): typed arrays survive as the
 * same type with the view's own bytes only, through real JSON text; client keys that start
 * with '$' cannot pass for an encoded array; the postprocess bookkeeping of outputs is dropped.
 */
import { describe, expect, it } from 'vitest';
import { fromWire, toWire, wireOutputs } from '../../src/frontend/messages.js';

const roundTrip = <T>(v: T): T => fromWire<T>(JSON.parse(JSON.stringify(toWire(v))));

describe('front-end wire form', () => {
  it('typed arrays of every tensor kind come back as the same type and values', () => {
    const big = new Float32Array([9, 9, 1.5, -2, Number.NaN, Infinity, 9]);
    const view = big.subarray(2, 6); // a view into a larger buffer: only its own bytes travel
    const body = Buffer.from('abcdef').subarray(1, 4);
    const msg = {
      t: 'infer', id: 7, model: 'm', version: undefined,
      request: {
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [1, 4], data: view },
          { name: 'b', datatype: 'INT64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 5n]) },
          { name: 'c', datatype: 'BYTES', shape: [2], data: ['x', 'yz'], raw: [new Uint8Array([120]), new Uint8Array([121, 122])] },
          { name: 'd', datatype: 'FP16', shape: [1], data: new Uint16Array([0x3c00]) },
        ],
      },
      body,
    };
    const back = roundTrip(msg);
    const [a, b, c, d] = back.request.inputs;
    expect(a!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a!.data as Float32Array)).toEqual([1.5, -2, Number.NaN, Infinity]);
    expect((a!.data as Float32Array).buffer.byteLength).toBe(16);
    expect(b!.data).toEqual(new BigInt64Array([-(2n ** 62n), 5n]));
    expect(c!.data).toEqual(['x', 'yz']);
    expect(c!.raw!.map((r) => Array.from(r))).toEqual([[120], [121, 122]]);
    expect(d!.data).toEqual(new Uint16Array([0x3c00]));
    expect(Buffer.from(back.body).toString()).toBe('bcd');
    expect(back).not.toHaveProperty('version');
    expect(back.id).toBe(7);
  });

  it("a client's keys that start with '$' stay plain values", () => {
    const params = { $64: 'AAAA', k: 'Float32Array', $$x: 1, plain: true };
    expect(roundTrip({ parameters: params })).toEqual({ parameters: params });
  });

  it('outputs keep only what the encoder reads', () => {
    const tensor = { name: 'y', datatype: 'FP32' as const, shape: [1], data: new Float32Array([3]) };
    const [o] = wireOutputs([{ tensor, binary: true, post: { huge: new Float64Array(1000) } } as never]);
    expect(Object.keys(o!).sort()).toEqual(['binary', 'tensor']);
    expect(roundTrip(o)).toEqual({ tensor: { ...tensor, data: new Float32Array([3]) }, binary: true });
  });
});
