/**
 * Large files in parallel byte ranges against a real HTTP server on 127.0.0.1: the ranges
 * arrive concurrently into one partial file and the whole file's sha256 (the manifest's) is
 * checked; a range cut mid-way resumes from what it had; a puller stopped mid-download and a
 * new one on the same state dir resume every range; a server without Range support still works
 * (one stream).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitRanges } from '../../src/sources/cache/ranged-download.js';
import { parseManifest } from '../../src/sources/manifest.js';
import { ModelPuller, type PullProgress } from '../../src/sources/puller.js';
import { systemClock } from '../../src/util/clock.js';
import { sha256, startSourceServer, type SourceServer } from './source-server.js';

let server: SourceServer;
const logger = pino({ level: 'silent' });
const SIZE = 3 * 1024 * 1024 + 12_345; // not a multiple of the part size

function puller(stateRoot: string, onProgress?: (p: PullProgress) => void) {
  return new ModelPuller({
    stateDir: path.join(stateRoot, 'state'), modelsDir: path.join(stateRoot, 'models'), allowHttp: true, cacheBudget: undefined,
    stallMs: 2000, clock: systemClock, logger, retry: { retries: 4, baseMs: 20, capMs: 100 }, reserveBytes: 0, progressIntervalMs: 0,
    ranges: { parts: 4, thresholdBytes: 1024 * 1024 }, ...(onProgress ? { onProgress } : {}),
  });
}
const manifest = (name: string, url: string, data: Buffer) => parseManifest({ name, version: 1, files: [{ path: 'model.onnx', uri: url, sha256: sha256(data), size: data.length }] });
const requestsOf = (p: string) => server.requests.filter((r) => r.url === p);
const root = () => mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-ranges-'));

beforeAll(async () => {
  server = await startSourceServer();
});
afterAll(async () => {
  await server.close();
});

describe('parallel byte ranges', () => {
  it('splits a file into ranges that cover it exactly once', () => {
    const r = splitRanges(SIZE, 4);
    expect(r).toHaveLength(4);
    expect(r[0]!.start).toBe(0);
    expect(r.at(-1)!.end).toBe(SIZE);
    for (let i = 1; i < r.length; i++) expect(r[i]!.start).toBe(r[i - 1]!.end);
    expect(splitRanges(10, 4)).toEqual([{ start: 0, end: 10, done: 0 }]); // small: one range
  });

  it('a file served in ranges arrives in 4 concurrent ranges and verifies against the manifest', async () => {
    const data = randomBytes(SIZE);
    server.add('/big/a.onnx', data);
    const dir = root();
    const p = puller(dir);
    await p.pull(manifest('big_a', `${server.url}/big/a.onnx`, data), 'cli');
    expect(readFileSync(path.join(dir, 'state/blobs/sha256', sha256(data))).equals(data)).toBe(true);
    const reqs = requestsOf('/big/a.onnx');
    expect(reqs).toHaveLength(4);
    const ranges = splitRanges(SIZE, 4);
    expect(reqs.map((r) => r.range).sort()).toEqual(ranges.map((r) => `bytes=${r.start}-${r.end - 1}`).sort());
    expect(reqs.every((r) => r.status === 206)).toBe(true);
    expect(server.bodyBytesSent('/big/a.onnx')).toBe(SIZE); // each byte once
    expect(readdirSync(path.join(dir, 'state/blobs/partial'))).toEqual([]); // no partial, no range record left
  });

  it('ranges cut mid-way resume from what they had, and the file verifies', async () => {
    const data = randomBytes(SIZE);
    server.add('/big/cut.onnx', data, { cutAfter: { bytes: 300_000, times: 2 } });
    const dir = root();
    await puller(dir).pull(manifest('big_cut', `${server.url}/big/cut.onnx`, data), 'cli');
    expect(readFileSync(path.join(dir, 'state/blobs/sha256', sha256(data))).equals(data)).toBe(true);
    const ranges = splitRanges(SIZE, 4);
    const reqs = requestsOf('/big/cut.onnx');
    // Retries ask for the rest of a range: from past its start, to the same end.
    const resumed = reqs.slice(4).filter((r) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(r.range ?? '');
      return m && ranges.some((g) => Number(m[1]) > g.start && Number(m[1]) < g.end && Number(m[2]) === g.end - 1);
    });
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    expect(server.bodyBytesSent('/big/cut.onnx')).toBeLessThan(2 * SIZE); // not started over
  });

  it('a puller stopped mid-download and a new one on the same state dir resume every range', async () => {
    const data = randomBytes(SIZE);
    server.add('/big/restart.onnx', data, { throttle: 1_000_000 });
    const dir = root();
    let seen = 0;
    let stop!: () => void;
    const halfway = new Promise<void>((r) => (stop = r));
    const first = puller(dir, (x) => {
      seen = x.bytesDone;
      if (seen > SIZE / 4) stop();
    });
    const firstPull = first.pull(manifest('big_restart', `${server.url}/big/restart.onnx`, data), 'cli').catch((e: Error) => e);
    await halfway;
    first.destroy();
    expect(await firstPull).toBeInstanceOf(Error);
    const partial = readdirSync(path.join(dir, 'state/blobs/partial'));
    expect(partial).toContain(`${sha256(data)}.partial.ranges.json`);
    const before = requestsOf('/big/restart.onnx').length;
    server.behave('/big/restart.onnx', {});
    let resumedFrom = 0;
    const second = puller(dir, (x) => (resumedFrom ||= x.bytesDone));
    await second.pull(manifest('big_restart', `${server.url}/big/restart.onnx`, data), 'cli');
    expect(readFileSync(path.join(dir, 'state/blobs/sha256', sha256(data))).equals(data)).toBe(true);
    expect(resumedFrom).toBeGreaterThan(0); // the bytes kept count as done from the first report
    const ranges = splitRanges(SIZE, 4);
    const after = requestsOf('/big/restart.onnx').slice(before);
    // Every range that had bytes asks only for the rest of it.
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(after.some((r) => ranges.some((g) => r.range?.startsWith(`bytes=${g.start}-`)))).toBe(false);
  });

  it('one range that stalls is dropped and resumed while the others complete', async () => {
    const data = randomBytes(SIZE);
    server.add('/big/stall.onnx', data, { stallAfter: { bytes: 200_000, times: 1 } });
    const dir = root();
    await puller(dir).pull(manifest('big_stall', `${server.url}/big/stall.onnx`, data), 'cli');
    expect(readFileSync(path.join(dir, 'state/blobs/sha256', sha256(data))).equals(data)).toBe(true);
    const reqs = requestsOf('/big/stall.onnx');
    expect(reqs.length).toBeGreaterThan(4); // the stalled range was asked again
    expect(server.bodyBytesSent('/big/stall.onnx')).toBeLessThan(2 * SIZE);
  });

  it('a server without Range support still works: one stream', async () => {
    const data = randomBytes(SIZE);
    server.add('/big/norange.onnx', data, { noRange: true });
    const dir = root();
    await puller(dir).pull(manifest('big_norange', `${server.url}/big/norange.onnx`, data), 'cli');
    expect(readFileSync(path.join(dir, 'state/blobs/sha256', sha256(data))).equals(data)).toBe(true);
    const reqs = requestsOf('/big/norange.onnx');
    expect(reqs.map((r) => r.status)).toEqual([200, 200]); // the probe (answered whole, dropped), then one stream
    expect(reqs[1]!.range).toBeUndefined();
  });
});
