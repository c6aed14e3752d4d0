/**
 * The checked description of a sequence (stateful) model, completed from its config's
 * `sequence_batching` block, the agent parameters `constant_inputs` / `state_batch_axis` and
 * the tensors the ONNX file declares.
 *
 * The model's tensors split in two:
 * - the client's: what requests send and receive (the rest of the agent sees only these);
 * - the agent's: control inputs (START/END/READY/CORRID), implicit state inputs and outputs,
 *   and constant inputs, which the sequence batcher feeds and keeps.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { allocate, datatypeFromTriton, elementCount, elementSize, tritonTypeOf, viewOf, type Datatype, type TensorData } from '../execution/datatypes.js';
import type { TensorSignature } from '../execution/ort-session.js';
import type { ModelConfig } from '../repository/model-config.js';
import type { ControlKind, SequenceBatchingConfig } from './config-schema.js';

export interface ControlFeed {
  readonly name: string;
  readonly kind: ControlKind;
  readonly datatype: Datatype;
  /** START/END/READY: the values for false and true. */
  readonly falseTrue?: readonly [number | boolean, number | boolean];
}

export interface StateTensor {
  readonly inputName: string;
  readonly outputName: string;
  readonly datatype: Datatype;
  /** One sequence's state dims (the config's dims, without the batch axis). */
  readonly dims: readonly number[];
  /** Where sequences stack in the model tensor (`state_batch_axis`; 0 = first). */
  readonly axis: number;
  /** `initial_state { data_file }` (read by `loadInitialStates`), or zeros. */
  readonly dataFile?: string | undefined;
  /** One sequence's initial state; zeros unless a data_file was loaded. */
  initial: TensorData;
}

export interface ConstantFeed {
  readonly name: string;
  readonly datatype: Datatype;
  /** The model's own dims for this input (a scalar is []). */
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export interface SequenceSpec {
  readonly strategy: 'direct' | 'oldest';
  /** Live sequences at most: max_candidate_sequences (oldest) or max_batch_size × instances (direct). */
  readonly maxSequences: number;
  readonly preferredBatchSizes: readonly number[];
  readonly maxQueueDelayMs: number;
  /** A sequence with no request for this long is ended (max_sequence_idle_microseconds). */
  readonly idleMs: number;
  readonly controls: readonly ControlFeed[];
  readonly states: readonly StateTensor[];
  readonly constants: readonly ConstantFeed[];
}

/** Names of the model's tensors the agent feeds or keeps (never sent by clients). */
export function agentTensorNames(config: ModelConfig): { inputs: Set<string>; outputs: Set<string> } {
  const sb = config.sequence_batching;
  const inputs = new Set<string>();
  const outputs = new Set<string>();
  if (!sb) return { inputs, outputs };
  for (const c of sb.control_input) inputs.add(c.name);
  for (const s of sb.state) {
    inputs.add(s.input_name);
    outputs.add(s.output_name);
  }
  for (const name of namedValues(config, 'constant_inputs', 'x').keys()) inputs.add(name);
  return { inputs, outputs };
}

/** `"name:value,…"` of a parameter; a bare value (no name) is stored under `*`. */
function namedValues(config: ModelConfig, key: string, source: string): Map<string, string> {
  const raw = config.parameters?.[key]?.string_value;
  const out = new Map<string, string>();
  if (raw === undefined) return out;
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const i = part.lastIndexOf(':');
    if (i < 0) {
      out.set('*', part);
      continue;
    }
    const name = part.slice(0, i).trim();
    if (!name) throw new Error(`${source}: parameter '${key}' entry '${part}' needs a name before ':'`);
    out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

function fill(dt: Datatype, n: number, value: number | boolean | bigint): TensorData {
  const data = allocate(dt, n);
  if (Array.isArray(data)) return data.fill(String(value));
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) (data as BigInt64Array).fill(BigInt(value as number));
  else (data as Float32Array).fill(Number(value));
  return data;
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(',')}]`;
}

/**
 * Complete the sequence spec. `declared` are the ONNX file's tensors; `maxBatchSize` is the
 * model's (already checked against the client tensors).
 */
export function completeSequenceSpec(
  config: ModelConfig,
  sb: SequenceBatchingConfig,
  declared: { inputs: readonly TensorSignature[]; outputs: readonly TensorSignature[] },
  maxBatchSize: number,
  instances: number,
  source: string,
): SequenceSpec {
  const inputOf = (name: string, what: string): TensorSignature => {
    const t = declared.inputs.find((x) => x.name === name);
    if (!t) throw new Error(`${source}: ${what} '${name}' is not an input of the model (its inputs: ${declared.inputs.map((x) => x.name).join(', ')}); fix the name`);
    if (!t.datatype) throw new Error(`${source}: model input '${name}' has type '${t.ortType}', which this agent cannot serve`);
    return t;
  };
  const controls: ControlFeed[] = sb.control_input.map((ci) => {
    if (ci.control.length !== 1) throw new Error(`${source}: control_input '${ci.name}' has ${ci.control.length} controls; give one control per input`);
    const c = ci.control[0]!;
    const t = inputOf(ci.name, 'control_input');
    const want: Datatype | undefined = c.int32_false_true ? 'INT32' : c.fp32_false_true ? 'FP32' : c.bool_false_true ? 'BOOL' : datatypeFromTriton(c.data_type!);
    if (want !== t.datatype) {
      throw new Error(`${source}: control_input '${ci.name}' gives ${tritonTypeOf(want!)} values but the model input is ${tritonTypeOf(t.datatype!)}; use ${t.datatype === 'INT32' ? 'int32_false_true' : t.datatype === 'FP32' ? 'fp32_false_true' : t.datatype === 'BOOL' ? 'bool_false_true' : `data_type: ${tritonTypeOf(t.datatype!)}`}`);
    }
    const ft = c.int32_false_true ?? c.fp32_false_true ?? c.bool_false_true;
    return { name: ci.name, kind: c.kind, datatype: t.datatype!, ...(ft ? { falseTrue: [ft[0]!, ft[1]!] as const } : {}) };
  });
  const axes = namedValues(config, 'state_batch_axis', source);
  const states: StateTensor[] = sb.state.map((s) => {
    const t = inputOf(s.input_name, 'state input_name');
    const out = declared.outputs.find((x) => x.name === s.output_name);
    if (!out) throw new Error(`${source}: state output_name '${s.output_name}' is not an output of the model (its outputs: ${declared.outputs.map((x) => x.name).join(', ')}); fix the name`);
    const dt = datatypeFromTriton(s.data_type)!;
    if (dt !== t.datatype) throw new Error(`${source}: state '${s.input_name}' data_type is ${s.data_type} but the model has ${tritonTypeOf(t.datatype!)}; set data_type: ${tritonTypeOf(t.datatype!)}`);
    if (dt === 'BYTES') throw new Error(`${source}: state '${s.input_name}' is TYPE_STRING; implicit state must be a numeric tensor`);
    if (s.dims.some((d) => d < 1)) throw new Error(`${source}: state '${s.input_name}' dims ${shapeText(s.dims)} must be fixed sizes (growable state is not supported)`);
    const axisText = axes.get(s.input_name) ?? axes.get('*') ?? '0';
    const axis = Number(axisText);
    if (!Number.isInteger(axis) || axis < 0 || axis > s.dims.length) {
      throw new Error(`${source}: parameter 'state_batch_axis' for '${s.input_name}' must be an integer 0..${s.dims.length}, got '${axisText}'`);
    }
    if (maxBatchSize > 0 && t.shape.length) {
      const own = [...t.shape];
      own.splice(axis, 1);
      const ok = own.length === s.dims.length && own.every((d, i) => d === -1 || d === s.dims[i]);
      if (!ok || t.shape[axis] !== -1) {
        throw new Error(`${source}: state '${s.input_name}' is ${shapeText(t.shape)} in the model; dims ${shapeText(s.dims)} with the batch on axis ${axis} do not match it` +
          (t.shape[axis] === -1 ? '' : ` (axis ${axis} is not variable; set parameter state_batch_axis to the model's batch axis)`));
      }
    }
    const init = s.initial_state[0];
    if (init) {
      if (datatypeFromTriton(init.data_type) !== dt) throw new Error(`${source}: state '${s.input_name}' initial_state data_type ${init.data_type} differs from the state's ${s.data_type}`);
      if (init.dims.length !== s.dims.length || init.dims.some((d, i) => d !== s.dims[i])) {
        throw new Error(`${source}: state '${s.input_name}' initial_state dims ${shapeText(init.dims)} differ from the state's ${shapeText(s.dims)}`);
      }
    }
    return { inputName: s.input_name, outputName: s.output_name, datatype: dt, dims: [...s.dims], axis, dataFile: init?.data_file, initial: allocate(dt, elementCount(s.dims)) };
  });
  const constants: ConstantFeed[] = [...namedValues(config, 'constant_inputs', source)].map(([name, value]) => {
    if (name === '*') throw new Error(`${source}: parameter 'constant_inputs' entries are "name:value"`);
    const t = inputOf(name, 'constant_inputs');
    if (t.datatype === 'BYTES') return { name, datatype: t.datatype, dims: t.shape, data: fill('BYTES', Math.max(1, elementCount(t.shape)), value as unknown as number) };
    if (t.shape.some((d) => d < 0)) throw new Error(`${source}: constant input '${name}' has variable dims ${shapeText(t.shape)} in the model; a constant needs fixed dims`);
    const v = t.datatype === 'BOOL' ? (value === 'true' || value === '1' ? 1 : 0) : Number(value);
    if (!Number.isFinite(v) || (/INT/.test(t.datatype!) && !Number.isInteger(v))) {
      throw new Error(`${source}: parameter 'constant_inputs' value '${value}' for '${name}' is not a ${tritonTypeOf(t.datatype!)} number`);
    }
    return { name, datatype: t.datatype!, dims: t.shape, data: fill(t.datatype!, elementCount(t.shape), v) };
  });
  const oldest = sb.oldest;
  const direct = sb.direct ?? (oldest ? undefined : { max_queue_delay_microseconds: 0, minimum_slot_utilization: 0 });
  const maxSequences = oldest ? oldest.max_candidate_sequences : Math.max(1, maxBatchSize) * instances;
  if (oldest) {
    for (const p of oldest.preferred_batch_size) {
      if (maxBatchSize > 0 && p > maxBatchSize) throw new Error(`${source}: sequence_batching.oldest preferred batch size ${p} is larger than max_batch_size ${maxBatchSize}`);
    }
  }
  return {
    strategy: oldest ? 'oldest' : 'direct',
    maxSequences,
    preferredBatchSizes: oldest?.preferred_batch_size ?? [],
    maxQueueDelayMs: ((oldest ?? direct)!.max_queue_delay_microseconds) / 1000,
    idleMs: sb.max_sequence_idle_microseconds / 1000,
    controls,
    states,
    constants,
  };
}

/** Read every `initial_state { data_file }` from `<modelDir>/initial_state/` (raw row-major bytes). */
export function loadInitialStates(seq: SequenceSpec | undefined, modelDir: string): void {
  for (const s of seq?.states ?? []) {
    if (!s.dataFile) continue;
    const file = path.join(modelDir, 'initial_state', s.dataFile);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new Error(`state '${s.inputName}' initial_state data_file ${file}: ${(err as Error).message}`);
    }
    const n = elementCount(s.dims);
    const want = n * elementSize(s.datatype);
    if (bytes.length !== want) throw new Error(`state '${s.inputName}' initial_state data_file ${file} has ${bytes.length} bytes; dims ${shapeText(s.dims)} of ${tritonTypeOf(s.datatype)} need ${want}`);
    s.initial = viewOf(s.datatype, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), 0, n).slice();
  }
}
