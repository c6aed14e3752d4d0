/**
 * The puller against a real HTTP server on 127.0.0.1: Range resumes, cuts, stalls, wrong
 * bytes, one transfer per digest, the cache budget, Hugging Face's resolve route, and no
 * credentials anywhere in what comes out.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, type Manifest } from '../../src/sources/manifest.js';
import { ModelPuller, type PullProgress } from '../../src/sources/puller.js';
import { systemClock } from '../../src/util/clock.js';
import { sha256, startSourceServer, type SourceServer } from './source-server.js';

let server: SourceServer;
const logs: string[] = [];
const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logs.push(String(c)); cb(); } }));

function dirs() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-pull-'));
  return { stateDir: path.join(root, 'state'), modelsDir: path.join(root, 'models') };
}

function puller(d = dirs(), extra: Partial<ConstructorParameters<typeof ModelPuller>[0]> = {}) {
  const progress: PullProgress[] = [];
  const p = new ModelPuller({
    ...d, allowHttp: true, cacheBudget: undefined, stallMs: 400, clock: systemClock, logger,
    retry: { retries: 4, baseMs: 20, capMs: 100 }, reserveBytes: 0, progressIntervalMs: 0,
    onProgress: (x) => progress.push({ ...x }), ...extra,
  });
  return { p, progress, ...d };
}

function manifest(name: string, version: number, files: { path: string; url: string; data: Buffer; size?: boolean }[]): Manifest {
  return parseManifest({ name, version, files: files.map((f) => ({ path: f.path, uri: f.url, sha256: sha256(f.data), ...(f.size === false ? {} : { size: f.data.length }) })) });
}

beforeAll(async () => {
  server = await startSourceServer();
});
afterAll(async () => {
  await server.close();
});

describe('pull over http', () => {
  it('downloads, verifies, stores by digest and hard-links the version folder to the blob', async () => {
    const data = randomBytes(300_000);
    const labels = Buffer.from('cat\ndog\n');
    server.add('/a/model.onnx', data);
    server.add('/a/labels.txt', labels);
    const { p, progress, stateDir, modelsDir } = puller();
    const m = manifest('alpha', 1, [{ path: 'model.onnx', url: `${server.url}/a/model.onnx`, data }, { path: 'labels.txt', url: `${server.url}/a/labels.txt`, data: labels, size: false }]);
    const record = await p.pull(m, 'cli');
    await p.activate('alpha', 1);
    const blob = path.join(stateDir, 'blobs/sha256', sha256(data));
    expect(readFileSync(blob).equals(data)).toBe(true);
    const linked = path.join(modelsDir, 'alpha/1/model.onnx');
    expect(statSync(linked).ino).toBe(statSync(blob).ino); // one copy on disk
    expect(readFileSync(path.join(modelsDir, 'alpha/labels.txt'), 'utf8')).toBe('cat\ndog\n'); // labels_file resolves at the model folder
    expect(JSON.parse(readFileSync(path.join(modelsDir, 'alpha/config.json'), 'utf8'))).toEqual({ version_policy: { specific: { versions: [1] } } });
    expect(record.manifestDigest).toMatch(/^sha256:/);
    expect(record.source).toBe(`${server.url}/a/model.onnx`);
    expect(progress[0]!.state).toBe('DOWNLOADING');
    expect(progress.some((x) => x.state === 'VERIFYING')).toBe(true);
    expect(progress.at(-1)!.bytesDone).toBe(data.length + labels.length);
    expect(readdirSync(path.join(stateDir, 'blobs/partial'))).toEqual([]); // nothing half-written left
  });

  it('a wrong sha256 deletes the download and names both digests', async () => {
    const data = randomBytes(100_000);
    server.add('/wrong/model.onnx', data, { wrong: true });
    const { p, stateDir, progress } = puller();
    const m = manifest('wrongsha', 1, [{ path: 'model.onnx', url: `${server.url}/wrong/model.onnx`, data }]);
    const err = await p.pull(m, 'api').catch((e: Error) => e);
    const actual = sha256(Buffer.from(data.map((x) => x ^ 0xff)));
    expect((err as Error).message).toContain(`the manifest says ${sha256(data)}`);
    expect((err as Error).message).toContain(`hash to ${actual}`);
    expect(existsSync(path.join(stateDir, 'blobs/sha256', sha256(data)))).toBe(false);
    expect(readdirSync(path.join(stateDir, 'blobs/partial'))).toEqual([]);
    expect(progress.at(-1)!.state).toBe('UNAVAILABLE');
    expect(p.progress()[0]!.reason).toContain('sha256 mismatch');
  });

  it('a connection cut mid-file resumes with Range from what was kept', async () => {
    const data = randomBytes(1_000_000);
    server.add('/cut/model.onnx', data, { cutAfter: { bytes: 400_000, times: 2 } });
    const { p, stateDir } = puller();
    const before = server.requests.length;
    await p.pull(manifest('cutmodel', 1, [{ path: 'model.onnx', url: `${server.url}/cut/model.onnx`, data }]), 'api');
    const reqs = server.requests.slice(before).filter((r) => r.url === '/cut/model.onnx');
    expect(reqs.length).toBe(3);
    expect(reqs[0]!.range).toBeUndefined();
    expect(reqs[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(Number(/=(\d+)-/.exec(reqs[2]!.range!)![1])).toBeGreaterThan(Number(/=(\d+)-/.exec(reqs[1]!.range!)![1]));
    // Resumed, not restarted: the server sent the file about once, not three times.
    expect(server.bodyBytesSent('/cut/model.onnx')).toBeLessThan(data.length + 200_000);
    expect(readFileSync(path.join(stateDir, 'blobs/sha256', sha256(data))).equals(data)).toBe(true);
  });

  it('a stall (no bytes for --pull-stall-seconds) is dropped and retried', async () => {
    const data = randomBytes(500_000);
    server.add('/stall/model.onnx', data, { stallAfter: { bytes: 200_000, times: 1 } });
    const { p, stateDir } = puller();
    const before = server.requests.length;
    await p.pull(manifest('stalled', 1, [{ path: 'model.onnx', url: `${server.url}/stall/model.onnx`, data }]), 'api');
    const reqs = server.requests.slice(before).filter((r) => r.url === '/stall/model.onnx');
    expect(reqs.length).toBe(2);
    expect(reqs[1]!.range).toMatch(/^bytes=\d+-$/);
    expect(existsSync(path.join(stateDir, 'blobs/sha256', sha256(data)))).toBe(true);
    expect(logs.some((l) => l.includes('download interrupted; retrying') && l.includes('no bytes from'))).toBe(true);
  });

  it('gives up after the bounded retries with the reason', async () => {
    const data = randomBytes(200_000);
    server.add('/flaky/model.onnx', data, { cutAfter: { bytes: 1000, times: 100 } });
    const { p } = puller(undefined, { retry: { retries: 2, baseMs: 10, capMs: 20 } });
    const before = server.requests.length;
    const err = await p.pull(manifest('flaky', 1, [{ path: 'model.onnx', url: `${server.url}/flaky/model.onnx`, data }]), 'api').catch((e: Error) => e);
    expect((err as Error).message).toMatch(/connection closed after|failed/);
    expect(server.requests.slice(before).filter((r) => r.url === '/flaky/model.onnx').length).toBe(3);
  });

  it('a server without Range support starts over from byte 0', async () => {
    const data = randomBytes(300_000);
    server.add('/norange/model.onnx', data, { noRange: true, cutAfter: { bytes: 100_000, times: 1 } });
    const { p, stateDir } = puller();
    await p.pull(manifest('norange', 1, [{ path: 'model.onnx', url: `${server.url}/norange/model.onnx`, data }]), 'api');
    expect(readFileSync(path.join(stateDir, 'blobs/sha256', sha256(data))).equals(data)).toBe(true);
  });

  it('two concurrent pulls of one digest make one transfer', async () => {
    const data = randomBytes(800_000);
    server.add('/shared/model.onnx', data, { throttle: 4_000_000 });
    const { p, modelsDir } = puller();
    const before = server.requests.length;
    const url = `${server.url}/shared/model.onnx`;
    await Promise.all([
      p.pull(manifest('one', 1, [{ path: 'model.onnx', url, data }]), 'api'),
      p.pull(manifest('two', 1, [{ path: 'model.onnx', url, data }]), 'coordinator'),
      p.pull(manifest('one', 1, [{ path: 'model.onnx', url, data }]), 'api'),
    ]);
    expect(server.requests.slice(before).filter((r) => r.url === '/shared/model.onnx').length).toBe(1);
    expect(server.bodyBytesSent('/shared/model.onnx')).toBe(data.length);
    expect(statSync(path.join(modelsDir, 'one/1/model.onnx')).ino).toBe(statSync(path.join(modelsDir, 'two/1/model.onnx')).ino);
  });

  it('refuses plain http:// without --allow-http', async () => {
    const data = randomBytes(1000);
    server.add('/plain/model.onnx', data);
    const { p } = puller(undefined, { allowHttp: false });
    await expect(p.pull(manifest('plain', 1, [{ path: 'model.onnx', url: `${server.url}/plain/model.onnx`, data }]), 'api')).rejects.toThrow(/refusing plain http:\/\/.*--allow-http/);
  });

  it('checks free disk space before downloading', async () => {
    const data = randomBytes(1000);
    server.add('/disk/model.onnx', data);
    const { p } = puller(undefined, { reserveBytes: Number.MAX_SAFE_INTEGER });
    await expect(p.pull(manifest('disk', 1, [{ path: 'model.onnx', url: `${server.url}/disk/model.onnx`, data }]), 'api')).rejects.toThrow(/not enough disk space for model.onnx/);
  });

  it('refuses to pull into a model folder it did not create, and a version that exists with other content', async () => {
    const d = dirs();
    const data = randomBytes(1000);
    server.add('/own/model.onnx', data);
    const { p } = puller(d);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.join(d.modelsDir, 'handmade/1'), { recursive: true });
    writeFileSync(path.join(d.modelsDir, 'handmade/1/model.onnx'), 'x');
    await expect(p.pull(manifest('handmade', 2, [{ path: 'model.onnx', url: `${server.url}/own/model.onnx`, data }]), 'api')).rejects.toThrow(/was not created by a pull/);
    await p.pull(manifest('mine', 1, [{ path: 'model.onnx', url: `${server.url}/own/model.onnx`, data }]), 'api');
    const other = randomBytes(1000);
    server.add('/own/other.onnx', other);
    await expect(p.pull(manifest('mine', 1, [{ path: 'model.onnx', url: `${server.url}/own/other.onnx`, data: other }]), 'api')).rejects.toThrow(/already exists with other content/);
  });

  it('evicts least recently used unprotected blobs to stay within --cache-budget', async () => {
    const d = dirs();
    const blobs = [randomBytes(100_000), randomBytes(100_000), randomBytes(100_000)];
    blobs.forEach((b, i) => server.add(`/budget/${i}.onnx`, b));
    const protectedSet = new Set<string>();
    const { p, modelsDir } = puller(d, { cacheBudget: 250_000, protectedDigests: () => protectedSet });
    await p.pull(manifest('b0', 1, [{ path: 'model.onnx', url: `${server.url}/budget/0.onnx`, data: blobs[0]! }]), 'api');
    await p.pull(manifest('b1', 1, [{ path: 'model.onnx', url: `${server.url}/budget/1.onnx`, data: blobs[1]! }]), 'api');
    protectedSet.add(sha256(blobs[0]!)); // b0 is loaded: never evicted, though least recently used
    await p.pull(manifest('b2', 1, [{ path: 'model.onnx', url: `${server.url}/budget/2.onnx`, data: blobs[2]! }]), 'api');
    const left = (await p.blobs.list()).map((b) => b.hex).sort();
    expect(left).toEqual([sha256(blobs[0]!), sha256(blobs[2]!)].sort());
    expect(existsSync(path.join(modelsDir, 'b1/1'))).toBe(false);
    expect((await p.records.get('b1', 1))!.evicted).toContain('evicted to fit the cache budget');
    await expect(p.activate('b1', 1)).rejects.toThrow(/no longer cached/);
    // Nothing left to evict: a pull that cannot fit says why.
    protectedSet.add(sha256(blobs[2]!));
    const big = randomBytes(100_000);
    server.add('/budget/big.onnx', big);
    await expect(p.pull(manifest('big', 1, [{ path: 'model.onnx', url: `${server.url}/budget/big.onnx`, data: big }]), 'api')).rejects.toThrow(/cache budget of 250000 bytes/);
  });
});

describe('hf:// through a local resolve route', () => {
  it('follows the redirect, sends the token to the endpoint only, and checks X-Linked-Etag', async () => {
    const data = randomBytes(50_000);
    const token = 'hf_test_secret_token_123';
    server.addHf('acme/tiny', 'v2', 'onnx/model.onnx', data, token);
    const env = { HF_ENDPOINT: server.url, HF_TOKEN: token };
    const { p, stateDir } = puller(undefined, { env });
    const before = server.requests.length;
    const record = await p.pull(parseManifest({ name: 'tiny', version: 1, files: [{ path: 'model.onnx', uri: 'hf://acme/tiny@v2/onnx/model.onnx', sha256: sha256(data) }] }), 'api');
    const reqs = server.requests.slice(before);
    expect(reqs[0]).toMatchObject({ url: '/acme/tiny/resolve/v2/onnx/model.onnx', authorization: `Bearer ${token}`, status: 302 });
    expect(reqs[1]).toMatchObject({ url: `/cdn/${sha256(data)}`, authorization: undefined, status: 200 });
    expect(existsSync(path.join(stateDir, 'blobs/sha256', sha256(data)))).toBe(true);
    expect(JSON.stringify(record)).not.toContain(token);

    // A wrong token: 401 with the hint, and the token is in no message.
    const { p: p2 } = puller(undefined, { env: { ...env, HF_TOKEN: 'hf_wrong_token_456' } });
    const other = randomBytes(1000);
    server.addHf('acme/tiny', 'main', 'other.onnx', other, token);
    const e401 = await p2.pull(parseManifest({ name: 'tiny2', version: 1, files: [{ path: 'model.onnx', uri: 'hf://acme/tiny/other.onnx', sha256: sha256(other) }] }), 'api').catch((e: Error) => e);
    expect((e401 as Error).message).toMatch(/HTTP 401.*check the credentials/);
    expect((e401 as Error).message).not.toContain('hf_wrong_token_456');

    // The manifest's digest disagrees with what HF advertises: stop before any download.
    const { p: p3 } = puller(undefined, { env });
    const wrong = 'b'.repeat(64);
    const eTag = await p3.pull(parseManifest({ name: 'tiny3', version: 1, files: [{ path: 'model.onnx', uri: 'hf://acme/tiny@v2/onnx/model.onnx', sha256: wrong }] }), 'api').catch((e: Error) => e);
    expect((eTag as Error).message).toContain(`the manifest says ${wrong}, Hugging Face advertises ${sha256(data)}`);
    expect(logs.join('\n')).not.toContain(token);
    expect(logs.join('\n')).not.toContain('hf_wrong_token_456');
  });
});

describe('credentials stay out of every output', () => {
  it('user-info and query tokens are redacted from errors, records, progress and logs', async () => {
    const data = randomBytes(5000);
    server.add('/cred/model.onnx', data);
    const { p, progress, stateDir } = puller();
    const uri = `${server.url.replace('http://', 'http://alice:pa55word-xyz@')}/cred/model.onnx?sig=query-secret-789`;
    const record = await p.pull(parseManifest({ name: 'cred', version: 1, files: [{ path: 'model.onnx', uri, sha256: sha256(data) }] }), 'api');
    expect(server.requests.at(-1)!.authorization).toBe(`Basic ${Buffer.from('alice:pa55word-xyz').toString('base64')}`);
    const missing = await p.pull(parseManifest({ name: 'cred2', version: 1, files: [{ path: 'model.onnx', uri: uri.replace('/cred/', '/nope/'), sha256: sha256(data).replace(/^./, 'f') }] }), 'api').catch((e: Error) => e);
    const everything = [JSON.stringify(record), (missing as Error).message, JSON.stringify(progress), JSON.stringify(p.progress()), logs.join('\n'),
      ...readdirSync(path.join(stateDir, 'pulls/cred')).map((f) => readFileSync(path.join(stateDir, 'pulls/cred', f), 'utf8'))].join('\n');
    expect(everything).toContain('/cred/model.onnx');
    for (const secret of ['pa55word-xyz', 'alice:', 'query-secret-789']) expect(everything).not.toContain(secret);
  });
});
