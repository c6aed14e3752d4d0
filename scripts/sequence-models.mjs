// Sequence (stateful) test models for the sequence batcher, with their configs:
//   simple_sequence       NVIDIA's simple_sequence config (START and READY int32 controls, no
//                         state); the graph gives what NVIDIA's simple_http_sequence_sync_infer_client.py
//                         checks: OUTPUT = READY * (INPUT + START), i.e. 1 + the input on a
//                         sequence's first request, the input itself afterwards.
//   sequence_accumulator  OUTPUT = running sum of INPUT since the sequence's START, kept in an
//                         implicit state (ACC_IN -> ACC_OUT); also echoes its CORRID (uint64),
//                         END (bool) and READY (fp32) controls, so every control form is seen.
//   simple_dyna_sequence  NVIDIA's simple_dyna_sequence config (START, END, READY int32 and CORRID
//                         uint64 controls, the oldest strategy, 2 instances): OUTPUT =
//                         READY * (INPUT + START + END * CORRID), what the --dyna run of
//                         simple_http_sequence_sync_infer_client.py checks for integer ids (1 + the
//                         input first, the input, and the correlation id added on the last request).
//   simple_string_dyna_sequence  the same controls with a TYPE_STRING CORRID (as NVIDIA's QA derives
//                         it) and an implicit-state accumulator: OUTPUT = running sum of INPUT since
//                         START, plus the decimal CORRID (Cast string→int32) on the last request;
//                         what that client checks for its string id "1002".
// Reproducible like generate-models.mjs: identical bytes are not rewritten.
import fs from 'node:fs';
import path from 'node:path';
import { DataType, buildModel, initializer, node, valueInfo } from './onnx-builder.mjs';

function writeFile(file, data) {
  const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let same = false;
  try {
    same = fs.readFileSync(file).equals(buf);
  } catch {
    // missing: write it
  }
  if (!same) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, buf);
  }
  return { file, bytes: buf.length, written: !same };
}

function simpleSequenceModel() {
  const col = ['batch', 1];
  return buildModel({
    graphName: 'simple_sequence',
    inputs: [valueInfo('INPUT', DataType.INT32, col), valueInfo('START', DataType.INT32, col), valueInfo('READY', DataType.INT32, col)],
    outputs: [valueInfo('OUTPUT', DataType.INT32, col)],
    nodes: [node('Add', ['INPUT', 'START'], ['sum']), node('Mul', ['sum', 'READY'], ['OUTPUT'])],
  });
}

function accumulatorModel() {
  const col = ['batch', 1];
  return buildModel({
    graphName: 'sequence_accumulator',
    inputs: [
      valueInfo('INPUT', DataType.INT32, col),
      valueInfo('START', DataType.INT32, col),
      valueInfo('END', DataType.BOOL, col),
      valueInfo('READY', DataType.FLOAT, col),
      valueInfo('CORRID', DataType.UINT64, col),
      valueInfo('ACC_IN', DataType.INT32, col),
    ],
    outputs: [
      valueInfo('OUTPUT', DataType.INT32, col),
      valueInfo('ACC_OUT', DataType.INT32, col),
      valueInfo('CORRID_OUT', DataType.UINT64, col),
      valueInfo('END_OUT', DataType.BOOL, col),
      valueInfo('READY_OUT', DataType.FLOAT, col),
    ],
    initializers: [initializer('one', DataType.INT32, [], [1])],
    nodes: [
      node('Sub', ['one', 'START'], ['keep']),
      node('Mul', ['ACC_IN', 'keep'], ['carried']),
      node('Add', ['INPUT', 'carried'], ['ACC_OUT']),
      node('Identity', ['ACC_OUT'], ['OUTPUT']),
      node('Identity', ['CORRID'], ['CORRID_OUT']),
      node('Identity', ['END'], ['END_OUT']),
      node('Identity', ['READY'], ['READY_OUT']),
    ],
  });
}

function dynaSequenceModel() {
  const col = ['batch', 1];
  return buildModel({
    graphName: 'simple_dyna_sequence',
    inputs: [
      valueInfo('INPUT', DataType.INT32, col),
      valueInfo('START', DataType.INT32, col),
      valueInfo('END', DataType.INT32, col),
      valueInfo('READY', DataType.INT32, col),
      valueInfo('CORRID', DataType.UINT64, col),
    ],
    outputs: [valueInfo('OUTPUT', DataType.INT32, col)],
    nodes: [
      node('Cast', ['CORRID'], ['corrid'], { to: DataType.INT32 }),
      node('Mul', ['END', 'corrid'], ['last']),
      node('Add', ['INPUT', 'START'], ['first']),
      node('Add', ['first', 'last'], ['sum']),
      node('Mul', ['sum', 'READY'], ['OUTPUT']),
    ],
  });
}

function stringDynaSequenceModel() {
  const col = ['batch', 1];
  return buildModel({
    graphName: 'simple_string_dyna_sequence',
    inputs: [
      valueInfo('INPUT', DataType.INT32, col),
      valueInfo('START', DataType.INT32, col),
      valueInfo('END', DataType.INT32, col),
      valueInfo('READY', DataType.INT32, col),
      valueInfo('CORRID', DataType.STRING, col),
      valueInfo('ACC_IN', DataType.INT32, col),
    ],
    outputs: [valueInfo('OUTPUT', DataType.INT32, col), valueInfo('ACC_OUT', DataType.INT32, col)],
    initializers: [initializer('one', DataType.INT32, [], [1])],
    nodes: [
      node('Sub', ['one', 'START'], ['keep']),
      node('Mul', ['ACC_IN', 'keep'], ['carried']),
      node('Add', ['INPUT', 'carried'], ['ACC_OUT']),
      node('Cast', ['CORRID'], ['corrid'], { to: DataType.INT32 }),
      node('Mul', ['END', 'corrid'], ['last']),
      node('Add', ['ACC_OUT', 'last'], ['sum']),
      node('Mul', ['sum', 'READY'], ['OUTPUT']),
    ],
  });
}

/**
 * NVIDIA's simple_dyna_sequence config (its docs/examples model repository) for onnxruntime:
 * the same sequence_batching, inputs, outputs and instance group; its custom backend's
 * `execute_delay_ms` parameter has no meaning here and is left out. `corrid` TYPE_STRING gives
 * simple_string_dyna_sequence, with the implicit accumulator state its backend keeps.
 */
export function dynaSequenceConfig(name = 'simple_dyna_sequence', corrid = 'TYPE_UINT64') {
  const flag = (n, kind) => `    {
      name: "${n}"
      control [
        {
          kind: ${kind}
          int32_false_true: [ 0, 1 ]
        }
      ]
    },`;
  const state = corrid === 'TYPE_STRING'
    ? `  state [
    {
      input_name: "ACC_IN"
      output_name: "ACC_OUT"
      data_type: TYPE_INT32
      dims: [ 1 ]
      initial_state: { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true name: "zero" }
    }
  ]
`
    : '';
  return `name: "${name}"
platform: "onnxruntime_onnx"
max_batch_size: 8
sequence_batching {
  max_sequence_idle_microseconds: 10000000
  oldest {
    max_candidate_sequences: 1024
    max_queue_delay_microseconds: 10000
  }
  control_input [
${flag('START', 'CONTROL_SEQUENCE_START')}
${flag('END', 'CONTROL_SEQUENCE_END')}
${flag('READY', 'CONTROL_SEQUENCE_READY')}
    {
      name: "CORRID"
      control [
        {
          kind: CONTROL_SEQUENCE_CORRID
          data_type: ${corrid}
        }
      ]
    }
  ]
${state}}
input [
  {
    name: "INPUT"
    data_type: TYPE_INT32
    dims: [ 1 ]
  }
]
output [
  {
    name: "OUTPUT"
    data_type: TYPE_INT32
    dims: [ 1 ]
  }
]
instance_group [
  {
    count: 2
    kind: KIND_CPU
  }
]
`;
}

/** NVIDIA's simple_sequence config.pbtxt (its qa model repository), as the client expects it. */
export const SIMPLE_SEQUENCE_CONFIG = `name: "simple_sequence"
platform: "onnxruntime_onnx"
max_batch_size: 8
sequence_batching {
  control_input [
    {
      name: "START"
      control [
        {
          kind: CONTROL_SEQUENCE_START
          int32_false_true: [ 0, 1 ]
        }
      ]
    },
    {
      name: "READY"
      control [
        {
          kind: CONTROL_SEQUENCE_READY
          int32_false_true: [ 0, 1 ]
        }
      ]
    }
  ]
}
input [
  {
    name: "INPUT"
    data_type: TYPE_INT32
    dims: [ 1 ]
  }
]
output [
  {
    name: "OUTPUT"
    data_type: TYPE_INT32
    dims: [ 1 ]
  }
]
instance_group [
  {
    kind: KIND_CPU
  }
]
`;

/** The accumulator: implicit state, every control form, the oldest strategy; `idleUs` is max_sequence_idle_microseconds. */
export function accumulatorConfig({ idleUs = 5_000_000, maxCandidates = 4, delayUs = 0, strategy = 'oldest' } = {}) {
  const strat = strategy === 'oldest'
    ? `  oldest { max_candidate_sequences: ${maxCandidates} preferred_batch_size: [ ${Math.min(2, maxCandidates)} ] max_queue_delay_microseconds: ${delayUs} }`
    : `  direct { max_queue_delay_microseconds: ${delayUs} }`;
  return `name: "sequence_accumulator"
platform: "onnxruntime_onnx"
max_batch_size: ${maxCandidates}
sequence_batching {
  max_sequence_idle_microseconds: ${idleUs}
${strat}
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
    { name: "END" control [ { kind: CONTROL_SEQUENCE_END bool_false_true: [ false, true ] } ] },
    { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY fp32_false_true: [ 0, 1 ] } ] },
    { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ] }
  ]
  state [
    {
      input_name: "ACC_IN"
      output_name: "ACC_OUT"
      data_type: TYPE_INT32
      dims: [ 1 ]
      initial_state: { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true name: "zero" }
    }
  ]
}
input [ { name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [
  { name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] },
  { name: "CORRID_OUT" data_type: TYPE_UINT64 dims: [ 1 ] },
  { name: "END_OUT" data_type: TYPE_BOOL dims: [ 1 ] },
  { name: "READY_OUT" data_type: TYPE_FP32 dims: [ 1 ] }
]
`;
}

/** Write the sequence models with their configs into repoDir. */
export async function generateSequenceModels(repoDir, accumulator = {}) {
  return [
    writeFile(path.join(repoDir, 'simple_sequence', '1', 'model.onnx'), simpleSequenceModel()),
    writeFile(path.join(repoDir, 'simple_sequence', 'config.pbtxt'), SIMPLE_SEQUENCE_CONFIG),
    writeFile(path.join(repoDir, 'sequence_accumulator', '1', 'model.onnx'), accumulatorModel()),
    writeFile(path.join(repoDir, 'sequence_accumulator', 'config.pbtxt'), accumulatorConfig(accumulator)),
    writeFile(path.join(repoDir, 'simple_dyna_sequence', '1', 'model.onnx'), dynaSequenceModel()),
    writeFile(path.join(repoDir, 'simple_dyna_sequence', 'config.pbtxt'), dynaSequenceConfig()),
    writeFile(path.join(repoDir, 'simple_string_dyna_sequence', '1', 'model.onnx'), stringDynaSequenceModel()),
    writeFile(path.join(repoDir, 'simple_string_dyna_sequence', 'config.pbtxt'), dynaSequenceConfig('simple_string_dyna_sequence', 'TYPE_STRING')),
  ];
}
