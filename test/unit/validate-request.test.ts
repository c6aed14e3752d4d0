import { describe, expect, it } from 'vitest';
import { AgentError } from '../../src/errors.js';
import type { Datatype, TensorData } from '../../src/execution/datatypes.js';
import type { HostTensor, InferRequest, RequestedOutput } from '../../src/protocol/tensor.js';
import { decodeRawRequest, prepareRequest } from '../../src/protocol/validate-request.js';
import type { ModelSpec, TensorSpec } from '../../src/sessions/model-spec.js';

/** Only the fields validation reads; the rest of ModelSpec does not matter here. */
function spec(maxBatchSize: number, inputs: TensorSpec[], outputs: TensorSpec[] = [{ name: 'y', datatype: 'FP32', shape: [-1] }]): ModelSpec {
  return { name: 'm', version: 1, maxBatchSize, inputs, outputs } as unknown as ModelSpec;
}

function t(name: string, datatype: Datatype, shape: number[], data?: TensorData): HostTensor {
  return { name, datatype, shape, data: data ?? new Float32Array(shape.reduce((a, b) => a * b, 1)) };
}

function request(inputs: HostTensor[], outputs?: RequestedOutput[], binaryOutputDefault = false): InferRequest {
  return { id: undefined, parameters: {}, inputs, outputs, binaryOutputDefault };
}

function invalidMessage(fn: () => unknown): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AgentError);
  expect((caught as AgentError).code).toBe('INVALID_ARGUMENT');
  return (caught as AgentError).message;
}

// A batching image model: input [b,3,-1] FP32 and a mask [b,4] INT64; two outputs.
const BATCHED = spec(
  8,
  [
    { name: 'image', datatype: 'FP32', shape: [-1, 3, -1] },
    { name: 'mask', datatype: 'INT64', shape: [-1, 4] },
  ],
  [
    { name: 'logits', datatype: 'FP32', shape: [-1, 10] },
    { name: 'label', datatype: 'BYTES', shape: [-1] },
  ],
);

function batched(b: number, w = 5, mb = b): InferRequest {
  return request([t('image', 'FP32', [b, 3, w]), t('mask', 'INT64', [mb, 4], new BigInt64Array(mb * 4))]);
}

// No batching: fixed [2,2] FP32 input and a variable-length INT32 input.
const PLAIN = spec(0, [
  { name: 'a', datatype: 'FP32', shape: [2, 2] },
  { name: 'b', datatype: 'INT32', shape: [-1] },
]);

describe('prepareRequest', () => {
  it('returns the inputs in the model order with rows and outputs', () => {
    const mask = t('mask', 'INT64', [2, 4], new BigInt64Array(8));
    const image = t('image', 'FP32', [2, 3, 5]);
    const p = prepareRequest(request([mask, image]), BATCHED);
    expect(p.inputs).toEqual([image, mask]);
    expect(p.inputs[0]).toBe(image); // the same tensors, no copies
    expect(p.rows).toBe(2);
    expect(p.shapeKey).toBe('3x5|4');
    expect(p.outputs).toEqual([
      { name: 'logits', binary: false },
      { name: 'label', binary: false },
    ]);
  });

  it('rows is 1 for models without a batch dimension', () => {
    const p = prepareRequest(request([t('a', 'FP32', [2, 2]), t('b', 'INT32', [7], new Int32Array(7))]), PLAIN);
    expect(p.rows).toBe(1);
    expect(p.shapeKey).toBe('2x2|7');
  });

  it('refuses an unknown input, listing the model inputs', () => {
    const req = request([...batched(1).inputs, t('extra', 'FP32', [1])]);
    expect(invalidMessage(() => prepareRequest(req, BATCHED))).toBe("model 'm' has no input 'extra'; its inputs are image, mask");
  });

  it('refuses a missing input', () => {
    expect(invalidMessage(() => prepareRequest(request([t('image', 'FP32', [1, 3, 5])]), BATCHED))).toBe(
      "input 'mask' is missing; model 'm' needs image, mask",
    );
  });

  it('refuses a datatype mismatch', () => {
    const req = request([t('image', 'FP64', [1, 3, 5], new Float64Array(15)), batched(1).inputs[1]!]);
    expect(invalidMessage(() => prepareRequest(req, BATCHED))).toBe("input 'image' has datatype FP64 but model 'm' expects FP32");
  });

  it('refuses the wrong rank, showing the expected shape with b for the batch dim', () => {
    const req = request([t('image', 'FP32', [1, 3]), batched(1).inputs[1]!]);
    expect(invalidMessage(() => prepareRequest(req, BATCHED))).toBe(
      "input 'image' has shape [1,3] but model 'm' expects [b,3,-1] (-1 = any size)",
    );
    expect(invalidMessage(() => prepareRequest(request([t('a', 'FP32', [4]), t('b', 'INT32', [1])]), PLAIN))).toBe(
      "input 'a' has shape [4] but model 'm' expects [2,2] (-1 = any size)",
    );
  });

  it('refuses a wrong fixed dimension, accepts any size for -1', () => {
    expect(invalidMessage(() => prepareRequest(request([t('image', 'FP32', [1, 4, 5]), batched(1).inputs[1]!]), BATCHED))).toBe(
      "input 'image' has shape [1,4,5] but model 'm' expects [b,3,-1] (-1 = any size)",
    );
    expect(invalidMessage(() => prepareRequest(request([t('a', 'FP32', [2, 3]), t('b', 'INT32', [1])]), PLAIN))).toContain(
      "input 'a' has shape [2,3]",
    );
    expect(prepareRequest(batched(1, 1000), BATCHED).shapeKey).toBe('3x1000|4');
    expect(prepareRequest(request([t('a', 'FP32', [2, 2]), t('b', 'INT32', [0])]), PLAIN).shapeKey).toBe('2x2|0');
  });

  it('shows [b] for a rank-1 batched input', () => {
    const s = spec(4, [{ name: 'ids', datatype: 'INT32', shape: [-1] }]);
    expect(invalidMessage(() => prepareRequest(request([t('ids', 'INT32', [2, 2])]), s))).toBe(
      "input 'ids' has shape [2,2] but model 'm' expects [b] (-1 = any size)",
    );
    const p = prepareRequest(request([t('ids', 'INT32', [3], new Int32Array(3))]), s);
    expect(p.rows).toBe(3);
    expect(p.shapeKey).toBe('');
  });

  it('refuses batch size 0 and batch sizes above max_batch_size', () => {
    expect(invalidMessage(() => prepareRequest(batched(0), BATCHED))).toBe(
      "input 'image' has batch size 0; model 'm' takes 1 to 8 (max_batch_size)",
    );
    expect(invalidMessage(() => prepareRequest(batched(9), BATCHED))).toBe(
      "input 'image' has batch size 9; model 'm' takes 1 to 8 (max_batch_size)",
    );
    expect(prepareRequest(batched(8), BATCHED).rows).toBe(8);
    expect(prepareRequest(batched(1), BATCHED).rows).toBe(1);
  });

  it('refuses inputs that disagree on the batch size', () => {
    expect(invalidMessage(() => prepareRequest(batched(2, 5, 3), BATCHED))).toBe(
      "inputs disagree on the batch size (2 and 3 for 'mask'); every input needs the same first dimension",
    );
  });

  it('shapeKey: equal for equal non-batch dims, different otherwise', () => {
    const k = (b: number, w: number) => prepareRequest(batched(b, w), BATCHED).shapeKey;
    expect(k(1, 5)).toBe(k(7, 5));
    expect(k(1, 5)).not.toBe(k(1, 6));
    // Separators keep dimension lists apart: [3,12] vs [31,2] must not collide.
    const s = spec(4, [{ name: 'x', datatype: 'FP32', shape: [-1, -1, -1] }]);
    const key = (d1: number, d2: number) => prepareRequest(request([t('x', 'FP32', [1, d1, d2])]), s).shapeKey;
    expect(key(3, 12)).not.toBe(key(31, 2));
  });

  it('refuses a requested output the model does not have', () => {
    const req = request(batched(1).inputs as HostTensor[], [{ name: 'probs', binary: undefined }]);
    expect(invalidMessage(() => prepareRequest(req, BATCHED))).toBe("model 'm' has no output 'probs'; its outputs are logits, label");
  });

  it('requested outputs keep their order; a subset is allowed', () => {
    const req = request(batched(1).inputs as HostTensor[], [
      { name: 'label', binary: undefined },
      { name: 'logits', binary: undefined },
    ]);
    expect(prepareRequest(req, BATCHED).outputs.map((o) => o.name)).toEqual(['label', 'logits']);
    const one = request(batched(1).inputs as HostTensor[], [{ name: 'label', binary: undefined }]);
    expect(prepareRequest(one, BATCHED).outputs).toEqual([{ name: 'label', binary: false }]);
  });

  it('binary flags: per-output binary_data overrides binary_data_output', () => {
    const inputs = batched(1).inputs as HostTensor[];
    const withDefault = (def: boolean) =>
      prepareRequest(
        request(inputs, [
          { name: 'logits', binary: undefined },
          { name: 'label', binary: !def },
        ], def),
        BATCHED,
      ).outputs;
    expect(withDefault(true)).toEqual([
      { name: 'logits', binary: true },
      { name: 'label', binary: false },
    ]);
    expect(withDefault(false)).toEqual([
      { name: 'logits', binary: false },
      { name: 'label', binary: true },
    ]);
    // No outputs listed: every model output follows the default.
    expect(prepareRequest(request(inputs, undefined, true), BATCHED).outputs).toEqual([
      { name: 'logits', binary: true },
      { name: 'label', binary: true },
    ]);
  });
});

describe('decodeRawRequest', () => {
  const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

  it('infers the variable dimension of a single-input model, batch 1', () => {
    const s = spec(4, [{ name: 'x', datatype: 'FP32', shape: [-1, 2, -1] }]);
    const r = decodeRawRequest(f32([1, 2, 3, 4, 5, 6]), s);
    expect(r.inputs).toHaveLength(1);
    const x = r.inputs[0]!;
    expect(x.name).toBe('x');
    expect(x.datatype).toBe('FP32');
    expect(x.shape).toEqual([1, 2, 3]);
    expect(Array.from(x.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.binaryOutputDefault).toBe(true);
    expect(r.outputs).toBeUndefined();
    expect(r.id).toBeUndefined();
    expect(r.parameters).toEqual({});
    // And the result passes validation.
    expect(prepareRequest(r, s).rows).toBe(1);
  });

  it('fixed shapes need exactly their byte count', () => {
    const s = spec(0, [{ name: 'x', datatype: 'INT16', shape: [2, 2] }]);
    const r = decodeRawRequest(new Uint8Array(new Int16Array([1, -2, 3, -4]).buffer), s);
    expect(r.inputs[0]!.shape).toEqual([2, 2]);
    expect(Array.from(r.inputs[0]!.data as Int16Array)).toEqual([1, -2, 3, -4]);
    expect(invalidMessage(() => decodeRawRequest(new Uint8Array(6), s))).toBe(
      "a raw binary request for 'x' (INT16 [2,2]) has 6 bytes, which does not fit that shape",
    );
    expect(invalidMessage(() => decodeRawRequest(new Uint8Array(10), s))).toContain('has 10 bytes, which does not fit that shape');
  });

  it('refuses byte counts that are not a whole number of rows', () => {
    const s = spec(0, [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }]);
    expect(decodeRawRequest(f32([1, 2, 3, 4, 5, 6]), s).inputs[0]!.shape).toEqual([2, 3]);
    expect(invalidMessage(() => decodeRawRequest(f32([1, 2, 3, 4]), s))).toBe(
      "a raw binary request for 'x' (FP32 [-1,3]) has 16 bytes, which does not fit that shape",
    );
    expect(invalidMessage(() => decodeRawRequest(new Uint8Array(13), s))).toContain('has 13 bytes');
  });

  it('refuses multi-input models', () => {
    expect(invalidMessage(() => decodeRawRequest(new Uint8Array(4), PLAIN))).toBe(
      "a raw binary request (Inference-Header-Content-Length: 0) needs a single-input model; 'm' has 2 inputs",
    );
  });

  it('refuses more than one variable dimension', () => {
    const s = spec(0, [{ name: 'x', datatype: 'UINT8', shape: [-1, -1] }]);
    expect(invalidMessage(() => decodeRawRequest(new Uint8Array(4), s))).toBe(
      "a raw binary request cannot infer the shape of 'x' [-1,-1]: more than one variable dimension; send a JSON header",
    );
  });

  it('BYTES: the whole body is one element', () => {
    const s = spec(8, [{ name: 'text', datatype: 'BYTES', shape: [-1, 1] }]);
    const r = decodeRawRequest(new TextEncoder().encode('héllo wörld'), s);
    expect(r.inputs[0]!.shape).toEqual([1, 1]);
    expect(r.inputs[0]!.data).toEqual(['héllo wörld']);
    const v = spec(0, [{ name: 'text', datatype: 'BYTES', shape: [-1] }]);
    expect(decodeRawRequest(new TextEncoder().encode('x'), v).inputs[0]!.shape).toEqual([1]);
  });

  it('BYTES: refuses an input of more than one element', () => {
    const s = spec(0, [{ name: 'text', datatype: 'BYTES', shape: [2] }]);
    expect(invalidMessage(() => decodeRawRequest(new Uint8Array(1), s))).toBe(
      "a raw binary BYTES request needs an input of one element; 'text' has shape [2]",
    );
  });
});
