/**
 * Pull, then load: what the load API's `source` parameter and the coordinator's `load_model`
 * with a source do, plus rollback. The download never touches what serves: version N keeps
 * serving while N+1 downloads and loads (the model manager brings N+1 up before N goes); a
 * failed N+1 leaves N serving and the repository config pointing at N again.
 *
 * Every pull, load and rollback is logged with who asked and the outcome.
 */
import type { IndexEntry, ModelManager } from '../sessions/model-manager.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../errors.js';
import { PullError } from './errors.js';
import { manifestDigest, type Manifest } from './manifest.js';
import type { ModelPuller, PullProgress } from './puller.js';
import type { PullRecord, Requester } from './records.js';
import { sourceOf } from './records.js';

export interface Provenance {
  readonly manifest_digest: string;
  readonly source: string;
  readonly pulled_at: string;
  readonly pulled_by: Requester;
}

export type PulledIndexEntry = Omit<IndexEntry, 'state'> & {
  readonly state?: IndexEntry['state'] | 'DOWNLOADING' | 'VERIFYING';
  readonly progress?: { bytes_done: number; bytes_total?: number; rate_bytes_per_second: number; eta_seconds?: number };
  readonly provenance?: Provenance;
};

type Models = Pick<ModelManager, 'load' | 'status'>;

export function provenanceOf(r: PullRecord): Provenance {
  return { manifest_digest: r.manifestDigest, source: r.source, pulled_at: r.pulledAt, pulled_by: r.by };
}

export function progressFields(p: PullProgress): NonNullable<PulledIndexEntry['progress']> {
  return {
    bytes_done: p.bytesDone,
    ...(p.bytesTotal !== undefined ? { bytes_total: p.bytesTotal } : {}),
    rate_bytes_per_second: Math.round(p.rateBytesPerSecond),
    ...(p.etaSeconds !== undefined ? { eta_seconds: Math.round(p.etaSeconds * 10) / 10 } : {}),
  };
}

export class PullService {
  constructor(private readonly deps: { puller: ModelPuller; models: Models; logger: Logger; pinned: readonly string[] }) {}

  get puller(): ModelPuller {
    return this.deps.puller;
  }

  /** The highest READY (else LOADING) version of a model, if any. */
  private servingVersion(name: string): number | undefined {
    const vs = this.deps.models.status(name)?.versions ?? [];
    return (vs.filter((v) => v.state === 'READY').at(-1) ?? vs.filter((v) => v.state === 'LOADING').at(-1))?.version;
  }

  /** Pull a manifest, make it the served version and load it; resolves when READY. */
  async pullAndLoad(manifest: Manifest, by: Requester): Promise<PullRecord> {
    const { logger, puller, models } = this.deps;
    const log = { model: manifest.name, version: manifest.version, manifestDigest: manifestDigest(manifest), source: sourceOf(manifest), by };
    logger.info(log, 'pull and load requested');
    const previous = this.servingVersion(manifest.name);
    try {
      const record = await puller.pull(manifest, by);
      await puller.activate(manifest.name, manifest.version);
      try {
        await models.load(manifest.name);
      } catch (err) {
        if (previous !== undefined && previous !== manifest.version) await puller.activate(manifest.name, previous).catch(() => undefined);
        throw err;
      }
      logger.info({ ...log, outcome: 'READY' }, 'pulled model loaded');
      return record;
    } catch (err) {
      logger.error({ ...log, outcome: 'failed', err: messageOf(err) }, 'pull and load failed');
      throw err;
    }
  }

  /** Serve an earlier pulled version again, from the cache only (no network). */
  async rollback(name: string, version: number | undefined, by: Requester): Promise<PullRecord> {
    const { logger, puller, models } = this.deps;
    const current = this.servingVersion(name);
    const log = { model: name, from: current, asked: version, by };
    logger.info(log, 'rollback requested');
    try {
      const target = await puller.rollbackTarget(name, current, version);
      await puller.activate(name, target.version);
      try {
        await models.load(name);
      } catch (err) {
        if (current !== undefined && current !== target.version) await puller.activate(name, current).catch(() => undefined);
        throw err;
      }
      logger.info({ ...log, to: target.version, manifestDigest: target.manifestDigest, outcome: 'READY' }, 'rolled back');
      return target;
    } catch (err) {
      logger.error({ ...log, outcome: 'failed', err: messageOf(err) }, 'rollback failed');
      throw err instanceof PullError ? err : err;
    }
  }

  /** Blobs of loaded (LOADING/READY) versions and of pinned models: never evicted. */
  async protectedDigests(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of await this.deps.puller.records.list()) {
      const v = this.deps.models.status(r.name)?.versions.find((x) => x.version === r.version);
      if (this.deps.pinned.includes(r.name) || v?.state === 'READY' || v?.state === 'LOADING') for (const f of r.files) out.add(f.sha256);
    }
    return out;
  }

  /**
   * Pulls of one model (one version when asked) still DOWNLOADING or VERIFYING, with their
   * progress: what the model's statistics show next to (or instead of) its READY versions.
   */
  inProgress(name: string, version?: string): Array<{ version: string; state: 'DOWNLOADING' | 'VERIFYING'; progress: NonNullable<PulledIndexEntry['progress']> }> {
    const out: Array<{ version: string; state: 'DOWNLOADING' | 'VERIFYING'; progress: NonNullable<PulledIndexEntry['progress']> }> = [];
    for (const p of this.deps.puller.progress()) {
      if (p.name !== name || (version !== undefined && String(p.version) !== version)) continue;
      if (p.state === 'DOWNLOADING' || p.state === 'VERIFYING') out.push({ version: String(p.version), state: p.state, progress: progressFields(p) });
    }
    return out.sort((a, b) => Number(a.version) - Number(b.version));
  }

  /** The repository index with pulls in progress (DOWNLOADING/VERIFYING, failures) and provenance. */
  async decorateIndex(entries: readonly IndexEntry[], readyOnly: boolean): Promise<PulledIndexEntry[]> {
    const out: PulledIndexEntry[] = [...entries];
    if (!readyOnly) {
      for (const p of this.deps.puller.progress()) {
        const same = out.findIndex((e) => e.name === p.name && e.version === String(p.version));
        if (same >= 0 && (out[same]!.state === 'READY' || out[same]!.state === 'LOADING')) continue;
        const entry: PulledIndexEntry = { name: p.name, version: String(p.version), state: p.state, reason: p.reason, progress: progressFields(p) };
        const bare = out.findIndex((e) => e.name === p.name && e.version === undefined);
        if (same >= 0) out[same] = entry;
        else if (bare >= 0) out[bare] = entry;
        else out.push(entry);
      }
    }
    const records = await this.deps.puller.records.list();
    return out.map((e) => {
      const r = e.version !== undefined ? records.find((x) => x.name === e.name && String(x.version) === e.version) : undefined;
      return r ? { ...e, provenance: provenanceOf(r) } : e;
    });
  }
}
