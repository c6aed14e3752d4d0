// Minimal ONNX ModelProto builder on top of `onnx-proto` (protobufjs bindings of onnx.proto).
//
// Only what the repository's generated models need: typed graph inputs/outputs (fixed or
// symbolic dims), nodes with simple attributes, raw-data initializers, and a single default-domain
// opset import. Output is deterministic: the same arguments always encode to the same bytes
// (protobufjs writes fields in declaration order and nothing here depends on time or randomness).
import pkg from 'onnx-proto';

const { onnx } = pkg;

/** ONNX TensorProto.DataType numbers, re-exported so callers can write `DataType.FLOAT`. */
export const DataType = onnx.TensorProto.DataType;

/** IR version 7 (ONNX 1.8) is accepted by every onnxruntime release we target and allows opset 13. */
export const IR_VERSION = 7;

/** AttributeProto.AttributeType numbers, for raw attribute objects passed to node(). */
export const AttributeType = onnx.AttributeProto.AttributeType;

/**
 * A graph input/output description.
 * @param {string} name
 * @param {number} elemType  a DataType value, e.g. DataType.FLOAT
 * @param {Array<number|string>} dims  number = fixed size, string = symbolic dim (e.g. 'batch')
 */
export function valueInfo(name, elemType, dims) {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })),
        },
      },
    },
  };
}

/**
 * Convert a JS attribute value to an AttributeProto.
 * Integers -> INT, other numbers -> FLOAT, strings -> STRING, arrays of those -> INTS/FLOATS/STRINGS.
 * An object is taken as a raw AttributeProto (e.g. `{ type: AttributeType.FLOAT, f: 1 }` to force a
 * float that happens to be integral).
 */
function attribute(name, value) {
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? { name, type: AttributeType.INT, i: value }
      : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === 'string') {
    return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  }
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      return { name, type: AttributeType.STRINGS, strings: value.map((v) => new TextEncoder().encode(v)) };
    }
    return value.every((v) => Number.isInteger(v))
      ? { name, type: AttributeType.INTS, ints: value }
      : { name, type: AttributeType.FLOATS, floats: value };
  }
  if (value && typeof value === 'object') return { ...value, name };
  throw new TypeError(`unsupported attribute value for ${name}: ${String(value)}`);
}

/**
 * A graph node. The node name defaults to `${opType}_${outputs[0]}` so it is stable and unique
 * as long as output names are unique (which ONNX requires anyway).
 * @param {string} opType  e.g. 'Add', 'MatMul'
 * @param {string[]} inputs
 * @param {string[]} outputs
 * @param {Record<string, unknown>} [attrs]
 */
export function node(opType, inputs, outputs, attrs = {}) {
  return {
    name: `${opType}_${outputs[0]}`,
    opType,
    input: inputs,
    output: outputs,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
}

/**
 * A constant tensor stored as little-endian raw_data (compact and fast to encode for large weights).
 * @param {string} name
 * @param {number} elemType  DataType.FLOAT, DataType.INT32, ... (not STRING)
 * @param {number[]} dims  [] for a scalar
 * @param {ArrayLike<number>} values  element count must equal the product of dims
 */
export function initializer(name, elemType, dims, values) {
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) {
    throw new RangeError(`initializer ${name}: ${values.length} values for dims [${dims}]`);
  }
  const writers = {
    [DataType.FLOAT]: [4, (dv, o, v) => dv.setFloat32(o, v, true)],
    [DataType.DOUBLE]: [8, (dv, o, v) => dv.setFloat64(o, v, true)],
    [DataType.INT32]: [4, (dv, o, v) => dv.setInt32(o, v, true)],
    [DataType.INT64]: [8, (dv, o, v) => dv.setBigInt64(o, BigInt(v), true)],
  };
  const w = writers[elemType];
  if (!w) throw new TypeError(`initializer ${name}: unsupported elemType ${elemType}`);
  const [size, write] = w;
  const raw = new Uint8Array(count * size);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < count; i++) write(dv, i * size, values[i]);
  return { name, dataType: elemType, dims, rawData: raw };
}

/**
 * Encode a complete model.
 * @param {{graphName: string, inputs: object[], outputs: object[], nodes: object[],
 *          initializers?: object[], opset?: number, producerName?: string}} spec
 * @returns {Uint8Array} serialized ModelProto
 */
export function buildModel({
  graphName,
  inputs,
  outputs,
  nodes,
  initializers = [],
  opset = 13,
  producerName = 'gpu-node-agent/scripts/onnx-builder.mjs',
}) {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName,
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: graphName,
      input: inputs,
      output: outputs,
      node: nodes,
      initializer: initializers,
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
