/**
 * What a batcher remembers of recent arrivals, for the work-conserving rule of policy.ts:
 * the share of arrivals that found other requests queued or running, and the mean gap
 * between such arrivals. Both are exponentially weighted over the last few arrivals, so they
 * follow a change of load within a handful of requests. It reads no clock: the batcher
 * passes the time of each arrival, so tests drive it with a fake clock.
 */
import type { ArrivalView } from './policy.js';

/** Weight of the newest arrival in the overlap share (about the last 10 arrivals count). */
const SHARE_WEIGHT = 0.1;
/** Weight of the newest gap in the mean gap (about the last 5 gaps count). */
const GAP_WEIGHT = 0.2;

export class ArrivalTracker implements ArrivalView {
  lastArrivalAt = -Infinity;
  meanGapMs = 0;
  /** Starts at 0: until requests are seen to overlap, none waits for company. */
  overlapShare = 0;

  /** A request arrived at `now`; `overlapped`: others were queued or running at that moment. */
  record(now: number, overlapped: boolean): void {
    const gap = now - this.lastArrivalAt;
    this.lastArrivalAt = now;
    this.overlapShare += SHARE_WEIGHT * ((overlapped ? 1 : 0) - this.overlapShare);
    if (!overlapped || !Number.isFinite(gap)) return;
    this.meanGapMs = this.meanGapMs === 0 ? gap : this.meanGapMs + GAP_WEIGHT * (gap - this.meanGapMs);
  }
}
