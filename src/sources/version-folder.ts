/**
 * Putting a pulled version into the model repository, in Triton's layout:
 *
 *   <models>/<name>/<version>/<path>   hard links to the blobs (symlinks across file systems,
 *                                      a copy as the last resort)
 *   <models>/<name>/config.json        written by activate(): the version's config with
 *                                      version_policy { specific: [version] }
 *   <models>/<name>/<aux file>         top-level non-ONNX files (labels, dictionaries) of the
 *                                      active version, linked at the model folder, where
 *                                      Triton's labels_file resolves
 *
 * A version folder is built under a hidden name and renamed into place, so the repository
 * never shows a half-built version. The folder of a model the agent did not pull is never
 * touched.
 */
import { copyFile, link, mkdir, readdir, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { PullError } from './errors.js';
import { pathProblem } from './manifest.js';
import { writeJsonAtomic, type PullRecord } from './records.js';

/** Place `target` at `dest` as a hard link, else a symlink, else a copy. */
export async function linkBlob(target: string, dest: string): Promise<'hardlink' | 'symlink' | 'copy'> {
  await mkdir(path.dirname(dest), { recursive: true });
  try {
    await link(target, dest);
    return 'hardlink';
  } catch {
    try {
      await symlink(target, dest);
      return 'symlink';
    } catch {
      await copyFile(target, dest);
      return 'copy';
    }
  }
}

/** Resolve a manifest path under `dir`, re-checking that it cannot leave it. */
export function safeJoin(dir: string, rel: string): string {
  const why = pathProblem(rel);
  const out = path.resolve(dir, ...rel.split('/'));
  if (why || !out.startsWith(path.resolve(dir) + path.sep)) throw new PullError(`refusing manifest path '${rel.slice(0, 80)}': ${why ?? 'it leaves the version folder'}`, 'refused', false);
  return out;
}

/** Build the version folder from blobs (blobPath(sha) → file); idempotent when it exists with the same record. */
export async function buildVersionFolder(modelDir: string, record: PullRecord, blobPath: (hex: string) => string, existing: PullRecord | undefined): Promise<void> {
  const final = path.join(modelDir, String(record.version));
  const there = await stat(final).catch(() => undefined);
  if (there) {
    if (existing?.manifestDigest === record.manifestDigest) {
      // Same content: relink anything missing (e.g. removed by hand).
      for (const f of record.files) {
        const dest = safeJoin(final, f.path);
        if (!(await stat(dest).catch(() => undefined))) await linkBlob(blobPath(f.sha256), dest);
      }
      return;
    }
    throw new PullError(
      existing
        ? `version ${record.version} of '${record.name}' already exists with other content (manifest ${existing.manifestDigest}); pull it as a new version number`
        : `${final} already exists and was not created by a pull; pull another version number`,
      'refused', false,
    );
  }
  const tmp = path.join(modelDir, `.pull-${record.version}-${process.pid}-${Date.now()}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    for (const f of record.files) await linkBlob(blobPath(f.sha256), safeJoin(tmp, f.path));
    await rename(tmp, final);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Make `record` the version the repository serves: config.json and the auxiliary files. */
export async function activateVersion(modelDir: string, record: PullRecord): Promise<void> {
  const versionDir = path.join(modelDir, String(record.version));
  for (const f of record.files) {
    if (f.path.includes('/') || f.path.endsWith('.onnx') || /^config\.(pbtxt|json)$/.test(f.path)) continue;
    const dest = path.join(modelDir, f.path);
    const tmp = `${dest}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    await linkBlob(path.join(versionDir, f.path), tmp);
    await rename(tmp, dest);
  }
  await writeJsonAtomic(path.join(modelDir, 'config.json'), record.config);
}

/** Remove a version folder (eviction). */
export async function removeVersionFolder(modelDir: string, version: number): Promise<void> {
  await rm(path.join(modelDir, String(version)), { recursive: true, force: true });
}

/** True when the model folder is absent or empty (safe for a first pull). */
export async function isFreeModelDir(modelDir: string): Promise<boolean> {
  const entries = await readdir(modelDir).catch(() => undefined);
  return entries === undefined || entries.length === 0;
}
