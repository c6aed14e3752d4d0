/**
 * Triton's model repository extension, load with files: `POST /v2/repository/models/{m}/load`
 * with parameters `"config": "<JSON ModelConfig>"` and `"file:<path>": "<base64>"` (for
 * example `file:1/model.onnx`). The files and the config (as config.json) become the model's
 * whole folder, as in Triton, where the uploaded files replace the model's content.
 *
 * Contracts:
 * - Paths are relative to the model folder, `/`-separated, without `..`, `.`, empty, absolute
 *   or hidden components, at most 4 levels deep; anything else is refused (400) before a byte
 *   is written.
 * - Oversized uploads are refused: the body is capped by --body-limit (413), and the decoded
 *   files together must fit in `maxBytes`.
 * - Writing is atomic for readers of the repository: everything goes into a hidden staging
 *   folder in the repository root, then one rename puts it in place (the previous folder, if
 *   any, is moved aside first and restored by `rollback()` when the model fails to load).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AgentError, invalid } from '../errors.js';
import { MODEL_NAME } from './repository.js';

export interface UploadedFiles {
  /** JSON text of the ModelConfig (Triton requires one with the files). */
  readonly config: string;
  /** Relative path inside the model folder → contents. */
  readonly files: ReadonlyMap<string, Buffer>;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** `file:<path>` load parameters → checked relative paths and decoded contents. */
export function uploadedFiles(params: Record<string, unknown>, maxBytes: number): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let total = 0;
  for (const [key, value] of Object.entries(params)) {
    if (!key.startsWith('file:')) continue;
    const rel = key.slice(5);
    const parts = rel.split('/');
    if (!rel || rel.includes('\\') || rel.includes('\0') || parts.length > 4 || parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'))) {
      throw invalid(`load parameter '${key}': the path must be relative to the model folder, like 'file:1/model.onnx' (no '..', no absolute or hidden parts)`);
    }
    if (typeof value !== 'string' || !BASE64.test(value.replace(/\s+/g, ''))) {
      throw invalid(`load parameter '${key}' must be the file's contents in base64`);
    }
    if (rel === 'config.pbtxt' || rel === 'config.json') {
      throw invalid(`load parameter '${key}': give the model's config as the 'config' parameter (JSON), not as a file`);
    }
    const bytes = Buffer.from(value, 'base64');
    total += bytes.length;
    if (total > maxBytes) {
      throw new AgentError('PAYLOAD_TOO_LARGE', `load parameter '${key}': the uploaded files exceed ${maxBytes} bytes together (--body-limit)`);
    }
    files.set(rel, bytes);
  }
  return files;
}

export interface StagedModel {
  /** Put the staged folder in place of the model's folder. */
  commit(): Promise<void>;
  /** After commit: bring the previous folder back (or remove the new one if there was none). */
  rollback(): Promise<void>;
  /** After a successful load: forget the previous folder. */
  finish(): Promise<void>;
}

/** Write the upload into a staging folder of the repository root. */
export async function stageUpload(root: string, name: string, upload: UploadedFiles): Promise<StagedModel> {
  if (!MODEL_NAME.test(name)) throw invalid(`'${name}' is not a valid model name (letters, digits, '_', '.', '-'; up to 128)`);
  const tag = randomBytes(6).toString('hex');
  const staging = path.join(root, `.upload-${name}-${tag}`);
  const previous = path.join(root, `.previous-${name}-${tag}`);
  const target = path.join(root, name);
  try {
    await mkdir(staging);
    await writeFile(path.join(staging, 'config.json'), upload.config);
    for (const [rel, bytes] of upload.files) {
      const file = path.join(staging, ...rel.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, bytes);
    }
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  let hadPrevious = false;
  return {
    async commit() {
      hadPrevious = existsSync(target);
      if (hadPrevious) await rename(target, previous);
      await rename(staging, target);
    },
    async rollback() {
      await rm(target, { recursive: true, force: true });
      if (hadPrevious) await rename(previous, target);
    },
    async finish() {
      if (hadPrevious) await rm(previous, { recursive: true, force: true });
    },
  };
}
