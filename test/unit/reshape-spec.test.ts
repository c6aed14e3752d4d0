/**
 * Triton's `reshape` in the model spec: clients use `dims`, onnxruntime gets the reshape;
 * contradictions are load errors that name the fix. And the dims arithmetic behind it.
 */
import { describe, expect, it } from 'vitest';
import { resolveDims } from '../../src/execution/batch-runner.js';
import type { SessionSettings, TensorSignature } from '../../src/execution/ort-session.js';
import { parseModelConfig } from '../../src/repository/model-config.js';
import { completeModelSpec } from '../../src/sessions/model-spec.js';

const session: SessionSettings = {
  providers: ['cpu'], cudaDeviceId: 0, intraOpThreads: 1, interOpThreads: 0, graphOptimizationLevel: 'all',
  executionMode: 'sequential', enableCpuMemArena: true, enableMemPattern: true, thread: 'main', allowSpinning: false,
};
const sig = (shape: number[], out: number[]): { inputs: TensorSignature[]; outputs: TensorSignature[] } => ({
  inputs: [{ name: 'data_0', datatype: 'FP32', ortType: 'float32', shape }],
  outputs: [{ name: 'fc6_1', datatype: 'FP32', ortType: 'float32', shape: out }],
});
const spec = (config: unknown, s = sig([-1, 3, 224, 224], [-1, 1000, 1, 1])) =>
  completeModelSpec('m', 1, parseModelConfig('c', config), s, session, { session, defaultMaxBatchSize: 4 }, 'c');
const errorOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('reshape in the model spec', () => {
  it('clients see dims, the model keeps its own dims as the reshape', () => {
    const s = spec({
      max_batch_size: 1,
      input: [{ name: 'data_0', data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: [3, 224, 224] }],
      output: [{ name: 'fc6_1', data_type: 'TYPE_FP32', dims: [1000], reshape: { shape: [1000, 1, 1] }, label_filename: 'l.txt' }],
    });
    expect(s.outputs[0]).toMatchObject({ shape: [-1, 1000], reshape: [1000, 1, 1], labelFilename: 'l.txt' });
    expect(s.inputs[0]).toMatchObject({ shape: [-1, 3, 224, 224], format: 'FORMAT_NCHW' });
    expect(s.config.output![0]).toMatchObject({ dims: [1000], reshape: { shape: [1000, 1, 1] }, label_filename: 'l.txt' });
  });

  it('dims of another rank than the model without a reshape: the error says to give the reshape', () => {
    expect(errorOf(() => spec({ max_batch_size: 1, output: [{ name: 'fc6_1', data_type: 'TYPE_FP32', dims: [1000] }] }))).toBe(
      "c: output 'fc6_1' dims [1000] have rank 1 but the model has [1000,1,1] (with max_batch_size > 0, they exclude the batch dimension); give the model's shape as reshape { shape: [1000,1,1] } to keep dims [1000] for clients",
    );
  });

  it('a reshape that contradicts the model, or holds another number of elements, is refused', () => {
    expect(errorOf(() => spec({ max_batch_size: 1, output: [{ name: 'fc6_1', data_type: 'TYPE_FP32', dims: [1000], reshape: { shape: [10, 10, 10] } }] }))).toMatch(
      /output 'fc6_1' reshape \[10,10,10\] contradict the model's \[1000,1,1\]/,
    );
    expect(errorOf(() => spec({ max_batch_size: 1, output: [{ name: 'fc6_1', data_type: 'TYPE_FP32', dims: [999], reshape: { shape: [1000, 1, 1] } }] }))).toMatch(
      /dims \[999\] have 999 elements but reshape \[1000,1,1\] has 1000/,
    );
  });

  it('optional inputs are marked', () => {
    const s = spec({ input: [{ name: 'data_0', data_type: 'TYPE_FP32', dims: [3, 224, 224], optional: true }] });
    expect(s.inputs[0]!.optional).toBe(true);
  });
});

describe('resolveDims', () => {
  it('fills the one variable dimension from the element count', () => {
    expect(resolveDims([1, -1, 1, 1], 1000)).toEqual([1, 1000, 1, 1]);
    expect(resolveDims([3, 224, 224], 150528)).toEqual([3, 224, 224]);
    expect(resolveDims([-1, 0], 0)).toEqual([0, 0]);
  });
});
