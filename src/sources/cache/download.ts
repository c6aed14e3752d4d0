/**
 * Fetch one blob into the cache: resumable, hashed while it streams, verified against the
 * manifest's sha256, fsynced and renamed into place.
 *
 * Contracts:
 * - What is kept from an earlier attempt (this process or a killed one) is re-hashed, then
 *   the download continues with `Range: bytes=<kept>-` (and If-Range with the ETag it came
 *   from): a server answering 200 instead of 206 means start over from byte 0.
 * - No bytes for `stallMs` is a stall: the connection is dropped and retried. Stalls, cuts,
 *   5xx/429 are retried with backoff up to `retry.retries` times; 4xx, digest mismatches and a
 *   full disk fail at once.
 * - A digest mismatch deletes the download; the error names both digests.
 * - Free disk space is checked (statfs) before the transfer and every 64 MiB during it.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, stat, truncate } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Clock } from '../../util/clock.js';
import { PullError, digestMismatch, isTransientNetworkError } from '../errors.js';
import type { SourceOpener } from '../fetchers/open-source.js';
import { backoffMs, shouldRetry, type RetrySettings } from '../policy.js';
import { redactUri } from '../redact.js';
import { hashFile, type BlobStore } from './blob-store.js';
import { attemptRanged, hasRangeRecord, hashWhole, removeRangeRecord, type RangeSettings } from './ranged-download.js';

export interface BlobRequest {
  readonly sha256: string;
  readonly uri: string;
  readonly size?: number | undefined;
  /** For messages: the file's path in the manifest. */
  readonly label: string;
}

export interface DownloadDeps {
  readonly store: BlobStore;
  readonly open: SourceOpener;
  readonly clock: Clock;
  readonly env: NodeJS.ProcessEnv;
  readonly allowHttp: boolean;
  readonly stallMs: number;
  readonly retry: RetrySettings;
  readonly random: () => number;
  /** Bytes the disk must keep free beyond the download. */
  readonly reserveBytes: number;
  readonly signal: AbortSignal;
  /** Large files in parallel byte ranges (see ranged-download.ts); absent = one stream per file. */
  readonly ranges?: RangeSettings | undefined;
  /** Bytes on disk so far (kept + new) and the total when known; called per chunk. */
  readonly onProgress: (done: number, total: number | undefined) => void;
  /** New bytes received from the network (metrics). */
  readonly onBytes?: (n: number) => void;
  /** A retry is about to happen (logged by the caller). */
  readonly onRetry?: (err: PullError, attempt: number, delayMs: number) => void;
  /** An attempt starts from a byte kept by an earlier one (this process or a killed one). */
  readonly onResume?: (fromByte: number) => void;
  /** The download finished transferring and is being verified. */
  readonly onVerifying?: () => void;
}

export interface BlobResult {
  /** Bytes fetched over the network by this call (0 when the blob was cached). */
  readonly fetchedBytes: number;
  readonly cached: boolean;
  /** Bytes reused from an earlier interrupted download. */
  readonly resumedFrom: number;
}

const DISK_CHECK_EVERY = 64 * 1024 * 1024;

function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new PullError('the download was cancelled', 'aborted', false));
    const onAbort = () => {
      cancel();
      reject(new PullError('the download was cancelled', 'aborted', false));
    };
    const cancel = clock.setTimer(ms, () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function asPullError(err: unknown, req: BlobRequest, signal: AbortSignal): PullError {
  if (err instanceof PullError) return err;
  if (signal.aborted) return new PullError('the download was cancelled', 'aborted', false);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new PullError(`out of disk space while downloading ${req.label}: free space on the state dir's file system and pull again (the part downloaded so far is kept)`, 'disk', false);
  const transient = isTransientNetworkError(err) || /aborted|premature|socket hang up|terminated/i.test((err as Error).message ?? '');
  return new PullError(`download of ${req.label} from ${redactUri(req.uri)} failed: ${code ?? (err as Error).message}`, 'network', transient);
}

export async function downloadBlob(req: BlobRequest, deps: DownloadDeps): Promise<BlobResult> {
  const { store, clock } = deps;
  await store.init();
  if (await store.has(req.sha256)) {
    await store.touch(req.sha256);
    return { fetchedBytes: 0, cached: true, resumedFrom: 0 };
  }
  // Another process (the CLI, or an agent) may be fetching this digest: wait for it.
  while (!(await store.tryLock(req.sha256))) {
    if (await store.has(req.sha256)) return { fetchedBytes: 0, cached: true, resumedFrom: 0 };
    await sleep(clock, 250, deps.signal);
  }
  try {
    if (await store.has(req.sha256)) return { fetchedBytes: 0, cached: true, resumedFrom: 0 };
    let fetched = 0;
    let resumedFrom: number | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await attemptBlob(req, deps, (n) => (fetched += n));
        resumedFrom ??= r.kept;
        return { fetchedBytes: fetched, cached: false, resumedFrom };
      } catch (err) {
        const e = asPullError(err, req, deps.signal);
        resumedFrom ??= (e as PullError & { kept?: number }).kept ?? 0;
        if (!shouldRetry(e.retryable, attempt, deps.retry)) throw e;
        const delay = backoffMs(attempt, deps.retry, deps.random());
        deps.onRetry?.(e, attempt, delay);
        await sleep(clock, delay, deps.signal);
      }
    }
  } finally {
    await store.unlock(req.sha256);
  }
}

/**
 * Parallel ranges for a large file of known size (unless a single-stream partial is already
 * under way, which is simply continued), one stream otherwise or when the source has no ranges.
 */
async function attemptBlob(req: BlobRequest, deps: DownloadDeps, countFetched: (n: number) => void): Promise<{ kept: number }> {
  const { ranges, store } = deps;
  const size = req.size;
  if (ranges && ranges.parts > 1 && size !== undefined && size >= ranges.thresholdBytes) {
    const partial = store.partialPath(req.sha256);
    const singleUnderWay = !(await hasRangeRecord(partial)) && ((await stat(partial).catch(() => undefined))?.size ?? 0) > 0;
    if (!singleUnderWay) {
      const r = await attemptRanged({ ...req, size }, deps, ranges, countFetched);
      if (r !== 'no-ranges') {
        await finishBlob(req, deps, await hashWhole(partial, size), size);
        return r;
      }
    }
  }
  return attemptOnce(req, deps, countFetched);
}

async function checkDisk(deps: DownloadDeps, remaining: number, label: string): Promise<void> {
  const free = await deps.store.freeBytes();
  if (free - remaining < deps.reserveBytes) {
    throw new PullError(`not enough disk space for ${label}: ${remaining} bytes still to download, ${free} bytes free on the cache's file system (keeping ${deps.reserveBytes} in reserve); free space or lower --cache-budget`, 'disk', false);
  }
}

async function attemptOnce(req: BlobRequest, deps: DownloadDeps, countFetched: (n: number) => void): Promise<{ kept: number }> {
  const { store } = deps;
  const partial = store.partialPath(req.sha256);
  // A ranged download's partial is sparse: its size says nothing about what one stream kept.
  if (await hasRangeRecord(partial)) {
    await store.removePartial(req.sha256);
    await removeRangeRecord(partial);
  }
  let kept = (await stat(partial).catch(() => undefined))?.size ?? 0;
  if (req.size !== undefined && kept > req.size) {
    await truncate(partial, 0);
    kept = 0;
  }
  // Re-hash what an earlier attempt kept: the disk, not memory, is the truth after a crash.
  let hash = kept > 0 ? (await hashFile(partial, kept)).hash : createHash('sha256');
  let done = kept;
  let total = req.size;
  const startedKept = kept;
  if (req.size === undefined || kept < req.size) {
    await checkDisk(deps, (req.size ?? 0) - kept, req.label);
    if (kept > 0) deps.onResume?.(kept);
    const side = await store.readSidecar(req.sha256);
    const opened = await deps.open({ uri: req.uri, sha256: req.sha256, offset: kept, ifRange: side?.etag, allowHttp: deps.allowHttp, env: deps.env, signal: deps.signal });
    if (opened.status === 200 && kept > 0) {
      // The source sent the whole file (no range support, or it changed): start over.
      kept = 0;
      done = 0;
      hash = createHash('sha256');
    }
    if (opened.totalBytes !== undefined) {
      if (req.size !== undefined && opened.totalBytes !== req.size) {
        opened.body.destroy();
        await store.removePartial(req.sha256);
        throw new PullError(`${req.label}: the manifest says ${req.size} bytes but ${redactUri(req.uri)} has ${opened.totalBytes}`, 'size', false);
      }
      total = opened.totalBytes;
    }
    await store.writeSidecar(req.sha256, { etag: opened.etag, size: total });
    if (total !== undefined) deps.onProgress(done, total);

    let lastChunkAt = deps.clock.now();
    let stallTimer: (() => void) | undefined;
    const watch = () => {
      stallTimer = deps.clock.setTimer(Math.max(10, Math.min(1000, deps.stallMs / 4)), () => {
        if (deps.clock.now() - lastChunkAt >= deps.stallMs) {
          opened.body.destroy(new PullError(`${req.label}: no bytes from ${redactUri(req.uri)} for ${Math.round(deps.stallMs / 1000)} s (stalled at ${done} of ${total ?? '?'} bytes)`, 'stall', true));
        } else watch();
      });
    };
    watch();
    let sinceDiskCheck = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        lastChunkAt = deps.clock.now();
        hash.update(chunk);
        done += chunk.length;
        countFetched(chunk.length);
        deps.onBytes?.(chunk.length);
        deps.onProgress(done, total);
        sinceDiskCheck += chunk.length;
        if (sinceDiskCheck < DISK_CHECK_EVERY) return cb(null, chunk);
        sinceDiskCheck = 0;
        checkDisk(deps, total === undefined ? 0 : total - done, req.label).then(() => cb(null, chunk), cb);
      },
    });
    try {
      await pipeline(opened.body, meter, createWriteStream(partial, { flags: kept > 0 ? 'a' : 'w', highWaterMark: 1 << 20 }));
    } catch (err) {
      throw Object.assign(asPullError(err, req, deps.signal), { kept: startedKept });
    } finally {
      stallTimer?.();
    }
    if (total !== undefined && done < total) {
      throw Object.assign(new PullError(`${req.label}: the connection closed after ${done} of ${total} bytes`, 'network', true), { kept: startedKept });
    }
  }
  deps.onVerifying?.();
  const fh = await open(partial, 'r+');
  await fh.sync();
  await fh.close();
  await finishBlob(req, deps, hash.digest('hex'), done);
  return { kept: startedKept };
}

/** Compare with the manifest, then rename into the cache (and fsync the directory). */
async function finishBlob(req: BlobRequest, deps: DownloadDeps, actual: string, done: number): Promise<void> {
  const { store } = deps;
  const partial = store.partialPath(req.sha256);
  if (actual !== req.sha256) {
    await store.removePartial(req.sha256);
    throw digestMismatch(req.label, req.sha256, actual);
  }
  if (req.size !== undefined && done !== req.size) {
    await store.removePartial(req.sha256);
    throw new PullError(`${req.label}: ${done} bytes downloaded, the manifest says ${req.size}`, 'size', false);
  }
  await rename(partial, store.blobPath(req.sha256));
  const dir = await open(store.blobDir, 'r');
  await dir.sync().catch(() => undefined); // directory fsync: the rename survives a power cut
  await dir.close();
  await store.removePartial(req.sha256);
  await removeRangeRecord(partial);
}
