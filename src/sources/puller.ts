/**
 * The one implementation behind `gpu-agent pull`, the load API's `source` and the
 * coordinator's `load_model` with a source: fetch every file of a manifest into the blob cache
 * (one transfer per digest, shared by every waiter), build the version folder, record the
 * provenance; `activate` makes a pulled version the one the repository serves.
 *
 * Progress: each pull has a state (DOWNLOADING → VERIFYING, or UNAVAILABLE with the reason),
 * bytes done/total, rate and ETA; `onProgress` hears of it at most every `progressIntervalMs`
 * and on every state change.
 */
import type { RangeSettings } from './cache/ranged-download.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parsePbtxtConfig } from '../repository/pbtxt-config.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { BlobStore } from './cache/blob-store.js';
import { downloadBlob, type BlobResult } from './cache/download.js';
import { PullError } from './errors.js';
import { openSource, type SourceOpener } from './fetchers/open-source.js';
import { manifestDigest, type Manifest } from './manifest.js';
import { DEFAULT_RETRY, RateMeter, planCacheEviction, shouldReport, type RetrySettings } from './policy.js';
import { RecordStore, recordFiles, sourceOf, type PullRecord, type Requester } from './records.js';
import { envSecrets, redactUri, scrub } from './redact.js';
import { activateVersion, buildVersionFolder, isFreeModelDir, removeVersionFolder } from './version-folder.js';

export type PullState = 'DOWNLOADING' | 'VERIFYING' | 'UNAVAILABLE';

export interface PullProgress {
  readonly name: string;
  readonly version: number;
  readonly manifestDigest: string;
  state: PullState;
  bytesDone: number;
  bytesTotal: number | undefined;
  rateBytesPerSecond: number;
  etaSeconds: number | undefined;
  reason: string;
}

export interface PullerOptions {
  readonly stateDir: string;
  readonly modelsDir: string;
  readonly allowHttp: boolean;
  /** Bytes the blob cache may take; undefined = no limit. */
  readonly cacheBudget: number | undefined;
  readonly stallMs: number;
  readonly retry?: RetrySettings;
  /** Large files in parallel byte ranges; absent = one stream per file. */
  readonly ranges?: RangeSettings;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
  readonly open?: SourceOpener;
  readonly random?: () => number;
  /** Bytes to keep free on the cache's disk. Default 64 MiB. */
  readonly reserveBytes?: number;
  readonly progressIntervalMs?: number;
  readonly onProgress?: (p: Readonly<PullProgress>) => void;
  /** Digests no eviction may remove (blobs of loaded or pinned versions). */
  readonly protectedDigests?: () => Promise<ReadonlySet<string>> | ReadonlySet<string>;
  readonly onBytes?: (n: number) => void;
  readonly onEvict?: (hex: string, bytes: number) => void;
  readonly onVerificationFailure?: () => void;
  /** A pull completed: its wall time and the bytes of the version. */
  readonly onPulled?: (seconds: number, bytes: number) => void;
}

interface Flight {
  readonly promise: Promise<BlobResult>;
  readonly listeners: Set<(done: number, total: number | undefined) => void>;
  readonly verifying: Set<() => void>;
}

export class ModelPuller {
  readonly blobs: BlobStore;
  readonly records: RecordStore;
  private readonly flights = new Map<string, Flight>();
  private readonly pulls = new Map<string, Promise<PullRecord>>();
  private readonly progressByKey = new Map<string, PullProgress>();
  private readonly abort = new AbortController();
  private readonly secrets: string[];

  constructor(private readonly opts: PullerOptions) {
    this.blobs = new BlobStore(opts.stateDir);
    this.records = new RecordStore(opts.stateDir);
    this.secrets = envSecrets(opts.env ?? process.env);
  }

  /** Current and failed pulls (a failure stays until that version is pulled again). */
  progress(): PullProgress[] {
    return [...this.progressByKey.values()].map((p) => ({ ...p }));
  }

  /** Digests a pull in progress is fetching (never evicted). */
  inFlightDigests(): Set<string> {
    return new Set(this.flights.keys());
  }

  /** Fetch a manifest's files and build its version folder; resolves with its record. Same manifest twice → one pull. */
  pull(manifest: Manifest, by: Requester): Promise<PullRecord> {
    const digest = manifestDigest(manifest);
    const key = `${manifest.name}/${manifest.version}/${digest}`;
    let p = this.pulls.get(key);
    if (!p) {
      p = this.doPull(manifest, digest, by).finally(() => this.pulls.delete(key));
      this.pulls.set(key, p);
    }
    return p;
  }

  private modelDir(name: string): string {
    return path.resolve(this.opts.modelsDir, name);
  }

  private async doPull(manifest: Manifest, digest: string, by: Requester): Promise<PullRecord> {
    const { logger, clock } = this.opts;
    const key = `${manifest.name}/${manifest.version}`;
    // Refused up front, even when the blob happens to be cached: the policy is about the manifest.
    const plain = manifest.files.find((f) => /^http:\/\//i.test(f.uri));
    if (plain && !this.opts.allowHttp) {
      throw new PullError(`refusing plain http:// for ${redactUri(plain.uri)} (${plain.path}): bytes and credentials would travel unencrypted; use https:// or start with --allow-http`, 'refused', false);
    }
    const existing = await this.records.get(manifest.name, manifest.version);
    if (!existing && !(await this.records.hasModel(manifest.name)) && !(await isFreeModelDir(this.modelDir(manifest.name)))) {
      throw new PullError(`the model folder ${this.modelDir(manifest.name)} exists and was not created by a pull; pull under another name or remove it`, 'refused', false);
    }
    const sizes = manifest.files.map((f) => f.size);
    const progress: PullProgress = {
      name: manifest.name, version: manifest.version, manifestDigest: digest, state: 'DOWNLOADING',
      bytesDone: 0, bytesTotal: sizes.every((s) => s !== undefined) ? sizes.reduce((a, b) => a! + b!, 0) : undefined,
      rateBytesPerSecond: 0, etaSeconds: undefined, reason: '',
    };
    this.progressByKey.set(key, progress);
    const meter = new RateMeter();
    // Bytes that came from the cache, not the network: counted as done, never as speed.
    let cachedBytes = 0;
    let lastReport: number | undefined;
    let lastState: PullState | undefined;
    const report = () => {
      const now = clock.now();
      meter.record(now, progress.bytesDone - cachedBytes);
      progress.rateBytesPerSecond = meter.rate();
      progress.etaSeconds = meter.etaSeconds(progress.bytesDone, progress.bytesTotal);
      if (!shouldReport(lastReport, now, this.opts.progressIntervalMs ?? 250, progress.state !== lastState)) return;
      lastReport = now;
      lastState = progress.state;
      try {
        this.opts.onProgress?.({ ...progress });
      } catch { /* a listener never breaks a pull */ }
    };
    report();
    const started = clock.now();
    try {
      const done = new Map<string, number>();
      const totals = new Map<string, number | undefined>();
      const unique = [...new Map(manifest.files.map((f) => [f.sha256, f])).values()];
      await this.makeRoom(unique.reduce((n, f) => n + (f.size ?? 0), 0));
      await Promise.all(unique.map(async (f) => {
        const result = await this.fetchBlob(f, (d, t) => {
          done.set(f.sha256, d);
          totals.set(f.sha256, t);
          progress.bytesDone = [...done.values()].reduce((a, b) => a + b, 0);
          if (progress.bytesTotal === undefined && unique.every((u) => totals.get(u.sha256) !== undefined)) {
            progress.bytesTotal = unique.reduce((n, u) => n + totals.get(u.sha256)!, 0);
          }
          report();
        }, () => {
          // VERIFYING once every file has all its bytes (the others may still be streaming).
          if (unique.every((u) => totals.get(u.sha256) !== undefined && done.get(u.sha256) === totals.get(u.sha256))) {
            progress.state = 'VERIFYING';
            report();
          }
        });
        if (result.cached) {
          const bytes = (await this.blobs.list()).find((b) => b.hex === f.sha256)?.bytes ?? f.size ?? 0;
          done.set(f.sha256, bytes);
          totals.set(f.sha256, bytes);
          cachedBytes += bytes;
        }
      }));
      progress.state = 'VERIFYING';
      progress.bytesDone = [...done.values()].reduce((a, b) => a + b, 0);
      report();
      const record: PullRecord = {
        name: manifest.name, version: manifest.version, manifestDigest: digest, source: sourceOf(manifest),
        files: recordFiles(manifest).map((f) => ({ ...f, size: done.get(f.sha256) ?? f.size })),
        config: await this.versionConfig(manifest),
        pulledAt: new Date().toISOString(), by,
      };
      await buildVersionFolder(this.modelDir(manifest.name), record, (h) => this.blobs.blobPath(h), existing);
      await this.records.put(record);
      this.progressByKey.delete(key);
      this.opts.onPulled?.((clock.now() - started) / 1000, progress.bytesDone);
      logger.info({ model: manifest.name, version: manifest.version, manifestDigest: digest, source: record.source, by, bytes: progress.bytesDone, seconds: Math.round(clock.now() - started) / 1000 }, 'model pulled');
      return record;
    } catch (err) {
      const e = err instanceof PullError ? err : new PullError((err as Error).message, 'network', false);
      if (e.kind === 'digest') this.opts.onVerificationFailure?.();
      progress.state = 'UNAVAILABLE';
      progress.reason = scrub(e.message, this.secrets);
      report();
      logger.error({ model: manifest.name, version: manifest.version, by, err: progress.reason }, 'pull failed');
      throw new PullError(progress.reason, e.kind, e.retryable);
    }
  }

  private fetchBlob(f: Manifest['files'][number], onProgress: (d: number, t: number | undefined) => void, onVerifying: () => void): Promise<BlobResult> {
    let flight = this.flights.get(f.sha256);
    if (!flight) {
      const listeners = new Set<(d: number, t: number | undefined) => void>();
      const verifying = new Set<() => void>();
      const promise = downloadBlob({ sha256: f.sha256, uri: f.uri, size: f.size, label: f.path }, {
        store: this.blobs,
        open: this.opts.open ?? openSource,
        clock: this.opts.clock,
        env: this.opts.env ?? process.env,
        allowHttp: this.opts.allowHttp,
        stallMs: this.opts.stallMs,
        retry: this.opts.retry ?? DEFAULT_RETRY,
        ranges: this.opts.ranges,
        random: this.opts.random ?? Math.random,
        reserveBytes: this.opts.reserveBytes ?? 64 * 1024 * 1024,
        signal: this.abort.signal,
        onProgress: (d, t) => listeners.forEach((l) => l(d, t)),
        onVerifying: () => verifying.forEach((l) => l()),
        ...(this.opts.onBytes ? { onBytes: this.opts.onBytes } : {}),
        onResume: (fromByte) => this.opts.logger.info({ file: f.path, sha256: f.sha256, fromByte }, 'resuming download from what is on disk'),
        onRetry: (err, attempt, delayMs) => this.opts.logger.warn({ file: f.path, attempt, delayMs, err: scrub(err.message, this.secrets) }, 'download interrupted; retrying'),
      }).finally(() => this.flights.delete(f.sha256));
      flight = { promise, listeners, verifying };
      this.flights.set(f.sha256, flight);
    }
    flight.listeners.add(onProgress);
    flight.verifying.add(onVerifying);
    return flight.promise.finally(() => {
      flight.listeners.delete(onProgress);
      flight.verifying.delete(onVerifying);
    });
  }

  /** The JSON config the version is served with: inline config, else its config file, plus the version policy. */
  private async versionConfig(m: Manifest): Promise<Record<string, unknown>> {
    let base: Record<string, unknown> = {};
    if (m.config) base = { ...m.config };
    else {
      const json = m.files.find((f) => f.path === 'config.json');
      const pbtxt = m.files.find((f) => f.path === 'config.pbtxt');
      if (json) {
        try {
          base = JSON.parse(await readFile(this.blobs.blobPath(json.sha256), 'utf8')) as Record<string, unknown>;
        } catch (err) {
          throw new PullError(`config.json of '${m.name}' version ${m.version} is not valid JSON: ${(err as Error).message}`, 'refused', false);
        }
      } else if (pbtxt) {
        try {
          base = JSON.parse(JSON.stringify(parsePbtxtConfig('config.pbtxt', await readFile(this.blobs.blobPath(pbtxt.sha256), 'utf8')))) as Record<string, unknown>;
        } catch (err) {
          throw new PullError(`config.pbtxt of '${m.name}' version ${m.version}: ${(err as Error).message}`, 'refused', false);
        }
      }
    }
    const onnx = m.files.filter((f) => !f.path.includes('/') && f.path.endsWith('.onnx')).map((f) => f.path);
    const file = typeof base.default_model_filename === 'string' ? base.default_model_filename : onnx.includes('model.onnx') ? 'model.onnx' : onnx[0]!;
    return { ...base, ...(file !== 'model.onnx' ? { default_model_filename: file } : {}), version_policy: { specific: { versions: [m.version] } } };
  }

  /** Make a pulled version the one the repository serves (no download). */
  async activate(name: string, version: number): Promise<PullRecord> {
    const r = await this.records.get(name, version);
    if (!r) throw new PullError(`version ${version} of '${name}' was never pulled on this node`, 'refused', false);
    if (r.evicted) throw new PullError(`version ${version} of '${name}' is no longer cached (${r.evicted}); pull it again`, 'refused', false);
    for (const f of r.files) {
      if (!(await this.blobs.has(f.sha256))) throw new PullError(`version ${version} of '${name}': blob ${f.sha256} (${f.path}) is no longer cached; pull it again`, 'refused', false);
      await this.blobs.touch(f.sha256);
    }
    await buildVersionFolder(this.modelDir(name), r, (h) => this.blobs.blobPath(h), r);
    await activateVersion(this.modelDir(name), r);
    return r;
  }

  /** The version a rollback goes to: the one asked for, else the newest cached one below `current`. */
  async rollbackTarget(name: string, current: number | undefined, asked?: number): Promise<PullRecord> {
    const all = await this.records.list(name);
    if (all.length === 0) throw new PullError(`'${name}' has no pulled versions on this node`, 'refused', false);
    if (asked !== undefined) {
      const r = all.find((x) => x.version === asked);
      if (!r) throw new PullError(`version ${asked} of '${name}' was never pulled on this node (pulled: ${all.map((x) => x.version).join(', ')})`, 'refused', false);
      return r;
    }
    const below = all.filter((r) => !r.evicted && (current === undefined || r.version < current)).sort((a, b) => b.version - a.version)[0];
    if (!below) throw new PullError(`'${name}' has no cached version below ${current ?? '?'} to roll back to`, 'refused', false);
    return below;
  }

  /** Evict least-recently-used unprotected blobs until `incoming` more bytes fit the budget. */
  async makeRoom(incoming: number): Promise<void> {
    const budget = this.opts.cacheBudget;
    if (budget === undefined) return;
    const prot = new Set([...(await this.opts.protectedDigests?.() ?? []), ...this.flights.keys()]);
    const blobs = await this.blobs.list();
    const plan = planCacheEviction(blobs.map((b) => ({ ...b, protected: prot.has(b.hex) })), budget, incoming);
    if (!plan.ok) throw new PullError(plan.reason, 'budget', false);
    for (const hex of plan.evict) await this.evict(hex, blobs.find((b) => b.hex === hex)?.bytes ?? 0, 'evicted to fit the cache budget');
  }

  /** Remove a blob and every version folder that links it; their records say why. */
  async evict(hex: string, bytes: number, why: string): Promise<void> {
    for (const r of await this.records.list()) {
      if (r.evicted || !r.files.some((f) => f.sha256 === hex)) continue;
      await removeVersionFolder(this.modelDir(r.name), r.version);
      await this.records.put({ ...r, evicted: `${why}: blob ${hex.slice(0, 12)}…` });
    }
    await this.blobs.remove(hex);
    this.opts.onEvict?.(hex, bytes);
    this.opts.logger.info({ blob: hex, bytes, why }, 'cache blob evicted');
  }

  /** `cache gc`: evict unreferenced blobs beyond the budget, and blobs no record names at all. */
  async gc(): Promise<{ removed: string[]; freedBytes: number }> {
    const referenced = new Set((await this.records.list()).filter((r) => !r.evicted).flatMap((r) => r.files.map((f) => f.sha256)));
    const removed: string[] = [];
    let freed = 0;
    for (const b of await this.blobs.list()) {
      if (!referenced.has(b.hex) && !this.flights.has(b.hex)) {
        await this.evict(b.hex, b.bytes, 'no pulled version references it');
        removed.push(b.hex);
        freed += b.bytes;
      }
    }
    const before = new Set((await this.blobs.list()).map((b) => b.hex));
    await this.makeRoom(0);
    const after = new Set((await this.blobs.list()).map((b) => b.hex));
    for (const hex of before) if (!after.has(hex)) removed.push(hex);
    return { removed, freedBytes: freed };
  }

  /** Stop every download (agent destroy). Partials stay for the next start. */
  destroy(): void {
    this.abort.abort();
  }
}
