/**
 * Pure policies of a pull, tested with a fake clock: retry backoff, the progress figures
 * (rate, ETA) and when a progress report is worth sending.
 */

export interface RetrySettings {
  /** Attempts after the first one. */
  readonly retries: number;
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_RETRY: RetrySettings = { retries: 6, baseMs: 1000, capMs: 30_000 };

/**
 * Delay before retry number `attempt` (1-based): exponential with "equal jitter" — half fixed,
 * half random — so retries of many nodes spread out but never retry at once. `random` in [0,1).
 */
export function backoffMs(attempt: number, s: RetrySettings, random: number): number {
  const exp = Math.min(s.capMs, s.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (exp / 2) * random);
}

/** Whether a failure after `attempt` tries (1-based) gets another one. */
export function shouldRetry(retryable: boolean, attempt: number, s: RetrySettings): boolean {
  return retryable && attempt <= s.retries;
}

/**
 * Transfer rate over a sliding window of (time, bytes) samples, and the ETA it implies. The
 * window is what makes the figure trustworthy after a stall or a resume: old samples age out.
 */
export class RateMeter {
  private samples: { t: number; bytes: number }[] = [];

  constructor(private readonly windowMs = 5000) {}

  record(t: number, bytesDone: number): void {
    this.samples.push({ t, bytes: bytesDone });
    while (this.samples.length > 2 && this.samples[0]!.t < t - this.windowMs) this.samples.shift();
  }

  /** Bytes per second over the window; 0 until two samples span some time. */
  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t) return 0;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.t - first.t));
  }

  /** Seconds left, when the total is known and bytes are moving. */
  etaSeconds(done: number, total: number | undefined): number | undefined {
    const r = this.rate();
    if (total === undefined || r <= 0) return undefined;
    return Math.max(0, (total - done) / r);
  }
}

/**
 * Progress reports are rate-limited (at most one per `minIntervalMs` per download) except on a
 * state change, which is always reported.
 */
export function shouldReport(lastAt: number | undefined, now: number, minIntervalMs: number, stateChanged: boolean): boolean {
  return stateChanged || lastAt === undefined || now - lastAt >= minIntervalMs;
}

export interface CachedBlob {
  readonly hex: string;
  readonly bytes: number;
  /** When a pull or a load last used it (ms). */
  readonly lastUsed: number;
  /** Referenced by a loaded or pinned model version, or being pulled: never evicted. */
  readonly protected: boolean;
}

export type CachePlan = { ok: true; evict: string[]; freedBytes: number } | { ok: false; evict: string[]; reason: string };

/**
 * Least-recently-used blobs out until `incoming` more bytes fit in `budget`; protected blobs
 * never go. ok=false (with what would go) when even evicting everything allowed is not enough.
 */
export function planCacheEviction(blobs: readonly CachedBlob[], budget: number, incoming: number): CachePlan {
  let used = blobs.reduce((n, b) => n + b.bytes, 0);
  const evict: string[] = [];
  let freed = 0;
  for (const b of [...blobs].filter((x) => !x.protected).sort((a, z) => a.lastUsed - z.lastUsed || a.hex.localeCompare(z.hex))) {
    if (used + incoming <= budget) break;
    evict.push(b.hex);
    used -= b.bytes;
    freed += b.bytes;
  }
  if (used + incoming <= budget) return { ok: true, evict, freedBytes: freed };
  const pinned = blobs.filter((b) => b.protected).reduce((n, b) => n + b.bytes, 0);
  return { ok: false, evict, reason: `the cache budget of ${budget} bytes cannot take ${incoming} more bytes: ${pinned} bytes are held by loaded, pinned or in-flight models` };
}
