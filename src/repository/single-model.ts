/**
 * A model folder served as the whole repository: what KServe's storage initializer leaves in
 * /mnt/models when an InferenceService's storageUri holds one model rather than a Triton
 * repository. Two shapes are one model:
 *   <root>/<any>.onnx   [+ <root>/config.pbtxt | config.json]   (served as version 1)
 *   <root>/<version>/model.onnx ... [+ <root>/config.pbtxt]      (numeric version folders)
 * Anything else is read as a repository (<root>/<model>/<version>/model.onnx). A folder with a
 * repository's model folders (a non-numeric folder holding a config file or a numeric version
 * folder) stays a repository whatever else lies at its top, as before (a stray .onnx there is
 * ignored, not served). A numeric folder counts as a version folder only when it holds an .onnx
 * file itself, so a repository with a model named "1" (1/1/model.onnx) stays a repository.
 *
 * Contract: synchronous and cheap (one readdir of the root, one per numeric folder), so the
 * repository can call it on every read; throws, naming the fix, when the folder's shape is
 * ambiguous (several loose .onnx files, or a loose file beside version folders).
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export type FolderLayout =
  | { readonly kind: 'repository' }
  | {
    readonly kind: 'single';
    /** Numeric version folders, ascending; [1] for a loose file. */
    readonly versions: readonly number[];
    /** The loose model file (absolute path) served as version 1; undefined with version folders. */
    readonly file: string | undefined;
  };

function kindOf(p: string): 'file' | 'dir' | undefined {
  try {
    const s = statSync(p); // follows links: a storage initializer may link instead of copy
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

const isOnnx = (name: string) => name.endsWith('.onnx');

/** A repository's model folder: a config file or a numeric version folder in it. */
function looksLikeModelFolder(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => n === 'config.pbtxt' || n === 'config.json' || (/^\d+$/.test(n) && kindOf(path.join(dir, n)) === 'dir'));
  } catch {
    return false;
  }
}

export function detectLayout(root: string): FolderLayout {
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return { kind: 'repository' }; // unreadable: the repository's own read reports it
  }
  const loose = names.filter((n) => isOnnx(n) && kindOf(path.join(root, n)) === 'file');
  const numeric = names.filter((n) => /^\d+$/.test(n) && Number(n) > 0 && kindOf(path.join(root, n)) === 'dir');
  const versionDirs = numeric.filter((n) => {
    try {
      return readdirSync(path.join(root, n)).some(isOnnx);
    } catch {
      return false;
    }
  });
  if (names.some((n) => !/^\d+$/.test(n) && kindOf(path.join(root, n)) === 'dir' && looksLikeModelFolder(path.join(root, n)))) {
    return { kind: 'repository' };
  }
  if (loose.length > 1) {
    throw new Error(`${root} holds several .onnx files (${loose.join(', ')}) and no repository layout: keep one model file there `
      + '(served as one model, --model-name), or lay the models out as a repository, <model>/1/model.onnx each');
  }
  if (loose.length === 1 && versionDirs.length > 0) {
    throw new Error(`${root} holds both ${loose[0]} and version folders (${versionDirs.join(', ')}/): keep either the one file or the version folders`);
  }
  if (loose.length === 1) return { kind: 'single', versions: [1], file: path.join(root, loose[0]!) };
  if (versionDirs.length > 0) {
    // '7' and '007' are the same version, as in a repository's model folder.
    const versions = [...new Set(numeric.map(Number))].sort((a, b) => a - b);
    return { kind: 'single', versions, file: undefined };
  }
  return { kind: 'repository' };
}
