/**
 * The sequence spec: tensors split between client and agent, controls checked against the
 * model's types, state dims against the model with the batch axis, constants, and the config
 * schema's refusals, each naming the fix. Pure (no session): the ONNX signature is given.
 */
import { describe, expect, it } from 'vitest';
import { sessionDefaults } from '../../src/agent.js';
import { ConfigSchema } from '../../src/config/schema.js';
import type { TensorSignature } from '../../src/execution/ort-session.js';
import { parseModelConfig } from '../../src/repository/model-config.js';
import { parsePbtxtConfig } from '../../src/repository/pbtxt-config.js';
import { completeModelSpec } from '../../src/sessions/model-spec.js';
import { addSequenceFeeds, splitStates, stackStates, unstackState } from '../../src/sequences/feeds.js';

const session = sessionDefaults(ConfigSchema.parse({ models: '/tmp' }));
const defaults = { session, defaultMaxBatchSize: 8 };
const t = (name: string, datatype: TensorSignature['datatype'], shape: number[]): TensorSignature => ({ name, datatype, ortType: 'x', shape });

// Silero VAD v4 as onnxruntime reports it.
const SILERO = {
  inputs: [t('input', 'FP32', [-1, -1]), t('sr', 'INT64', []), t('h', 'FP32', [2, -1, 64]), t('c', 'FP32', [2, -1, 64])],
  outputs: [t('output', 'FP32', [-1, 1]), t('hn', 'FP32', [2, -1, 64]), t('cn', 'FP32', [2, -1, 64])],
};
const SILERO_CONFIG = `max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 512 ] } ]
sequence_batching {
  oldest { max_candidate_sequences: 32 }
  state [
    { input_name: "h" output_name: "hn" data_type: TYPE_FP32 dims: [ 2, 64 ] },
    { input_name: "c" output_name: "cn" data_type: TYPE_FP32 dims: [ 2, 64 ] }
  ]
}
parameters [
  { key: "constant_inputs" value: { string_value: "sr:16000" } },
  { key: "state_batch_axis" value: { string_value: "1" } }
]`;

const spec = (text: string, sig = SILERO) => completeModelSpec('m', 1, parsePbtxtConfig('m/config.pbtxt', text), sig, session, defaults, 'm/config.pbtxt');
const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
};

describe('completeModelSpec with sequence_batching', () => {
  it('Silero: clients see input/output only; h/c are state on axis 1; sr is a constant', () => {
    const s = spec(SILERO_CONFIG);
    expect(s.inputs.map((i) => i.name)).toEqual(['input']);
    expect(s.outputs.map((o) => o.name)).toEqual(['output']);
    expect(s.maxBatchSize).toBe(64);
    expect(s.sequence!.strategy).toBe('oldest');
    expect(s.sequence!.maxSequences).toBe(32);
    expect(s.sequence!.states.map((x) => [x.inputName, x.outputName, x.axis, x.dims])).toEqual([['h', 'hn', 1, [2, 64]], ['c', 'cn', 1, [2, 64]]]);
    expect(s.sequence!.constants).toEqual([{ name: 'sr', datatype: 'INT64', dims: [], data: BigInt64Array.of(16000n) }]);
    expect(s.config.dynamic_batching).toBeUndefined();
  });

  it('without state_batch_axis the state does not fit the model, and the error says which parameter to set', () => {
    const text = SILERO_CONFIG.replace('{ key: "state_batch_axis" value: { string_value: "1" } }', '{ key: "warmup" value: { string_value: "1" } }');
    expect(errorOf(() => spec(text))).toBe("m/config.pbtxt: state 'h' is [2,-1,64] in the model; dims [2,64] with the batch on axis 0 do not match it (axis 0 is not variable; set parameter state_batch_axis to the model's batch axis)");
  });

  it('controls are checked against the model input type and name', () => {
    const sig = { inputs: [t('INPUT', 'INT32', [-1, 1]), t('START', 'FP32', [-1, 1])], outputs: [t('OUTPUT', 'INT32', [-1, 1])] };
    const cfg = (name: string) => `max_batch_size: 4\nsequence_batching { control_input [ { name: "${name}" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ] }`;
    expect(errorOf(() => spec(cfg('START'), sig))).toBe("m/config.pbtxt: control_input 'START' gives TYPE_INT32 values but the model input is TYPE_FP32; use fp32_false_true");
    expect(errorOf(() => spec(cfg('BEGIN'), sig))).toMatch(/control_input 'BEGIN' is not an input of the model \(its inputs: INPUT, START\); fix the name/);
  });

  it('the config schema refuses what is not supported, by name', () => {
    expect(errorOf(() => parseModelConfig('c', { sequence_batching: { iterative_sequence: true } }))).toMatch(/iterative sequences are not supported/);
    expect(errorOf(() => parseModelConfig('c', { sequence_batching: { direct: {}, oldest: {} } }))).toMatch(/give one strategy: direct or oldest/);
    expect(errorOf(() => parseModelConfig('c', { sequence_batching: { control_input: [{ name: 'S', control: [{ kind: 'CONTROL_SEQUENCE_START' }] }] } }))).toMatch(/needs exactly one of int32_false_true, fp32_false_true, bool_false_true/);
    expect(errorOf(() => parseModelConfig('c', { sequence_batching: { control_input: [{ name: 'C', control: [{ kind: 'CONTROL_SEQUENCE_CORRID' }] }] } }))).toMatch(/CONTROL_SEQUENCE_CORRID control needs data_type/);
    expect(errorOf(() => parseModelConfig('c', { max_batch_size: 2, dynamic_batching: {}, sequence_batching: {} }))).toMatch(/give one of dynamic_batching and sequence_batching/);
  });
});

describe('state stacking along an axis', () => {
  it('stacks [2,64] states of 3 sequences into [2,3,64] and cuts each back out', () => {
    const parts = [0, 1, 2].map((j) => Float32Array.from({ length: 128 }, (_, i) => j * 1000 + i));
    const { dims, data } = stackStates(parts, [2, 64], 1);
    expect(dims).toEqual([2, 3, 64]);
    // element [o, j, i] = parts[j][o*64 + i]
    expect(data[1 * 3 * 64 + 2 * 64 + 5]).toBe(2000 + 64 + 5);
    for (let j = 0; j < 3; j++) expect([...unstackState(data, [2, 64], 1, 3, j)]).toEqual([...parts[j]!]);
  });

  it('feeds controls per row and splits the state outputs per sequence', () => {
    const s = spec(SILERO_CONFIG).sequence!;
    const feeds = addSequenceFeeds(s, [{ start: true, end: false, corrId: 1, state: new Map() }, { start: false, end: true, corrId: 2, state: new Map() }], true, {});
    expect(feeds.h!.dims).toEqual([2, 2, 64]);
    expect(feeds.sr!.dims).toEqual([]);
    const out = { hn: { type: 'float32' as const, dims: [2, 2, 64], data: feeds.h!.data }, cn: { type: 'float32' as const, dims: [2, 2, 64], data: feeds.c!.data } };
    const states = splitStates(s, out, 2, true);
    expect(states[1]!.get('h')!.length).toBe(128);
  });
});
