#!/usr/bin/env node
// Streams a WAV file (16 kHz mono PCM16) through Silero VAD on a gpu-agent, one sequence per
// file, in 512-sample (32 ms) chunks over the V2 API, and prints the speech segments it finds.
// The agent keeps the model's h/c state between the chunks (sequence batching); the client
// sends only audio.
//
//   node examples/vad-stream.mjs speech.wav [--url http://127.0.0.1:8000] [--model silero_vad] [--threshold 0.5]
import fs from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const file = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (!file) {
  console.error('usage: node examples/vad-stream.mjs <file.wav> [--url URL] [--model NAME] [--threshold P]');
  process.exit(2);
}
const url = opt('url', 'http://127.0.0.1:8000');
const model = opt('model', 'silero_vad');
const threshold = Number(opt('threshold', '0.5'));
const CHUNK = 512;

/** PCM16 mono samples of a WAV file as floats in [-1, 1). */
function readWav(path) {
  const b = fs.readFileSync(path);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${path} is not a WAV file`);
  let off = 12;
  let fmt;
  while (off + 8 <= b.length) {
    const id = b.toString('ascii', off, off + 4);
    const size = b.readUInt32LE(off + 4);
    if (id === 'fmt ') fmt = { format: b.readUInt16LE(off + 8), channels: b.readUInt16LE(off + 10), rate: b.readUInt32LE(off + 12), bits: b.readUInt16LE(off + 22) };
    if (id === 'data') {
      if (!fmt || fmt.format !== 1 || fmt.bits !== 16 || fmt.channels !== 1 || fmt.rate !== 16000) throw new Error(`${path}: need 16 kHz mono PCM16, got ${JSON.stringify(fmt)}`);
      const n = Math.floor(size / 2);
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = b.readInt16LE(off + 8 + i * 2) / 32768;
      return x;
    }
    off += 8 + size + (size % 2);
  }
  throw new Error(`${path} has no data chunk`);
}

const samples = readWav(file);
const chunks = Math.floor(samples.length / CHUNK);
const sequenceId = `vad-${process.pid}-${Date.now()}`;
const segments = [];
let speechStart;
const started = performance.now();
for (let k = 0; k < chunks; k++) {
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, CHUNK], data: Array.from(samples.subarray(k * CHUNK, (k + 1) * CHUNK)) }],
      parameters: { sequence_id: sequenceId, sequence_start: k === 0, sequence_end: k === chunks - 1 },
    }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`chunk ${k}: HTTP ${res.status}: ${body.error}`);
  const p = body.outputs[0].data[0];
  const t = (k * CHUNK) / 16000;
  if (p >= threshold && speechStart === undefined) speechStart = t;
  if (p < threshold && speechStart !== undefined) {
    segments.push([speechStart, t]);
    speechStart = undefined;
  }
}
if (speechStart !== undefined) segments.push([speechStart, (chunks * CHUNK) / 16000]);
const ms = performance.now() - started;
console.log(`${file}: ${chunks} chunks of ${CHUNK} samples (${((chunks * CHUNK) / 16000).toFixed(2)} s of audio) in ${ms.toFixed(0)} ms, sequence ${sequenceId}`);
for (const [a, b] of segments) console.log(`speech ${a.toFixed(2)} s - ${b.toFixed(2)} s`);
if (segments.length === 0) console.log('no speech found');
