/**
 * One large file in N parallel byte ranges, written at their offsets into the one partial file.
 *
 * Contracts:
 * - Used only when the manifest gives the size and it is at least the threshold, and only when
 *   the source answers the first range with 206; a 200 (no Range support) falls back to one
 *   stream (`'no-ranges'` is returned, the partial is removed first).
 * - `<hex>.ranges.json` records, per range, how many bytes from its start are on disk. It is
 *   written before the partial is opened and only ever records bytes already written, so after a
 *   cut, a retry or a killed process each range resumes where its record says (rewriting at
 *   most what came after the last record).
 * - The manifest's sha256 decides: the complete file is re-hashed from disk once at the end.
 * - A stall or cut in one range stops all of them (the record is saved) and fails the attempt
 *   as retryable; the caller's retry loop then resumes every range.
 */
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { PullError } from '../errors.js';
import { redactUri } from '../redact.js';
import { hashFile } from './blob-store.js';
import type { BlobRequest, DownloadDeps } from './download.js';

export interface RangeSettings {
  /** Files of at least this many bytes are fetched in ranges. */
  readonly thresholdBytes: number;
  /** How many ranges (concurrent connections) per file. */
  readonly parts: number;
}

interface RangeState {
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
  done: number;
}
interface RangesFile {
  readonly size: number;
  readonly etag: string | undefined;
  readonly ranges: RangeState[];
}

export const rangesPath = (partial: string) => `${partial}.ranges.json`;

export function splitRanges(size: number, parts: number): RangeState[] {
  const n = Math.max(1, Math.min(parts, Math.ceil(size / (1024 * 1024))));
  const step = Math.ceil(size / n);
  const out: RangeState[] = [];
  for (let s = 0; s < size; s += step) out.push({ start: s, end: Math.min(size, s + step), done: 0 });
  return out;
}

async function readRanges(p: string, size: number): Promise<RangesFile | undefined> {
  try {
    const r = JSON.parse(await readFile(p, 'utf8')) as RangesFile;
    if (r.size !== size || !Array.isArray(r.ranges)) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

/** Whether a ranged download of this blob is under way (its record exists). */
export async function hasRangeRecord(partial: string): Promise<boolean> {
  return (await readFile(rangesPath(partial)).catch(() => undefined)) !== undefined;
}

export async function removeRangeRecord(partial: string): Promise<void> {
  await rm(rangesPath(partial), { force: true });
}

/**
 * One attempt: fetch what every range still lacks, then verify. Resolves with the bytes that
 * were already on disk when it started, or `'no-ranges'` when the source ignores Range.
 */
export async function attemptRanged(req: BlobRequest & { size: number }, deps: DownloadDeps, settings: RangeSettings, countFetched: (n: number) => void): Promise<{ kept: number } | 'no-ranges'> {
  const partial = deps.store.partialPath(req.sha256);
  const recordPath = rangesPath(partial);
  const side = await deps.store.readSidecar(req.sha256);
  const record: RangesFile = (await readRanges(recordPath, req.size)) ?? { size: req.size, etag: side?.etag, ranges: splitRanges(req.size, settings.parts) };
  // A record without its partial (removed by hand): every range starts over.
  if (!(await stat(partial).catch(() => undefined))) for (const r of record.ranges) r.done = 0;
  const kept = record.ranges.reduce((a, r) => a + r.done, 0);
  let done = kept;
  if (kept > 0) deps.onResume?.(kept);
  const remaining = req.size - kept;
  const free = await deps.store.freeBytes();
  if (free - remaining < deps.reserveBytes) {
    throw new PullError(`not enough disk space for ${req.label}: ${remaining} bytes still to download, ${free} bytes free on the cache's file system (keeping ${deps.reserveBytes} in reserve); free space or lower --cache-budget`, 'disk', false);
  }
  const save = () => writeFile(recordPath, JSON.stringify(record));
  await save(); // before the partial exists: a partial without a record is never a ranged one
  /** Open range bodies and when each last brought bytes: one silent range is a stall even while others flow. */
  const bodies = new Map<import('node:http').IncomingMessage, number>();
  let failure: unknown;
  const stopAll = (err: unknown) => {
    failure ??= err;
    for (const b of bodies.keys()) b.destroy();
  };
  let stallTimer: (() => void) | undefined;
  const watch = () => {
    stallTimer = deps.clock.setTimer(Math.max(10, Math.min(1000, deps.stallMs / 4)), () => {
      const now = deps.clock.now();
      if ([...bodies.values()].some((at) => now - at >= deps.stallMs)) {
        stopAll(new PullError(`${req.label}: no bytes from ${redactUri(req.uri)} for ${Math.round(deps.stallMs / 1000)} s (stalled at ${done} of ${req.size} bytes)`, 'stall', true));
      }
      watch();
    });
  };
  let sinceSave = 0;
  const openRange = async (r: RangeState) => {
    const opened = await deps.open({ uri: req.uri, sha256: req.sha256, offset: r.start + r.done, end: r.end, ifRange: record.etag, allowHttp: deps.allowHttp, env: deps.env, signal: deps.signal });
    if (opened.status === 200) {
      opened.body.destroy();
      return 'no-ranges' as const;
    }
    if (opened.totalBytes !== undefined && opened.totalBytes !== req.size) {
      opened.body.destroy();
      throw new PullError(`${req.label}: the manifest says ${req.size} bytes but ${redactUri(req.uri)} has ${opened.totalBytes}`, 'size', false);
    }
    return opened;
  };
  const streamRange = async (r: RangeState, opened: Exclude<Awaited<ReturnType<typeof openRange>>, 'no-ranges'>): Promise<void> => {
    bodies.set(opened.body, deps.clock.now());
    if (failure) opened.body.destroy();
    try {
      for await (const chunk of opened.body as AsyncIterable<Buffer>) {
        bodies.set(opened.body, deps.clock.now());
        const room = r.end - r.start - r.done;
        const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
        await fh.write(piece, 0, piece.length, r.start + r.done);
        r.done += piece.length; // only after the write: the record never runs ahead of the disk
        done += piece.length;
        countFetched(piece.length);
        deps.onBytes?.(piece.length);
        deps.onProgress(done, req.size);
        sinceSave += piece.length;
        if (sinceSave >= 8 * 1024 * 1024) {
          sinceSave = 0;
          await save();
        }
        if (r.done >= r.end - r.start) break;
      }
    } catch (err) {
      throw failure ?? err;
    } finally {
      bodies.delete(opened.body);
      opened.body.destroy();
    }
    if (failure) throw failure;
    if (r.done < r.end - r.start) throw new PullError(`${req.label}: the connection for bytes ${r.start}-${r.end - 1} closed after ${r.done} of them`, 'network', true);
  };
  const fetchRange = async (r: RangeState): Promise<void> => {
    if (failure) throw failure;
    const opened = await openRange(r);
    // A source that answered ranges before and now sends the whole file changed under us.
    if (opened === 'no-ranges') throw new PullError(`${redactUri(req.uri)} stopped answering byte ranges mid-download (or the file changed); retrying`, 'network', true);
    await streamRange(r, opened);
  };
  const fh: FileHandle = await open(partial, 'r+').catch(() => open(partial, 'w'));
  watch();
  try {
    deps.onProgress(done, req.size);
    const [first, ...rest] = record.ranges.filter((r) => r.done < r.end - r.start);
    if (first) {
      // The first pending range is the probe: a 200 means the source has no Range support.
      const probe = await openRange(first);
      if (probe === 'no-ranges') {
        await fh.close();
        await rm(partial, { force: true });
        await removeRangeRecord(partial);
        return 'no-ranges';
      }
      const runs = [streamRange(first, probe), ...rest.map((r) => fetchRange(r))].map((p) => p.catch((err) => stopAll(err)));
      await Promise.all(runs);
      if (failure) throw failure;
    }
  } catch (err) {
    await save().catch(() => undefined);
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { kept });
  } finally {
    stallTimer?.();
    await fh.sync().catch(() => undefined);
    await fh.close().catch(() => undefined);
  }
  await save();
  deps.onVerifying?.();
  return { kept };
}

/** The whole file's sha256, from disk: what decides after a ranged download. */
export async function hashWhole(partial: string, size: number): Promise<string> {
  return (await hashFile(partial, size)).hash.digest('hex');
}
