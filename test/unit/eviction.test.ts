import { describe, expect, it } from 'vitest';
import { idleEntries, planEviction, type PoolEntry } from '../../src/sessions/eviction.js';
import { budgetFor, parseBytes, type MemoryProbe } from '../../src/sessions/memory.js';

const e = (key: string, bytes: number, lastUsed: number, extra: Partial<PoolEntry> = {}): PoolEntry => ({ key, bytes, lastUsed, pinned: false, busy: false, ...extra });

describe('planEviction', () => {
  it('evicts nothing when the new model fits', () => {
    expect(planEviction([e('a', 40, 1)], 50, 100)).toEqual({ ok: true, evict: [] });
  });

  it('evicts least recently used first, only as many as needed', () => {
    const pool = [e('a', 40, 30), e('b', 40, 10), e('c', 10, 20)];
    expect(planEviction(pool, 30, 100)).toEqual({ ok: true, evict: ['b'] });
    expect(planEviction(pool, 80, 100)).toEqual({ ok: true, evict: ['b', 'c', 'a'] });
  });

  it('never evicts pinned or busy models, and explains a load that cannot fit', () => {
    const pool = [e('a', 60, 1, { pinned: true }), e('b', 30, 2, { busy: true }), e('c', 10, 3)];
    const plan = planEviction(pool, 20, 100);
    expect(plan.ok).toBe(false);
    if (!plan.ok) expect(plan.reason).toMatch(/stays in use by a \(.*, preloaded\), b \(.*, busy\); raise --memory-budget/);
    expect(planEviction(pool, 10, 100)).toEqual({ ok: true, evict: ['c'] });
  });

  it('refuses a model larger than the whole budget', () => {
    expect(planEviction([], 200, 100).ok).toBe(false);
  });
});

describe('idleEntries', () => {
  it('lists unpinned, idle, not busy entries past the TTL', () => {
    const pool = [e('old', 1, 0), e('new', 1, 900), e('pinned', 1, 0, { pinned: true }), e('busy', 1, 0, { busy: true })];
    expect(idleEntries(pool, 1000, 500)).toEqual(['old']);
    expect(idleEntries(pool, 1000, 0)).toEqual([]);
  });
});

describe('memory budgets', () => {
  const probe: MemoryProbe = { totalBytes: (d) => (d === 'host' ? 1000 : undefined), processUsedBytes: () => undefined };
  it('auto is 90% of the device, unlimited when unknown; a number is taken as is', () => {
    expect(budgetFor('host', 'auto', probe)).toBe(900);
    expect(budgetFor('gpu', 'auto', probe)).toBe(Number.POSITIVE_INFINITY);
    expect(budgetFor('gpu', 123, probe)).toBe(123);
  });

  it('parses sizes with binary units', () => {
    expect(parseBytes('1048576')).toBe(1048576);
    expect(parseBytes('512M')).toBe(512 * 1024 ** 2);
    expect(parseBytes('24GiB')).toBe(24 * 1024 ** 3);
    expect(parseBytes('1.5 GB')).toBe(1.5 * 1024 ** 3);
    expect(parseBytes('lots')).toBeUndefined();
  });
});
