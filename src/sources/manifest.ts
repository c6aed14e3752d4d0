/**
 * The model package manifest: what a model version is made of and where each file comes from.
 *
 *   { "name": "resnet", "version": 3,
 *     "files": [{ "path": "model.onnx", "uri": "https://…/model.onnx", "sha256": "<64 hex>", "size": 1234 }],
 *     "config": { …Triton JSON ModelConfig… } }
 *
 * Contracts:
 * - `sha256` is the only trusted identity of a file: it comes from whoever wrote the manifest
 *   (the coordinator, the operator), never from the source that serves the bytes.
 * - `path` is relative to the version folder, normalised, with `/` separators: never absolute,
 *   never `..`, never `.`, never empty segments or backslashes. A top-level `config.pbtxt` or
 *   `config.json` is the model's config (applied at the model folder, as Triton expects).
 * - The manifest digest (sha256 of its canonical JSON) is the version's provenance identity.
 *
 * Depends on zod only, so the coordinator protocol can embed it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** The accepted paths as one pattern (the same rule as pathProblem, for the JSON Schema). */
export const PATH_PATTERN = /^(?![A-Za-z]:)[^/\\\0.][^/\\\0]*(\/[^/\\\0.][^/\\\0]*)*$/;

/** Why a relative path is refused, or undefined when it is acceptable. */
export function pathProblem(p: string): string | undefined {
  if (p.length === 0) return 'the path is empty';
  if (p.length > 512) return 'the path is longer than 512 characters';
  if (p.includes('\\')) return 'backslashes are not allowed (use /)';
  if (p.includes('\0')) return 'NUL characters are not allowed';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'absolute paths are not allowed; give a path relative to the version folder';
  const segments = p.split('/');
  if (segments.some((s) => s === '..')) return "'..' is not allowed: files must stay inside the version folder";
  if (segments.some((s) => s === '' || s === '.')) return "the path is not normalised (empty or '.' segments)";
  if (segments.some((s) => s.startsWith('.'))) return 'hidden files (segments starting with .) are not allowed';
  return undefined;
}

export const ManifestFileSchema = z
  .object({
    path: z.string().superRefine((p, ctx) => {
      const why = pathProblem(p);
      if (why) ctx.addIssue({ code: 'custom', message: `path '${p.slice(0, 80)}': ${why}` });
    }).describe('where the file goes, relative to the version folder (e.g. model.onnx, model.onnx.data, labels.txt)'),
    uri: z.string().min(1).max(4096).regex(/^(https?|s3|hf):\/\/\S+$/, 'must be an https://, http:// (with --allow-http), s3:// or hf:// URI')
      .describe('where to fetch it: https://…, http://… (only with --allow-http), s3://bucket/key, hf://owner/repo[@revision]/path'),
    sha256: z.string().regex(SHA256_PATTERN, 'must be 64 lowercase hex digits').describe('the sha256 of the file: the only identity the agent trusts'),
    size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('size in bytes, when known (checked before and after the download)'),
  })
  .strict()
  .describe('one file of the model version')
  .meta({ id: 'ManifestFile' });

export const ManifestSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be a model name (letters, digits, _ . -), never a path').describe('the model name in the repository'),
    version: z.number().int().min(1).max(2 ** 31 - 1).describe('the version number (the version folder)'),
    files: z.array(ManifestFileSchema).min(1).max(1000),
    config: z.record(z.string(), z.unknown()).optional().describe("inline model config (Triton's JSON ModelConfig); wins over a config file in files"),
  })
  .strict()
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    for (const [i, f] of m.files.entries()) {
      const key = f.path.toLowerCase();
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['files', i, 'path'], message: `path '${f.path}' appears twice` });
      seen.add(key);
    }
    const onnx = m.files.filter((f) => !f.path.includes('/') && f.path.endsWith('.onnx'));
    if (onnx.length === 0) ctx.addIssue({ code: 'custom', path: ['files'], message: 'no top-level .onnx file: a manifest needs its model file (e.g. model.onnx)' });
  })
  .describe('a model package: one version of one model, its files by URI and sha256, and optionally its config')
  .meta({ id: 'ModelManifest' });

export type ManifestFile = z.infer<typeof ManifestFileSchema>;
export type Manifest = z.infer<typeof ManifestSchema>;

/** Parse a manifest; throws an Error whose message lists the problems by path. */
export function parseManifest(raw: unknown, what = 'manifest'): Manifest {
  const r = ManifestSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.slice(0, 8).map((i) => `${i.path.length ? i.path.join('.') : '(manifest)'}: ${i.message}`);
  throw new ManifestError(`invalid ${what}: ${lines.join('; ')}`);
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

/** JSON with sorted keys: the same manifest always has the same digest. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** `sha256:<hex>` of the canonical manifest: the version's provenance identity. */
export function manifestDigest(m: Manifest): string {
  return `sha256:${createHash('sha256').update(canonicalJson(m)).digest('hex')}`;
}

/** The manifest as a JSON Schema (draft 2020-12), written next to the coordinator protocol's. */
export function manifestJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ManifestSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  // pathProblem() as a pattern, for validators that only read the JSON Schema: segments that
  // do not start with '.', no empty segment, no backslash or NUL, no leading '/' or drive letter.
  const file = (schema.$defs as Record<string, { properties: Record<string, Record<string, unknown>> }> | undefined)?.ManifestFile;
  if (file) file.properties.path = { ...file.properties.path, pattern: PATH_PATTERN.source, maxLength: 512 };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:gpu-node-agent:model-manifest:v1',
    title: 'gpu-node-agent model package manifest',
    description: 'One version of one model: its files by URI and sha256. Paths are relative to the version folder, never absolute, never "..". Generated from src/sources/manifest.ts; do not edit.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema' && k !== 'id')),
  };
}
