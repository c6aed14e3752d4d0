/**
 * The coordinator's model manifests: per model name, the package manifest (src/sources/manifest.ts)
 * that load on demand sends with `load_model` when no node has the model in its repository, so
 * that a node with an empty repository pulls it by URI (verified by sha256) and serves it.
 *
 * Where they come from, and which wins:
 * - the coordinator's `--manifests FILE` (a JSON array of manifests, or an object of them by
 *   model name), applied at every start: a manifest from the file replaces the stored one when
 *   it differs (audit identity 'config file');
 * - the admin API (`PUT /models/{name}/manifest`, `DELETE …`, identity 'admin'), at run time.
 * Both are kept in the SQLite state (table `manifests`, next to the audit trail), so a restarted
 * coordinator still knows what the API set; every change is an audit row of kind `manifest`
 * (action set | removed, target the model, result the manifest digest).
 */
import { canonicalJson, manifestDigest, parseManifest, type Manifest } from '../../sources/manifest.js';
import type { CoordinatorStore } from '../audit/store.js';

export interface ManifestEntry {
  readonly manifest: Manifest;
  /** sha256 of the canonical manifest (the version's provenance identity on the agent). */
  readonly digest: string;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

export class ManifestRegistry {
  private readonly byModel = new Map<string, ManifestEntry>();

  constructor(private readonly store: CoordinatorStore, fromConfig: readonly Manifest[] = [], private readonly onChange: () => void = () => undefined) {
    for (const row of store.loadManifests()) {
      try {
        const manifest = parseManifest(JSON.parse(row.manifest), `stored manifest of '${row.model}'`);
        this.byModel.set(row.model, { manifest, digest: manifestDigest(manifest), updatedAt: new Date(row.updatedAt).toISOString(), updatedBy: row.updatedBy });
      } catch {
        // a row this version cannot read is ignored (set it again through the API)
      }
    }
    for (const m of fromConfig) {
      const known = this.byModel.get(m.name);
      if (!known || canonicalJson(known.manifest) !== canonicalJson(m)) this.set(m, 'config file');
    }
  }

  get(model: string): ManifestEntry | undefined {
    return this.byModel.get(model);
  }

  list(): { model: string; entry: ManifestEntry }[] {
    return [...this.byModel].sort(([a], [b]) => a.localeCompare(b)).map(([model, entry]) => ({ model, entry }));
  }

  /** Set (or replace) the manifest of `manifest.name`; recorded in the audit trail. */
  set(manifest: Manifest, identity: string): ManifestEntry {
    const at = Date.now();
    const digest = manifestDigest(manifest);
    this.store.saveManifest(manifest.name, JSON.stringify(manifest), at, identity);
    this.store.append({ kind: 'manifest', at, nodeId: '', identity, action: 'set', target: manifest.name, result: digest });
    const entry = { manifest, digest, updatedAt: new Date(at).toISOString(), updatedBy: identity };
    this.byModel.set(manifest.name, entry);
    this.onChange();
    return entry;
  }

  /** Remove a model's manifest; false when it had none (nothing is recorded then). */
  remove(model: string, identity: string): boolean {
    if (!this.byModel.has(model)) return false;
    this.store.removeManifest(model);
    this.store.append({ kind: 'manifest', at: Date.now(), nodeId: '', identity, action: 'removed', target: model, result: 'ok' });
    this.byModel.delete(model);
    this.onChange();
    return true;
  }
}

/**
 * Read the `--manifests` file's content: a JSON array of manifests, or an object whose values
 * are manifests keyed by their model name. Throws an Error naming the entry and the problem.
 */
export function parseManifestsFile(text: string, file: string): Manifest[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`);
  }
  const entries: [string, unknown][] = Array.isArray(raw)
    ? raw.map((m, i) => [`[${i}]`, m])
    : raw && typeof raw === 'object' ? Object.entries(raw) : [];
  if (!Array.isArray(raw) && (!raw || typeof raw !== 'object')) throw new Error(`${file} must hold a JSON array of manifests or an object of them by model name`);
  const out: Manifest[] = [];
  const seen = new Set<string>();
  for (const [key, value] of entries) {
    const m = parseManifest(value, `manifest ${key} in ${file}`);
    if (!Array.isArray(raw) && key !== m.name) throw new Error(`manifest '${key}' in ${file} is for model '${m.name}'; the key must be the model name`);
    if (seen.has(m.name)) throw new Error(`${file} has two manifests for model '${m.name}'`);
    seen.add(m.name);
    out.push(m);
  }
  return out;
}
