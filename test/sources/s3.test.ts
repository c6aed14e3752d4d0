/**
 * s3:// against a real S3-compatible server started here (npm @20minutes/s3rver, the maintained fork of s3rver, which verifies SigV4
 * signatures with its access key S3RVER / secret S3RVER): credentials from the environment
 * and from a shared credentials file, AWS_ENDPOINT_URL, resume with a signed Range, a wrong
 * secret refused, and the secret in no output.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import aws4 from 'aws4';
import { pino } from 'pino';
import S3rver from '@20minutes/s3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/sources/manifest.js';
import { ModelPuller } from '../../src/sources/puller.js';
import { systemClock } from '../../src/util/clock.js';
import { sha256 } from './source-server.js';

let s3: S3rver;
let endpoint: string;
const logs: string[] = [];
const logger = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { logs.push(String(c)); cb(); } }));
const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** PUT an object with a SigV4-signed request (what an uploader does). */
function put(key: string, body: Buffer): Promise<number> {
  const url = new URL(`${endpoint}/models/${key}`);
  const signed = aws4.sign({ host: url.host, path: url.pathname, method: 'PUT', service: 's3', region: 'us-east-1', body, headers: { 'content-type': 'application/octet-stream' } }, creds);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', headers: signed.headers as Record<string, string> }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function puller(env: NodeJS.ProcessEnv) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-s3-'));
  return new ModelPuller({
    stateDir: path.join(root, 'state'), modelsDir: path.join(root, 'models'), allowHttp: true, cacheBudget: undefined, stallMs: 5000,
    clock: systemClock, logger, env, retry: { retries: 2, baseMs: 10, capMs: 50 }, reserveBytes: 0,
  });
}

beforeAll(async () => {
  s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: mkdtempSync(path.join(os.tmpdir(), 's3rver-')), configureBuckets: [{ name: 'models', configs: [] }] });
  const addr = (await s3.run()) as AddressInfo;
  endpoint = `http://127.0.0.1:${addr.port}`;
});
afterAll(async () => {
  await s3.close();
});

describe('s3:// with SigV4 against s3rver', () => {
  it('pulls with credentials from the environment', async () => {
    const data = randomBytes(400_000);
    expect(await put('resnet/model.onnx', data)).toBe(200);
    const p = puller({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_ENDPOINT_URL: endpoint, AWS_REGION: 'us-east-1', HOME: os.tmpdir() });
    const record = await p.pull(parseManifest({ name: 'resnet', version: 1, files: [{ path: 'model.onnx', uri: 's3://models/resnet/model.onnx', sha256: sha256(data), size: data.length }] }), 'api');
    expect(record.source).toBe('s3://models/resnet/model.onnx');
    expect(readFileSync(p.blobs.blobPath(sha256(data))).equals(data)).toBe(true);
  });

  it('reads ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE) and resumes a partial download with a signed Range', async () => {
    const data = randomBytes(300_000);
    expect(await put('bert/model.onnx', data)).toBe(200);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'aws-'));
    writeFileSync(path.join(dir, 'credentials'), '[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n[lab]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n');
    const p = puller({ AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials'), AWS_PROFILE: 'lab', AWS_ENDPOINT_URL: endpoint, HOME: dir });
    // What an interrupted earlier download left: the first 100 kB.
    await p.blobs.init();
    writeFileSync(p.blobs.partialPath(sha256(data)), data.subarray(0, 100_000));
    await p.pull(parseManifest({ name: 'bert', version: 1, files: [{ path: 'model.onnx', uri: 's3://models/bert/model.onnx', sha256: sha256(data), size: data.length }] }), 'cli');
    expect(readFileSync(p.blobs.blobPath(sha256(data))).equals(data)).toBe(true);
  });

  it('a wrong secret is refused by the server (real signature check) and appears in no output', async () => {
    const data = randomBytes(1000);
    expect(await put('x/model.onnx', data)).toBe(200);
    const secret = 'not-the-secret-key-42';
    const p = puller({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: secret, AWS_ENDPOINT_URL: endpoint, HOME: os.tmpdir() });
    const err = await p.pull(parseManifest({ name: 'x', version: 1, files: [{ path: 'model.onnx', uri: 's3://models/x/model.onnx', sha256: sha256(data) }] }), 'api').catch((e: Error) => e);
    expect((err as Error).message).toMatch(/HTTP 403.*check the credentials/);
    expect((err as Error).message).not.toContain(secret);
    expect(JSON.stringify(p.progress())).not.toContain(secret);
    expect(logs.join('\n')).not.toContain(secret);
  });
});
