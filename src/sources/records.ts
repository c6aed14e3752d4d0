/**
 * Provenance records: one JSON file per pulled version at `<state-dir>/pulls/<model>/<version>.json`
 * — the manifest digest, the (redacted) sources, who asked, when, and the config the version is
 * activated with. Written atomically (temp + rename). They are what rollback and `cache gc`
 * consult; URIs in them never carry credentials.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from './manifest.js';
import { redactUri } from './redact.js';

export type Requester = 'api' | 'coordinator' | 'cli';

export interface PullRecord {
  readonly name: string;
  readonly version: number;
  readonly manifestDigest: string;
  /** The redacted URI of the model file (the version's "source"). */
  readonly source: string;
  readonly files: readonly { path: string; sha256: string; size: number; uri: string }[];
  /** The JSON model config written to the model folder when this version is active. */
  readonly config: Record<string, unknown>;
  readonly pulledAt: string;
  readonly by: Requester;
  /** Set when cache eviction removed one of its blobs (the version folder went with it). */
  evicted?: string;
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}

export class RecordStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = path.resolve(stateDir, 'pulls');
  }

  private file(name: string, version: number): string {
    return path.join(this.root, name, `${version}.json`);
  }

  async get(name: string, version: number): Promise<PullRecord | undefined> {
    return readFile(this.file(name, version), 'utf8').then((t) => JSON.parse(t) as PullRecord).catch(() => undefined);
  }

  async put(r: PullRecord): Promise<void> {
    await writeJsonAtomic(this.file(r.name, r.version), r);
  }

  async hasModel(name: string): Promise<boolean> {
    return (await readdir(path.join(this.root, name)).catch(() => [] as string[])).some((f) => /^\d+\.json$/.test(f));
  }

  /** Every record (of one model, or all), by name then version. */
  async list(name?: string): Promise<PullRecord[]> {
    const names = name ? [name] : await readdir(this.root).catch(() => [] as string[]);
    const out: PullRecord[] = [];
    for (const n of names.sort()) {
      const files = await readdir(path.join(this.root, n)).catch(() => [] as string[]);
      for (const f of files.filter((x) => /^\d+\.json$/.test(x)).sort((a, b) => parseInt(a) - parseInt(b))) {
        const r = await this.get(n, parseInt(f));
        if (r) out.push(r);
      }
    }
    return out;
  }
}

export function recordFiles(m: Manifest): PullRecord['files'] {
  return m.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size ?? -1, uri: redactUri(f.uri) }));
}

/** The version's source as people read it: the model file's redacted URI. */
export function sourceOf(m: Manifest): string {
  const onnx = m.files.find((f) => !f.path.includes('/') && f.path.endsWith('.onnx')) ?? m.files[0]!;
  return redactUri(onnx.uri);
}

/** Manifest with the URIs redacted (what may be logged or stored). */
export function redactedManifest(m: Manifest): Manifest {
  return { ...m, files: m.files.map((f) => ({ ...f, uri: redactUri(f.uri) })) };
}
