/** The gateway's pure decisions: power-of-two-choices, retry classification, circuit breaker, deadlines. */
import { describe, expect, it } from 'vitest';
import {
  admit, breakerAllows, breakerOnSend, breakerRecord, classifyAttempt, CLOSED_BREAKER, pickTwoChoices, resolveDeadlineMs,
} from '../../src/coordinator/gateway/policy.js';
import { FakeClock } from '../../src/util/clock.js';

/** A deterministic random source (a linear congruential generator). */
const seeded = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

describe('pickTwoChoices', () => {
  it('returns undefined for none and the only one for one', () => {
    expect(pickTwoChoices([])).toBeUndefined();
    expect(pickTwoChoices([{ nodeId: 'a', load: 9 }])?.nodeId).toBe('a');
  });

  it('of the two drawn, takes the less loaded; never the most loaded of three', () => {
    const nodes = [{ nodeId: 'a', load: 0 }, { nodeId: 'b', load: 5 }, { nodeId: 'c', load: 10 }];
    const rng = seeded(7);
    const counts = { a: 0, b: 0, c: 0 } as Record<string, number>;
    for (let i = 0; i < 3000; i++) counts[pickTwoChoices(nodes, rng)!.nodeId]!++;
    expect(counts.c).toBe(0); // c loses every pair it is in
    expect(counts.a).toBeGreaterThan(counts.b); // a wins both pairs it is in, b one of its two
    expect(counts.b).toBeGreaterThan(0);
  });

  it('draws two distinct candidates at the edges of the random range', () => {
    const nodes = [{ nodeId: 'a', load: 1 }, { nodeId: 'b', load: 0 }];
    expect(pickTwoChoices(nodes, () => 0)?.nodeId).toBe('b');
    expect(pickTwoChoices(nodes, () => 0.999999)?.nodeId).toBe('b');
  });
});

describe('classifyAttempt', () => {
  it('retries connection errors and 5xx, keeps 2xx/4xx final, stops at the deadline', () => {
    expect(classifyAttempt({ kind: 'connection_error', code: 'ECONNREFUSED' })).toBe('retry');
    expect(classifyAttempt({ kind: 'response', status: 503 })).toBe('retry');
    expect(classifyAttempt({ kind: 'response', status: 500 })).toBe('retry');
    expect(classifyAttempt({ kind: 'response', status: 200 })).toBe('final');
    expect(classifyAttempt({ kind: 'response', status: 400 })).toBe('final');
    expect(classifyAttempt({ kind: 'response', status: 429 })).toBe('final');
    expect(classifyAttempt({ kind: 'timeout' })).toBe('deadline');
  });
});

describe('circuit breaker', () => {
  const opts = { failureThreshold: 3, openMs: 10_000 };

  it('opens after the threshold of consecutive failures, half-opens after openMs, closes on a success', () => {
    const clock = new FakeClock();
    let b = CLOSED_BREAKER;
    b = breakerRecord(b, false, clock.now(), opts);
    b = breakerRecord(b, false, clock.now(), opts);
    expect(b.state).toBe('closed');
    b = breakerRecord(b, true, clock.now(), opts); // a success resets the count
    expect(b.consecutiveFailures).toBe(0);
    for (let i = 0; i < 3; i++) b = breakerRecord(b, false, clock.now(), opts);
    expect(b).toMatchObject({ state: 'open', opened: 1 });
    expect(breakerAllows(b, clock.now())).toBe(false);
    clock.advance(9_999);
    expect(breakerAllows(b, clock.now())).toBe(false);
    clock.advance(1);
    expect(breakerAllows(b, clock.now())).toBe(true);
    b = breakerOnSend(b, clock.now());
    expect(b.state).toBe('half_open');
    expect(breakerAllows(b, clock.now())).toBe(false); // one trial at a time
    b = breakerRecord(b, true, clock.now(), opts);
    expect(b).toMatchObject({ state: 'closed', consecutiveFailures: 0, opened: 1 });
  });

  it('re-opens at once when the half-open trial fails', () => {
    const clock = new FakeClock();
    let b = CLOSED_BREAKER;
    for (let i = 0; i < 3; i++) b = breakerRecord(b, false, clock.now(), opts);
    clock.advance(10_000);
    b = breakerOnSend(b, clock.now());
    b = breakerRecord(b, false, clock.now(), opts);
    expect(b).toMatchObject({ state: 'open', opened: 2, openUntil: 20_000 });
  });
});

describe('deadlines', () => {
  it('takes the header, then the V2 timeout parameter (µs), then the model default, then the default', () => {
    expect(resolveDeadlineMs({ headerMs: '250', parameterUs: 5_000_000, modelDefaultMs: 7, defaultMs: 30_000 })).toEqual({ ok: true, ms: 250 });
    expect(resolveDeadlineMs({ parameterUs: 5_000_000, modelDefaultMs: 7, defaultMs: 30_000 })).toEqual({ ok: true, ms: 5_000 });
    expect(resolveDeadlineMs({ modelDefaultMs: 7, defaultMs: 30_000 })).toEqual({ ok: true, ms: 7 });
    expect(resolveDeadlineMs({ defaultMs: 30_000 })).toEqual({ ok: true, ms: 30_000 });
  });

  it('refuses values that are not positive numbers, naming them', () => {
    expect(resolveDeadlineMs({ headerMs: '-1', defaultMs: 1 })).toMatchObject({ ok: false, error: expect.stringMatching(/x-timeout-ms/) });
    expect(resolveDeadlineMs({ parameterUs: 'soon', defaultMs: 1 })).toMatchObject({ ok: false, error: expect.stringMatching(/parameters.timeout/) });
  });

  it('admits, refuses an expired request (504) and one the node cannot meet (429)', () => {
    expect(admit(0, 0, undefined)).toBe('expired');
    expect(admit(100, 50, undefined)).toBe('ok'); // no estimate yet
    expect(admit(100, 3, 20)).toBe('ok'); // 4 × 20 = 80 ≤ 100
    expect(admit(100, 4, 20)).toBe('ok'); // 5 × 20 = 100: just meets it
    expect(admit(99, 4, 20)).toBe('overloaded'); // 100 > 99
  });
});
