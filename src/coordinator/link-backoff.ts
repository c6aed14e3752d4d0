/**
 * The link's reconnect schedule as pure functions (tested with a seeded random source):
 * full-jitter exponential backoff, with a lower cap for the first minute of a disconnection.
 */

export interface BackoffSettings {
  readonly baseMs: number;
  readonly capMs: number;
  /** The cap while the node has been disconnected for less than `fastWindowMs`. */
  readonly fastCapMs?: number;
  readonly fastWindowMs?: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { baseMs: 500, capMs: 30_000, fastCapMs: 4_000, fastWindowMs: 60_000 };

/**
 * The wait before the next reconnect: {@link backoffDelay}, with the cap lowered to
 * `fastCapMs` while the node has been disconnected for less than `fastWindowMs` (a restart or
 * a short outage is found within seconds; a long one is polled slowly). Pure.
 */
export function reconnectDelay(attempt: number, disconnectedForMs: number, rng: () => number, settings: BackoffSettings = DEFAULT_BACKOFF): number {
  const fast = settings.fastCapMs !== undefined && disconnectedForMs < (settings.fastWindowMs ?? 0);
  return backoffDelay(attempt, rng, fast ? { baseMs: settings.baseMs, capMs: Math.min(settings.capMs, settings.fastCapMs!) } : settings);
}

/**
 * Full-jitter exponential backoff: a delay drawn uniformly from [0, min(cap, base × 2^attempt)]
 * with `rng()` in [0, 1). `attempt` counts failures since the last stable connection, from 0.
 * Pure: same inputs, same output.
 */
export function backoffDelay(attempt: number, rng: () => number, settings: BackoffSettings = DEFAULT_BACKOFF): number {
  const n = Number.isNaN(attempt) || attempt <= 0 ? 0 : Math.min(Math.floor(attempt), 60);
  const ceiling = Math.max(0, Math.min(settings.capMs, settings.baseMs * 2 ** n));
  const r = rng();
  const u = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.floor(u * ceiling);
}
