/**
 * The content-addressed blob cache on disk:
 *
 *   <state-dir>/blobs/sha256/<hex>            complete, verified blobs (read-only by convention)
 *   <state-dir>/blobs/partial/<hex>.partial   a download in progress (resumable)
 *   <state-dir>/blobs/partial/<hex>.json      what the partial came from: {etag, size}
 *   <state-dir>/blobs/partial/<hex>.lock      who is downloading it: {pid}
 *
 * A blob appears in sha256/ only by rename(2) of a fsynced partial whose bytes hashed to its
 * name, so a crash at any moment leaves either no blob or a complete verified one. The lock is
 * cross-process (the CLI and a running agent can share a state dir): a lock whose pid is gone
 * (killed agent) is stale and taken over.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, statfs, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface BlobInfo {
  readonly hex: string;
  readonly bytes: number;
  /** mtime: touched whenever a pull or load uses the blob (LRU order). */
  readonly lastUsed: number;
}

export class BlobStore {
  readonly root: string;
  readonly blobDir: string;
  readonly partialDir: string;

  constructor(stateDir: string) {
    this.root = path.resolve(stateDir, 'blobs');
    this.blobDir = path.join(this.root, 'sha256');
    this.partialDir = path.join(this.root, 'partial');
  }

  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.partialDir, { recursive: true });
  }

  blobPath(hex: string): string {
    return path.join(this.blobDir, hex);
  }

  partialPath(hex: string): string {
    return path.join(this.partialDir, `${hex}.partial`);
  }

  sidecarPath(hex: string): string {
    return path.join(this.partialDir, `${hex}.json`);
  }

  async has(hex: string): Promise<boolean> {
    return (await stat(this.blobPath(hex)).catch(() => undefined))?.isFile() ?? false;
  }

  /** Mark a blob as just used (LRU). */
  async touch(hex: string): Promise<void> {
    const now = new Date();
    await utimes(this.blobPath(hex), now, now).catch(() => undefined);
  }

  async list(): Promise<BlobInfo[]> {
    const names = await readdir(this.blobDir).catch(() => [] as string[]);
    const out: BlobInfo[] = [];
    for (const hex of names.filter((n) => /^[0-9a-f]{64}$/.test(n)).sort()) {
      const st = await stat(this.blobPath(hex)).catch(() => undefined);
      if (st?.isFile()) out.push({ hex, bytes: st.size, lastUsed: st.mtimeMs });
    }
    return out;
  }

  async sizeBytes(): Promise<number> {
    return (await this.list()).reduce((n, b) => n + b.bytes, 0);
  }

  async remove(hex: string): Promise<void> {
    await rm(this.blobPath(hex), { force: true });
  }

  async removePartial(hex: string): Promise<void> {
    await rm(this.partialPath(hex), { force: true });
    await rm(this.sidecarPath(hex), { force: true });
  }

  /** Free bytes on the file system of the cache (statfs). */
  async freeBytes(): Promise<number> {
    const s = await statfs(this.root);
    return Number(s.bavail) * Number(s.bsize);
  }

  /** Take the download lock of a digest; false when a live process holds it. */
  async tryLock(hex: string): Promise<boolean> {
    const file = path.join(this.partialDir, `${hex}.lock`);
    for (let i = 0; i < 2; i++) {
      try {
        const fh = await open(file, 'wx');
        await fh.writeFile(JSON.stringify({ pid: process.pid }));
        await fh.close();
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = await readFile(file, 'utf8').then((t) => Number((JSON.parse(t) as { pid?: number }).pid)).catch(() => NaN);
        if (holder !== process.pid && Number.isInteger(holder) && isAlive(holder)) return false;
        // Stale (the holder died, e.g. SIGKILL) or unreadable: take it over.
        await rm(file, { force: true });
      }
    }
    return false;
  }

  async unlock(hex: string): Promise<void> {
    await rm(path.join(this.partialDir, `${hex}.lock`), { force: true });
  }

  async readSidecar(hex: string): Promise<{ etag?: string; size?: number } | undefined> {
    return readFile(this.sidecarPath(hex), 'utf8').then((t) => JSON.parse(t) as { etag?: string; size?: number }).catch(() => undefined);
  }

  async writeSidecar(hex: string, data: { etag?: string | undefined; size?: number | undefined }): Promise<void> {
    await writeFile(this.sidecarPath(hex), JSON.stringify(data));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** sha256 of a file (or of its first `limit` bytes). */
export async function hashFile(file: string, limit?: number): Promise<{ hash: ReturnType<typeof createHash>; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  if (limit === 0) return { hash, bytes };
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, ...(limit !== undefined ? { end: limit - 1 } : {}) })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hash, bytes };
}
