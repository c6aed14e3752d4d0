/**
 * Pure parts of the link: backoff, the drop-oldest buffer, the throughput meter, and the
 * persisted node id.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, DropOldestBuffer, reconnectDelay } from '../../src/coordinator/link.js';
import { loadOrCreateNodeId, NODE_ID_FILE } from '../../src/coordinator/node-id.js';
import { ID_PATTERN } from '../../src/coordinator/protocol.js';
import { ThroughputMeter } from '../../src/coordinator/throughput.js';
import { FakeClock } from '../../src/util/clock.js';

const fixed = (v: number) => () => v;
const ALMOST_ONE = 1 - Number.EPSILON;
/** base 1 s, cap 30 s: the plain exponential schedule the backoffDelay cases below use. */
const S = { baseMs: 1_000, capMs: 30_000 };

describe('backoffDelay', () => {
  it('defaults to base 0.5 s, a 4 s cap for the first minute of a disconnection, 30 s after', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 500, capMs: 30_000, fastCapMs: 4_000, fastWindowMs: 60_000 });
  });

  it('reconnectDelay: the fast cap while disconnected for less than the window, the long cap after', () => {
    const top = (a: number, away: number) => reconnectDelay(a, away, fixed(ALMOST_ONE));
    expect([0, 1, 2, 3, 4, 10].map((a) => top(a, 1_000))).toEqual([499, 999, 1_999, 3_999, 3_999, 3_999]);
    expect([0, 1, 2, 3, 4, 10].map((a) => top(a, 60_000))).toEqual([499, 999, 1_999, 3_999, 7_999, 29_999]);
    expect(reconnectDelay(10, 5_000, fixed(0))).toBe(0);
  });

  it('draws from [0, min(cap, base·2^attempt)]: the ceiling doubles per attempt', () => {
    const ceilings = [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, fixed(ALMOST_ONE), S));
    expect(ceilings).toEqual([999, 1_999, 3_999, 7_999, 15_999, 29_999]);
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, fixed(0), S))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('is capped, also for huge, infinite or fractional attempts', () => {
    for (const a of [5, 6, 10, 100, 1_000, 1e9, Number.POSITIVE_INFINITY]) {
      const d = backoffDelay(a, fixed(ALMOST_ONE), S);
      expect(d).toBeLessThanOrEqual(30_000);
      expect(d).toBeGreaterThan(29_000);
    }
    expect(backoffDelay(2.7, fixed(0.5), S)).toBe(2_000);
  });

  it('treats negative and NaN attempts as the first', () => {
    expect(backoffDelay(-3, fixed(0.5), S)).toBe(500);
    expect(backoffDelay(Number.NaN, fixed(0.5), S)).toBe(500);
  });

  it('uses full jitter: the delay is the rng fraction of the ceiling', () => {
    expect(backoffDelay(3, fixed(0.25), S)).toBe(2_000);
    expect(backoffDelay(3, fixed(0.5), S)).toBe(4_000);
    expect(backoffDelay(10, fixed(0.1), S)).toBe(3_000);
    const values = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    const delays = values.map((v) => backoffDelay(4, fixed(v), S));
    expect(new Set(delays).size).toBe(values.length); // spread over the whole range, not clustered at the ceiling
    expect(Math.min(...delays)).toBe(0);
  });

  it('is pure and clamps a misbehaving rng into range', () => {
    expect(backoffDelay(2, fixed(0.3), S)).toBe(backoffDelay(2, fixed(0.3), S));
    expect(backoffDelay(2, fixed(7), S)).toBe(4_000);
    expect(backoffDelay(2, fixed(-1), S)).toBe(0);
    expect(backoffDelay(2, fixed(Number.NaN), S)).toBe(0);
  });

  it('honours custom settings', () => {
    const s = { baseMs: 20, capMs: 200 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, fixed(ALMOST_ONE), s))).toEqual([19, 39, 79, 159, 199, 199]);
  });
});

describe('DropOldestBuffer', () => {
  it('keeps the newest `capacity` items in order and counts drops', () => {
    const b = new DropOldestBuffer<number>(3);
    expect([1, 2, 3].map((i) => b.push(i))).toEqual([undefined, undefined, undefined]);
    expect(b.push(4)).toBe(1);
    expect(b.push(5)).toBe(2);
    expect(b.size).toBe(3);
    expect(b.dropped).toBe(2);
    expect(b.takeAll()).toEqual([3, 4, 5]);
    expect(b.size).toBe(0);
    b.push(6);
    expect(b.peek()).toEqual([6]);
  });

  it('refuses a capacity below 1', () => {
    expect(() => new DropOldestBuffer(0)).toThrow(RangeError);
    expect(() => new DropOldestBuffer(1.5)).toThrow(RangeError);
  });
});

describe('ThroughputMeter', () => {
  it('turns cumulative counts into per-second rates', () => {
    const clock = new FakeClock();
    const m = new ThroughputMeter(clock);
    expect(m.rate('a', 100)).toBe(0);
    clock.advance(2_000);
    expect(m.rate('a', 300)).toBe(100);
    clock.advance(1_000);
    expect(m.rate('a', 250)).toBe(0); // counter reset by a reload
    clock.advance(500);
    expect(m.rate('a', 300)).toBe(100);
    m.retain([]);
    expect(m.rate('a', 1_000)).toBe(0);
  });
});

describe('loadOrCreateNodeId', () => {
  it('creates a UUID once and returns it on every later start', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'node-id-')), 'state', 'nested');
    const id = await loadOrCreateNodeId(dir);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ID_PATTERN.test(id)).toBe(true);
    expect(readFileSync(path.join(dir, NODE_ID_FILE), 'utf8')).toBe(`${id}\n`);
    expect(await loadOrCreateNodeId(dir)).toBe(id);
  });

  it('agrees on one id when started concurrently', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'node-id-'));
    const ids = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateNodeId(dir)));
    expect(new Set(ids).size).toBe(1);
  });

  it('refuses a corrupt id file instead of silently changing identity', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'node-id-'));
    writeFileSync(path.join(dir, NODE_ID_FILE), '../../etc\n');
    await expect(loadOrCreateNodeId(dir)).rejects.toThrow(/does not hold a valid node id.*delete it/);
  });
});
