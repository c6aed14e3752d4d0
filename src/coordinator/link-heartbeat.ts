/**
 * The link's heartbeat: every `intervalMs` it asks the controller for the node's state and
 * sends (or, while disconnected, buffers) a numbered `heartbeat`.
 *
 * Contracts:
 * - The timer runs from `start()` to `stop()`, connected or not: heartbeats made while
 *   disconnected go to the outbox's drop-oldest buffer like any other message.
 * - A controller that throws, rejects or returns a non-object skips that one heartbeat with a
 *   warning; the schedule goes on. `seq` counts only heartbeats actually produced.
 * - Once the link is closed (`isClosed()`), nothing more is produced, even by a heartbeat whose
 *   controller call was still pending.
 * - `setInterval()` (the coordinator's `registered.heartbeatIntervalMs`) restarts the timer
 *   only when the interval changes.
 */
import { messageOf } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { heartbeatMessage, type ReportFilter } from './link-reports.js';
import type { NodeController, NodeHeartbeat } from './link-types.js';
import type { AgentMessage } from './protocol.js';

export interface HeartbeatDeps {
  readonly controller: NodeController;
  readonly log: Logger;
  readonly clock: Clock;
  readonly reports: ReportFilter;
  readonly enqueue: (message: AgentMessage) => void;
  readonly isClosed: () => boolean;
  /** Runs an async task whose failure must never become an unhandled rejection. */
  readonly spawn: (task: () => Promise<void>) => void;
}

export class Heartbeats {
  /** Number of the last heartbeat produced (0: none yet). */
  seq = 0;
  private cancel: (() => void) | undefined;

  constructor(private readonly deps: HeartbeatDeps, private interval: number) {}

  get intervalMs(): number {
    return this.interval;
  }

  /** (Re)start the timer: the next heartbeat is due one interval from now. */
  start(): void {
    this.cancel?.();
    this.cancel = this.deps.clock.setTimer(this.interval, () => {
      if (this.deps.isClosed()) return;
      this.deps.spawn(() => this.send());
      this.start();
    });
  }

  /** Adopt the coordinator's interval; a change restarts the timer. */
  setInterval(ms: number): void {
    if (ms === this.interval) return;
    this.interval = ms;
    this.start();
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  /** Produce one heartbeat now (see the contracts above); never rejects for a controller failure. */
  async send(): Promise<void> {
    let h: NodeHeartbeat;
    try {
      h = await this.deps.controller.heartbeat();
      if (typeof h !== 'object' || h === null) throw new Error(`expected an object, got ${String(h)}`);
    } catch (err) {
      this.deps.log.warn({ err: messageOf(err) }, 'heartbeat(): the node could not report its state; heartbeat skipped');
      return;
    }
    if (this.deps.isClosed()) return;
    this.seq++;
    this.deps.enqueue(heartbeatMessage(h, this.seq, Date.now(), this.deps.reports));
  }
}
