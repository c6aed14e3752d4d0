#!/usr/bin/env node
// A deterministic speech-like test signal, 16 kHz mono PCM16 WAV: "syllables" of a voiced
// source (a glottal-like pulse train at 110-190 Hz with slow pitch movement, shaped by three
// moving formant resonators) in words separated by pauses of near-silence (faint noise).
// No TTS is used (Debian's espeak-ng is not installed here); the same bytes come out every run.
//
// CLI:  node scripts/synth-speech-wav.mjs out.wav [seconds]     (default 6 s)
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './generate-models.mjs';

export const SAMPLE_RATE = 16000;

/** Two-pole resonator coefficients for centre frequency f and bandwidth bw (Hz). */
function resonator(f, bw) {
  const r = Math.exp(-Math.PI * bw / SAMPLE_RATE);
  return { a1: 2 * r * Math.cos(2 * Math.PI * f / SAMPLE_RATE), a2: -r * r, g: 1 - r };
}

/**
 * Float samples in [-1, 1] and the speech spans [startS, endS] it holds. Layout: 0.5 s pause,
 * then words of 2-4 syllables (~0.2 s each) separated by 0.4-0.9 s pauses.
 */
export function synthSpeech(seconds = 6, seed = 7) {
  const rand = mulberry32(seed);
  const n = Math.round(seconds * SAMPLE_RATE);
  const out = new Float32Array(n);
  const spans = [];
  const vowels = [[730, 1090, 2440], [270, 2290, 3010], [530, 1840, 2480], [570, 840, 2410], [300, 870, 2240], [660, 1720, 2410]];
  let t = Math.round(0.5 * SAMPLE_RATE);
  let phase = 0;
  while (t < n - SAMPLE_RATE * 0.6) {
    const syllables = 2 + Math.floor(rand() * 3);
    const wordStart = t;
    const f0base = 110 + rand() * 80;
    for (let s = 0; s < syllables && t < n; s++) {
      const len = Math.round((0.15 + rand() * 0.12) * SAMPLE_RATE);
      const [v1, v2] = [vowels[Math.floor(rand() * vowels.length)], vowels[Math.floor(rand() * vowels.length)]];
      const y = [[0, 0], [0, 0], [0, 0]];
      for (let i = 0; i < len && t + i < n; i++) {
        const x = i / len;
        const f0 = f0base * (1 + 0.12 * Math.sin(Math.PI * x) - 0.05 * x);
        phase += f0 / SAMPLE_RATE;
        const pulse = phase % 1 < 0.08 ? 1 - (phase % 1) / 0.08 : -0.05;
        const env = Math.sin(Math.PI * Math.min(1, x * 1.1)) ** 0.6;
        let acc = 0;
        for (let k = 0; k < 3; k++) {
          const f = v1[k] + (v2[k] - v1[k]) * x;
          const { a1, a2, g } = resonator(f, 60 + 40 * k);
          const v = g * pulse + a1 * y[k][0] + a2 * y[k][1];
          y[k][1] = y[k][0];
          y[k][0] = v;
          acc += v / (k + 1);
        }
        out[t + i] = 0.6 * env * acc + 0.01 * (rand() - 0.5);
      }
      t += len;
    }
    spans.push([wordStart / SAMPLE_RATE, t / SAMPLE_RATE]);
    const pause = Math.round((0.4 + rand() * 0.5) * SAMPLE_RATE);
    for (let i = 0; i < pause && t + i < n; i++) out[t + i] = 0.003 * (rand() - 0.5);
    t += pause;
  }
  for (; t < n; t++) out[t] = 0.003 * (rand() - 0.5);
  let peak = 0;
  for (const v of out) peak = Math.max(peak, Math.abs(v));
  for (let i = 0; i < n; i++) out[i] = (out[i] / peak) * 0.8;
  return { samples: out, spans };
}

/** PCM16 mono WAV bytes of float samples. */
export function wavBytes(samples, rate = SAMPLE_RATE) {
  const buf = Buffer.alloc(44 + samples.length * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + samples.length * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(samples.length * 2, 40);
  for (let i = 0; i < samples.length; i++) buf.writeInt16LE(Math.round(Math.max(-1, Math.min(1, samples[i])) * 32767), 44 + i * 2);
  return buf;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file = 'speech.wav', secs = '6'] = process.argv.slice(2);
  const { samples, spans } = synthSpeech(Number(secs));
  fs.writeFileSync(file, wavBytes(samples));
  console.log(`wrote ${file}: ${samples.length} samples at ${SAMPLE_RATE} Hz; speech spans (s): ${spans.map(([a, b]) => `${a.toFixed(2)}-${b.toFixed(2)}`).join(', ')}`);
}
