/**
 * Coalesced IPC writes. Every message posted during one turn of the event loop leaves in one
 * IPC message (`{ t: 'many', items }`) at the turn's end (setImmediate: after the poll phase
 * that read the requests, before the loop sleeps), so a batch of 32 answers, or 32 requests
 * read from 32 sockets in one poll, cost one serializer run, one pipe write and one wake-up
 * of the other process instead of 32. A lone message goes as itself.
 */
export interface Many<T> {
  readonly t: 'many';
  readonly items: readonly T[];
}

import { fromWire, toWire } from './messages.js';

export class Outbox<T> {
  private queued: T[] = [];

  /** `write` sends one IPC message (process.send or worker.send), already in wire form. */
  constructor(private readonly write: (m: T | Many<T>) => void) {}

  post(m: T): void {
    if (this.queued.length === 0) setImmediate(() => this.flush());
    this.queued.push(m);
  }

  flush(): void {
    const items = this.queued;
    if (items.length === 0) return;
    this.queued = [];
    this.write(toWire(items.length === 1 ? items[0]! : { t: 'many', items }) as T | Many<T>);
  }
}

/** Calls `fn` for each message in `wire` (one, or the items of a coalesced one), decoded. */
export function eachMessage<T>(wire: unknown, fn: (m: T) => void): void {
  const m = fromWire<T | Many<T>>(wire);
  if ((m as Many<T>).t === 'many') for (const item of (m as Many<T>).items) fn(item);
  else fn(m as T);
}
