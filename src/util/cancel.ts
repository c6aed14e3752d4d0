/**
 * A minimal cancellation signal: whether it fired, and a way to be told once. Cheaper than an
 * AbortController per request (the bench profile showed ~8 µs each for creating one and adding
 * and removing its listener), and all the batcher needs.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  /** Call `fn` once when cancelled; returns a function that unsubscribes. */
  subscribe(fn: () => void): () => void;
}

export class CancelSource implements CancelSignal {
  aborted = false;
  private listener: (() => void) | undefined;

  /** One subscriber at a time is all a request needs (its queue entry). */
  subscribe(fn: () => void): () => void {
    this.listener = fn;
    return () => {
      if (this.listener === fn) this.listener = undefined;
    };
  }

  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    const fn = this.listener;
    this.listener = undefined;
    fn?.();
  }
}

/** A CancelSignal over a standard AbortSignal. */
export function fromAbortSignal(signal: AbortSignal): CancelSignal {
  return {
    get aborted() {
      return signal.aborted;
    },
    subscribe(fn) {
      signal.addEventListener('abort', fn, { once: true });
      return () => signal.removeEventListener('abort', fn);
    },
  };
}
