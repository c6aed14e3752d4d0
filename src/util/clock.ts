/**
 * Time as a dependency, so that batching and eviction can be tested without sleeping.
 * `now()` is monotonic milliseconds (fractional); timers return a cancel function.
 */
export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): () => void;
}

/**
 * Node timers have millisecond resolution (a 0.3 ms setTimeout fires after 1 ms or more), so
 * waits under 1 ms are timed by checking the clock once per event-loop turn (setImmediate):
 * I/O is still served between checks, and the loop polls instead of sleeping only for the
 * sub-millisecond wait itself.
 */
function preciseWait(ms: number, fn: () => void): () => void {
  const at = performance.now() + ms;
  let cancelled = false;
  let handle: NodeJS.Immediate;
  const check = () => {
    if (cancelled) return;
    if (performance.now() >= at) fn();
    else handle = setImmediate(check);
  };
  handle = setImmediate(check);
  return () => {
    cancelled = true;
    clearImmediate(handle);
  };
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    if (ms < 1) return preciseWait(Math.max(0, ms), fn);
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** A clock that only moves when told to; timers fire in due order during `advance`. */
export class FakeClock implements Clock {
  private time = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const id = this.nextId++;
    this.timers.push({ at: this.time + Math.max(0, ms), fn, id });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  }

  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > target) break;
      this.timers.shift();
      this.time = next.at;
      next.fn();
    }
    this.time = target;
  }

  get pendingTimers(): number {
    return this.timers.length;
  }
}
