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
 * Under jemalloc (preloaded by scripts/gpu-agent.sh, the default launch: docs/memory.md) the
 * same call purges jemalloc's unused dirty pages of every arena (mallctl "arena.4096.purge")
 * instead: malloc_trim is glibc's and has nothing to do there.
 *
 * The addon is optional (dist/native/malloc-release.node, built by `npm run build` where a C
 * compiler exists; see native/malloc-release.c). Without it `release()` does nothing and
 * `status()` says why; the allocator is then told from /proc/self/maps.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Logger } from '../util/logger.js';
import { PACKAGE_ROOT } from '../util/package-root.js';

interface Addon {
  readonly supported: boolean;
  /** Which malloc the process runs on: "jemalloc" (mallctl resolves), "glibc" or "other". */
  readonly allocator?: string;
  /** jemalloc's version string, or glibc's. */
  readonly version?: string;
  trim(): boolean;
  info(): { arena?: number; inUse?: number; free?: number; mmapped?: number };
}

/** The malloc this process runs on, as detected at first use. */
export interface AllocatorIdentity {
  /** "jemalloc" (preloaded: scripts/gpu-agent.sh), "glibc", or "other" (e.g. musl). */
  readonly name: 'jemalloc' | 'glibc' | 'other';
  /** Its version when known ("5.3.0-0-g54eaed1d..." for jemalloc, "2.36" for glibc), else "". */
  readonly version: string;
  /** How freed memory is released at unload: "purge" (jemalloc), "trim" (glibc), "none". */
  readonly release: 'purge' | 'trim' | 'none';
}

export interface AllocatorStatus {
  /** The malloc of this process and how it is released. */
  readonly allocator: AllocatorIdentity;
  /** True when freed memory can be returned (the addon loaded, and jemalloc runs or the C library has malloc_trim). */
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

export const ADDON_PATH = path.join(PACKAGE_ROOT ?? '/', 'dist', 'native', 'malloc-release.node');

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
    else reason = 'the C library has no malloc_trim (not glibc) and jemalloc is not preloaded';
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

let identity: AllocatorIdentity | undefined;

/**
 * The malloc this process runs on: from the addon (jemalloc's mallctl resolves only when
 * jemalloc is the process's malloc), else from the libraries mapped (/proc/self/maps).
 */
export function allocatorIdentity(): AllocatorIdentity {
  if (identity) return identity;
  const a = load();
  if (a?.allocator === 'jemalloc') identity = { name: 'jemalloc', version: a.version ?? '', release: 'purge' };
  else if (a?.allocator === 'glibc') identity = { name: 'glibc', version: a.version ?? '', release: 'trim' };
  else {
    let maps = '';
    try {
      maps = readFileSync('/proc/self/maps', 'utf8');
    } catch {
      // not Linux: nothing to read
    }
    const name = /libjemalloc\.so/.test(maps) ? 'jemalloc' : glibcRuntime() ? 'glibc' : 'other';
    identity = { name, version: name === 'glibc' ? glibcRuntime() ?? '' : '', release: 'none' };
  }
  return identity;
}

/** glibc's version from Node's diagnostic report header, when the C library is glibc. */
function glibcRuntime(): string | undefined {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime;
}

/** One line for the start log and doctor: "jemalloc 5.3.0 (freed memory released at unload by mallctl arena purge)". */
export function describeAllocator(id: AllocatorIdentity = allocatorIdentity()): string {
  const version = id.version.split('-')[0];
  const how = !enabled ? 'not released at unload (--release-freed-memory false)' : id.release === 'none' ? `not released at unload (${reason ?? 'no addon'})` : `released at unload by ${id.release === 'purge' ? 'mallctl arena purge' : 'malloc_trim'}`;
  return `${id.name}${version ? ` ${version}` : ''} (freed memory ${how})`;
}

/**
 * The start's one line about the allocator: which malloc, how unloads release memory, and on
 * glibc how to get jemalloc (the launcher, scripts/gpu-agent.sh, preloads it where installed).
 */
export function logAllocator(logger: Logger): void {
  const id = allocatorIdentity();
  const fields = { allocator: id.name, allocatorVersion: id.version, release: enabled ? id.release : 'off' };
  if (id.name === 'jemalloc') logger.info(fields, `memory allocator: ${describeAllocator(id)}`);
  else logger.info({ ...fields, hint: 'scripts/gpu-agent.sh (npm start, the installed service, the image) preloads jemalloc where libjemalloc2 is installed; GPU_AGENT_ALLOCATOR=glibc keeps glibc (docs/memory.md)' }, `memory allocator: ${describeAllocator(id)}`);
}

export function allocatorStatus(): AllocatorStatus {
  const available = load() !== undefined && enabled;
  return { allocator: allocatorIdentity(), available, reason: available ? undefined : enabled ? reason : 'turned off (--release-freed-memory false)', releases, returnedBytes, lastMs };
}

/** malloc's own figures when the addon is loaded: glibc's mallinfo2 (all arenas) or jemalloc's stats (see native/malloc-release.c). */
export function mallocInfo(): { arena?: number; inUse?: number; free?: number; mmapped?: number } | undefined {
  return load()?.info();
}
