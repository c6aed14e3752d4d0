/**
 * Returning the memory a released onnxruntime session leaves inside malloc to the OS.
 *
 * What holds the memory across load/unload cycles (measured, see README "Memory across
 * load/unload"): not our objects (the JS heap, V8's external memory and array buffers are flat
 * after a GC, and the live malloc bytes are the same after 10 and after 300 cycles), but glibc's
 * malloc: the session's freed chunks lie between chunks still in use, so they stay resident
 * (13 MiB in use, 26 MiB free but resident after 300 mlp cycles). `malloc_trim(0)` returns
 * every whole free page; it runs after each unload, eviction and reload, and after a failed
 * load (wherever sessions were released).
 *
 * The addon is optional (dist/native/malloc-release.node, built by `npm run build` where a C
 * compiler exists; see native/malloc-release.c). Without it `release()` does nothing and
 * `status()` says why.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../util/logger.js';

interface Addon {
  readonly supported: boolean;
  trim(): boolean;
  info(): { arena?: number; inUse?: number; free?: number; mmapped?: number };
}

export interface AllocatorStatus {
  /** True when freed memory can be returned (the addon loaded and the C library has malloc_trim). */
  readonly available: boolean;
  /** Why not, when not available. */
  readonly reason: string | undefined;
  /** Releases done in this process (one per unload, eviction round, reload or failed load). */
  readonly releases: number;
  /** RSS given back by them in total (bytes; RSS before minus after each, when it went down). */
  readonly returnedBytes: number;
  /** Duration of the last release (ms): it runs on the event loop's thread. */
  readonly lastMs: number;
}

const require = createRequire(import.meta.url);

/** The package root: the first folder above this file with a package.json (src/ or dist/src/). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

export const ADDON_PATH = path.join(packageRoot(), 'dist', 'native', 'malloc-release.node');

let enabled = true;

/** --release-freed-memory: false turns every release into a no-op (for comparison, or if it ever misbehaves). */
export function setFreedMemoryRelease(on: boolean): void {
  enabled = on;
}

let addon: Addon | undefined;
let reason: string | undefined;
let loaded = false;
let releases = 0;
let returnedBytes = 0;
let lastMs = 0;

function load(): Addon | undefined {
  if (loaded) return addon;
  loaded = true;
  if (process.platform !== 'linux') {
    reason = `not needed on ${process.platform}`;
    return undefined;
  }
  try {
    const a = require(ADDON_PATH) as Addon;
    if (a.supported) addon = a;
    else reason = 'the C library has no malloc_trim (not glibc)';
  } catch (err) {
    reason = `${ADDON_PATH} cannot be loaded (${(err as Error).message.split('\n')[0]}); npm run build builds it where a C compiler exists`;
  }
  return addon;
}

/**
 * Return the free memory malloc keeps to the OS, now. Synchronous (a few ms for tens of MiB);
 * call it where sessions were just released, not per request.
 */
export function releaseFreedMemory(): void {
  const a = load();
  if (!a || !enabled) return;
  const before = process.memoryUsage.rss();
  const t0 = performance.now();
  a.trim();
  lastMs = performance.now() - t0;
  releases++;
  returnedBytes += Math.max(0, before - process.memoryUsage.rss());
}

let scheduled = false;
const collected = new FinalizationRegistry<undefined>(() => {
  // Coalesced: one release after a GC that collected several, once their finalizers have run.
  if (scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    releaseFreedMemory();
  }).unref();
});

/**
 * Release freed memory again once `target` (a released session's wrapper) is garbage
 * collected: what onnxruntime-node's JS objects keep (the native session object, tensors) is
 * freed at that GC, after the release at unload ran.
 */
export function releaseWhenCollected(target: object): void {
  if (load() && enabled) collected.register(target, undefined);
}

let told = false;

/**
 * What the model manager calls once sessions were released: `releaseFreedMemory`, and, the
 * first time it cannot, one log line saying why (the RSS then keeps what the sessions freed).
 */
export function releaseAfterUnload(logger: Logger): void {
  releaseFreedMemory();
  if (addon || told || !enabled) return;
  told = true;
  logger.info({ reason }, 'freed session memory is not returned to the OS after unloads (malloc-release addon unavailable)');
}

export function allocatorStatus(): AllocatorStatus {
  const available = load() !== undefined && enabled;
  return { available, reason: available ? undefined : enabled ? reason : 'turned off (--release-freed-memory false)', releases, returnedBytes, lastMs };
}

/** malloc's own figures (mallinfo2, all arenas), when the addon is loaded: bytes in use, free, mmapped. */
export function mallocInfo(): { arena?: number; inUse?: number; free?: number; mmapped?: number } | undefined {
  return load()?.info();
}
