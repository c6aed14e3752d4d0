import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/util/clock.js';
import { pathProblem, parseManifest, manifestDigest } from '../../src/sources/manifest.js';
import { backoffMs, planCacheEviction, RateMeter, shouldReport, shouldRetry } from '../../src/sources/policy.js';
import { redactUri, scrub } from '../../src/sources/redact.js';

const HEX = 'a'.repeat(64);

describe('retry policy', () => {
  const s = { retries: 3, baseMs: 1000, capMs: 8000 };
  it('backs off exponentially with equal jitter, capped', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, s, 0))).toEqual([500, 1000, 2000, 4000, 4000]);
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, s, 0.999999))).toEqual([1000, 2000, 4000, 8000, 8000]);
  });
  it('retries only retryable failures, a bounded number of times', () => {
    expect(shouldRetry(true, 1, s)).toBe(true);
    expect(shouldRetry(true, 3, s)).toBe(true);
    expect(shouldRetry(true, 4, s)).toBe(false);
    expect(shouldRetry(false, 1, s)).toBe(false);
  });
});

describe('progress figures', () => {
  it('rate and ETA over a sliding window (fake clock)', () => {
    const clock = new FakeClock();
    const m = new RateMeter(5000);
    m.record(clock.now(), 0);
    expect(m.rate()).toBe(0);
    expect(m.etaSeconds(0, 1000)).toBeUndefined();
    clock.advance(1000);
    m.record(clock.now(), 100);
    expect(m.rate()).toBe(100);
    expect(m.etaSeconds(100, 1000)).toBe(9);
    // A stall: ten seconds without bytes ages the old samples out, the rate falls to 0.
    clock.advance(10_000);
    m.record(clock.now(), 100);
    clock.advance(1000);
    m.record(clock.now(), 100);
    expect(m.rate()).toBe(0);
    expect(m.etaSeconds(100, undefined)).toBeUndefined();
  });
  it('reports at most once per interval, and always on a state change', () => {
    expect(shouldReport(undefined, 0, 250, false)).toBe(true);
    expect(shouldReport(0, 100, 250, false)).toBe(false);
    expect(shouldReport(0, 100, 250, true)).toBe(true);
    expect(shouldReport(0, 250, 250, false)).toBe(true);
  });
});

describe('cache eviction (LRU)', () => {
  const blob = (hex: string, bytes: number, lastUsed: number, prot = false) => ({ hex, bytes, lastUsed, protected: prot });
  it('evicts least recently used unprotected blobs until the incoming bytes fit', () => {
    const plan = planCacheEviction([blob('c', 30, 3), blob('a', 30, 1), blob('b', 30, 2, true), blob('d', 30, 4)], 100, 40);
    expect(plan).toEqual({ ok: true, evict: ['a', 'c'], freedBytes: 60 });
  });
  it('evicts nothing when it fits', () => {
    expect(planCacheEviction([blob('a', 10, 1)], 100, 90)).toEqual({ ok: true, evict: [], freedBytes: 0 });
  });
  it('says why when protected blobs leave no room', () => {
    const plan = planCacheEviction([blob('a', 60, 1, true), blob('b', 30, 2)], 100, 50);
    expect(plan.ok).toBe(false);
    if (!plan.ok) expect(plan.reason).toContain('60 bytes are held by loaded, pinned or in-flight models');
  });
});

describe('manifest', () => {
  const file = (path: string) => ({ path, uri: 'https://example.com/m.onnx', sha256: HEX });
  it('accepts relative normalised paths', () => {
    const m = parseManifest({ name: 'resnet', version: 2, files: [file('model.onnx'), file('weights/model.onnx.data'), file('labels.txt')] });
    expect(m.files.map((f) => f.path)).toEqual(['model.onnx', 'weights/model.onnx.data', 'labels.txt']);
    expect(manifestDigest(m)).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The digest does not depend on key order.
    expect(manifestDigest(parseManifest({ files: m.files, version: 2, name: 'resnet' }))).toBe(manifestDigest(m));
  });
  it.each([
    ['../../etc/passwd', "'..' is not allowed"],
    ['a/../../b', "'..' is not allowed"],
    ['/etc/passwd', 'absolute paths are not allowed'],
    ['C:/x.onnx', 'absolute paths are not allowed'],
    ['a\\b.onnx', 'backslashes'],
    ['./model.onnx', 'not normalised'],
    ['a//b', 'not normalised'],
    ['.ssh/id', 'hidden files'],
    ['', 'empty'],
  ])('refuses path %j', (p, why) => {
    expect(pathProblem(p)).toContain(why);
    expect(() => parseManifest({ name: 'm', version: 1, files: [file('model.onnx'), file(p)] })).toThrow(why);
  });
  it('refuses file:// sources, bad digests, a missing model file and duplicate paths', () => {
    expect(() => parseManifest({ name: 'm', version: 1, files: [{ path: 'model.onnx', uri: 'file:///etc/passwd', sha256: HEX }] })).toThrow(/https:\/\//);
    expect(() => parseManifest({ name: 'm', version: 1, files: [{ path: 'model.onnx', uri: 'https://x/y', sha256: 'ABC' }] })).toThrow(/64 lowercase hex/);
    expect(() => parseManifest({ name: 'm', version: 1, files: [file('labels.txt')] })).toThrow(/no top-level \.onnx/);
    expect(() => parseManifest({ name: 'm', version: 1, files: [file('model.onnx'), file('model.onnx')] })).toThrow(/appears twice/);
    expect(() => parseManifest({ name: '../m', version: 1, files: [file('model.onnx')] })).toThrow(/never a path/);
  });
});

describe('redaction', () => {
  it('drops user-info and query strings from URIs', () => {
    expect(redactUri('https://user:s3cret@host.example/a/b.onnx?X-Amz-Signature=abc&token=t')).toBe('https://host.example/a/b.onnx?…');
    expect(redactUri('s3://bucket/key.onnx')).toBe('s3://bucket/key.onnx');
    expect(scrub('token hf_abcdef in text', ['hf_abcdef'])).toBe('token *** in text');
  });
});

describe('manifest JSON Schema', () => {
  it('its path pattern accepts and refuses what pathProblem does', async () => {
    const { PATH_PATTERN } = await import('../../src/sources/manifest.js');
    for (const ok of ['model.onnx', 'a/b/c.data', 'labels.txt', 'x..y']) expect([ok, PATH_PATTERN.test(ok), pathProblem(ok)]).toEqual([ok, true, undefined]);
    for (const bad of ['../x', 'a/../b', '/etc/passwd', 'C:/x', 'a\\b', './m', 'a//b', '.hidden', 'a/', '']) {
      expect([bad, PATH_PATTERN.test(bad)]).toEqual([bad, false]);
      expect(pathProblem(bad)).toBeDefined();
    }
  });
});

describe('docs/model-manifest.schema.json', () => {
  it('is up to date with the zod schema (regenerate: npm run build && node scripts/gen-manifest-schema.mjs)', async () => {
    const { readFileSync } = await import('node:fs');
    const { manifestJsonSchema } = await import('../../src/sources/manifest.js');
    const file = readFileSync(new URL('../../docs/model-manifest.schema.json', import.meta.url), 'utf8');
    expect(file).toBe(`${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
  });
});
