/**
 * Turns cumulative counters (e.g. a model's inference count) into per-second rates between
 * two readings, for the heartbeat's `throughput`. The first reading of a key, and a counter
 * that went backwards (a reload reset it), give 0.
 */
import { systemClock, type Clock } from '../util/clock.js';

export class ThroughputMeter {
  private readonly last = new Map<string, { count: number; at: number }>();

  constructor(private readonly clock: Clock = systemClock) {}

  /** Per-second rate of `count` since the previous call for `key`. */
  rate(key: string, count: number): number {
    const now = this.clock.now();
    const prev = this.last.get(key);
    this.last.set(key, { count, at: now });
    if (!prev || count < prev.count || now <= prev.at) return 0;
    return ((count - prev.count) * 1000) / (now - prev.at);
  }

  /** Forget keys not in `keep` (unloaded models). */
  retain(keep: Iterable<string>): void {
    const set = new Set(keep);
    for (const k of this.last.keys()) if (!set.has(k)) this.last.delete(k);
  }
}
