/**
 * Which loaded models to evict to make room, as a pure function of the pool (so it can be
 * tested without loading anything). Least recently used first; models that are pinned
 * (--preload) or busy (queued or running requests) are never chosen.
 */

export interface PoolEntry {
  readonly key: string;
  readonly bytes: number;
  /** Clock time of the last request (or of the load). */
  readonly lastUsed: number;
  readonly pinned: boolean;
  readonly busy: boolean;
}

export type EvictionPlan =
  | { readonly ok: true; readonly evict: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/** Evict until `needed` more bytes fit under `budget`, or say why they cannot. */
export function planEviction(pool: readonly PoolEntry[], needed: number, budget: number): EvictionPlan {
  let used = pool.reduce((n, e) => n + e.bytes, 0);
  if (used + needed <= budget) return { ok: true, evict: [] };
  const candidates = pool.filter((e) => !e.pinned && !e.busy).sort((a, b) => a.lastUsed - b.lastUsed);
  const evict: string[] = [];
  for (const c of candidates) {
    if (used + needed <= budget) break;
    evict.push(c.key);
    used -= c.bytes;
  }
  if (used + needed <= budget) return { ok: true, evict };
  const held = pool.filter((e) => e.pinned || e.busy).map((e) => `${e.key} (${mib(e.bytes)}${e.pinned ? ', preloaded' : ', busy'})`);
  return {
    ok: false,
    reason: `needs ${mib(needed)} but the memory budget is ${mib(budget)} and ${mib(used)} stays in use` +
      (held.length ? ` by ${held.join(', ')}` : '') + '; raise --memory-budget or unload a model',
  };
}

/** Entries idle for longer than `ttlMs` that may be unloaded. */
export function idleEntries(pool: readonly PoolEntry[], now: number, ttlMs: number): string[] {
  if (ttlMs <= 0) return [];
  return pool.filter((e) => !e.pinned && !e.busy && now - e.lastUsed >= ttlMs).map((e) => e.key);
}

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
