/**
 * The link's reconnect timer: when the next connection attempt happens after a failure or a
 * refusal. The delays themselves are pure policies (link-backoff.ts, link-close-policy.ts);
 * this holds the state they read (the attempt counter, how long the node has been disconnected)
 * and the one pending retry timer.
 *
 * Contracts:
 * - At most one retry is pending: scheduling another replaces it; `stop()` cancels it.
 * - `attempt` counts failures since the last registration (`registered()` resets it), so a
 *   coordinator restart costs each node one short jittered wait, not the tail of the last outage.
 * - The fast-cap window of the backoff runs from `disconnected()`: the start of the link, or the
 *   loss of a registered connection (failed attempts in between do not move it).
 * - A refusal waits `refusedRetryMs` with jitter and leaves `attempt` as it is.
 */
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { reconnectDelay, type BackoffSettings } from './link-backoff.js';
import { refusalMessage, refusedRetryDelay, type Refusal } from './link-close-policy.js';

export interface ReconnectDeps {
  readonly clock: Clock;
  readonly rng: () => number;
  readonly log: Logger;
  readonly backoff: BackoffSettings;
  readonly refusedRetryMs: number;
  readonly nodeId: string;
  /** The next attempt; called from the timer, guarded. */
  readonly connect: () => void;
  readonly guard: (fn: () => void) => void;
}

export class Reconnector {
  /** Consecutive failures feeding the backoff. */
  attempt = 0;
  /** Since when the node has had no registered connection (start, or the loss of the last one). */
  private disconnectedSince = 0;
  private cancel: (() => void) | undefined;

  constructor(private readonly deps: ReconnectDeps) {}

  /** The node has no registered connection from now on. */
  disconnected(): void {
    this.disconnectedSince = this.deps.clock.now();
  }

  /** The coordinator is reachable: the next loss starts the backoff afresh. */
  registered(): void {
    this.attempt = 0;
  }

  /** Retry with backoff after an attempt failed or a connection was lost. */
  afterFailure(wasRegistered: boolean, why: string | undefined): void {
    const { clock, rng, backoff, log } = this.deps;
    const delay = reconnectDelay(this.attempt, clock.now() - this.disconnectedSince, rng, backoff);
    this.attempt++;
    log.warn(
      { reason: why, attempt: this.attempt, retryInMs: delay },
      wasRegistered ? 'lost the coordinator connection; reconnecting' : 'cannot reach the coordinator; retrying',
    );
    this.schedule(delay);
  }

  /** Retry slowly after the coordinator refused the node; logs what the operator should fix. */
  afterRefusal(refusal: Refusal, why: string): void {
    const delay = refusedRetryDelay(this.deps.refusedRetryMs, this.deps.rng);
    this.deps.log.error({ reason: why, retryInMs: delay }, `${refusalMessage(refusal, this.deps.nodeId)}; retrying slowly`);
    this.schedule(delay);
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  private schedule(delay: number): void {
    this.cancel?.();
    this.cancel = this.deps.clock.setTimer(delay, () => {
      this.cancel = undefined;
      this.deps.guard(() => this.deps.connect());
    });
  }
}
