/** What the link keeps while disconnected (heartbeats, events, command results): bounded, oldest dropped first. */

/** A FIFO of at most `capacity` items; pushing onto a full one drops (and returns) the oldest. */
export class DropOldestBuffer<T> {
  private items: T[] = [];
  /** Items dropped since creation. */
  dropped = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`buffer capacity must be a positive integer, got ${capacity}`);
  }

  push(item: T): T | undefined {
    this.items.push(item);
    if (this.items.length <= this.capacity) return undefined;
    this.dropped++;
    return this.items.shift();
  }

  /** Remove and return everything, oldest first. */
  takeAll(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  peek(): readonly T[] {
    return this.items;
  }

  get size(): number {
    return this.items.length;
  }
}
