/**
 * Real processes: the agent (gpu-agent serve) is SIGKILLed in the middle of a download and
 * restarted — the pull resumes from what was on disk (Range) and completes verified; and the
 * `gpu-agent pull` / `gpu-agent cache` commands with their exit codes and output.
 * Needs the build (dist/): `npm test` runs tsc first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBundledModels, generateComputeModel } from '../../scripts/generate-models.mjs';
import { postJson } from '../helpers/agent.js';
import { CLI, spawnCliAgent, type CliAgent } from '../helpers/cli-agent.js';
import { sha256, startSourceServer, type SourceServer } from './source-server.js';

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));
let server: SourceServer;
let heavy: Buffer;
let addSub: Buffer;

function serve(models: string, stateDir: string): Promise<CliAgent> {
  return spawnCliAgent(['--models', models, '--state-dir', stateDir, '--port', '0', '--providers', 'cpu', '--allow-http', '--intra-op-threads', '1'], { timeoutMs: 30_000, stderr: 'capture' });
}

beforeAll(async () => {
  const gen = tmp('gen-');
  await generateComputeModel(gen, 'heavy', 512, 3, 2); // ~2 MB of weights
  await generateBundledModels(gen);
  heavy = readFileSync(path.join(gen, 'heavy/1/model.onnx'));
  addSub = readFileSync(path.join(gen, 'add_sub/1/model.onnx'));
  server = await startSourceServer();
  server.add('/heavy/model.onnx', heavy, { throttle: 400_000 });
  server.add('/add_sub/model.onnx', addSub);
});
afterAll(async () => {
  await server?.close();
});

describe('an agent killed mid-download', () => {
  it('resumes from what it kept after a restart and completes', async () => {
    const models = tmp('repo-');
    const stateDir = tmp('state-');
    const source = { name: 'heavy', version: 1, files: [{ path: 'model.onnx', uri: `${server.url}/heavy/model.onnx`, sha256: sha256(heavy), size: heavy.length }] };
    const first = await serve(models, stateDir);
    const pending = postJson(`${first.url}/v2/repository/models/heavy/load`, { parameters: { source } }).catch(() => undefined);
    const partial = path.join(stateDir, 'blobs/partial', `${sha256(heavy)}.partial`);
    for (let i = 0; i < 1000 && (statSync(partial, { throwIfNoEntry: false })?.size ?? 0) < 300_000; i++) await new Promise((r) => setTimeout(r, 10));
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    await pending;
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThanOrEqual(300_000);
    expect(kept).toBeLessThan(heavy.length);
    expect(existsSync(path.join(stateDir, 'blobs/sha256', sha256(heavy)))).toBe(false); // nothing half-written is a blob
    expect(existsSync(path.join(models, 'heavy/1'))).toBe(false);

    server.behave('/heavy/model.onnx', {});
    const second = await serve(models, stateDir);
    try {
      const before = server.requests.length;
      const r = await postJson(`${second.url}/v2/repository/models/heavy/load`, { parameters: { source } });
      expect(r.status).toBe(200);
      const req = server.requests.slice(before).find((x) => x.url === '/heavy/model.onnx')!;
      expect(Number(/^bytes=(\d+)-$/.exec(req.range ?? '')?.[1])).toBeGreaterThanOrEqual(kept - 64 * 1024); // resumed near where it stopped
      expect(sha256(readFileSync(path.join(stateDir, 'blobs/sha256', sha256(heavy))))).toBe(sha256(heavy));
      const meta = await fetch(`${second.url}/v2/models/heavy`).then((x) => x.json() as Promise<any>);
      const input = meta.inputs[0];
      const ok = await postJson(`${second.url}/v2/models/heavy/infer`, { inputs: [{ name: input.name, shape: [1, 512], datatype: 'FP32', data: Array(512).fill(0.5) }] });
      expect(ok.status).toBe(200);
      expect(second.lines().some((l) => l.includes('"by":"api"') && l.includes('pulled model loaded'))).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((r) => second.child.once('exit', r));
    }
  }, 60_000);
});

describe('gpu-agent pull and gpu-agent cache', () => {
  // Async: the source server lives in this process, a spawnSync would block it.
  const run = (args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });

  it('pulls by URI and by manifest, prints plain progress off a terminal, exits 0 / 1 with the reason', async () => {
    const models = tmp('repo-');
    const stateDir = tmp('state-');
    const common = ['--models', models, '--state-dir', stateDir, '--allow-http'];
    const ok = await run(['pull', `${server.url}/add_sub/model.onnx`, '--sha256', sha256(addSub), '--name', 'adder', ...common]);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^pull adder v1: DOWNLOADING /m);
    expect(ok.stdout).toMatch(/^pull adder v1: VERIFYING /m);
    expect(ok.stdout).toContain(`pulled adder version 1 (1 file, manifest sha256:`);
    expect(statSync(path.join(models, 'adder/1/model.onnx')).ino).toBe(statSync(path.join(stateDir, 'blobs/sha256', sha256(addSub))).ino);
    // The next pull without --version is version 2; from the cache, no transfer.
    const before = server.requests.length;
    const again = await run(['pull', `${server.url}/add_sub/model.onnx`, '--sha256', sha256(addSub), '--name', 'adder', ...common]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('pulled adder version 2');
    expect(server.requests.length).toBe(before);

    const wrong = await run(['pull', `${server.url}/add_sub/model.onnx`, '--sha256', 'c'.repeat(64), '--name', 'bad', ...common]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain(`gpu-agent pull: failed: sha256 mismatch for model.onnx: the manifest says ${'c'.repeat(64)}, the downloaded bytes hash to ${sha256(addSub)}`);

    const noHttp = await run(['pull', `${server.url}/add_sub/model.onnx`, '--sha256', sha256(addSub), '--name', 'plain', '--models', models, '--state-dir', stateDir]);
    expect(noHttp.status).toBe(1);
    expect(noHttp.stderr).toContain('--allow-http');

    const file = path.join(tmp('m-'), 'manifest.json');
    writeFileSync(file, JSON.stringify({ name: 'evil', version: 1, files: [{ path: '../../x.onnx', uri: `${server.url}/add_sub/model.onnx`, sha256: sha256(addSub) }] }));
    const evil = await run(['pull', '--manifest', file, ...common]);
    expect(evil.status).toBe(2);
    expect(evil.stderr).toContain("'..' is not allowed");
    writeFileSync(file, JSON.stringify({ name: 'fromfile', version: 3, files: [{ path: 'model.onnx', uri: `${server.url}/add_sub/model.onnx`, sha256: sha256(addSub) }] }));
    expect((await run(['pull', '--manifest', file, ...common])).status).toBe(0);
    expect(JSON.parse(readFileSync(path.join(models, 'fromfile/config.json'), 'utf8')).version_policy).toEqual({ specific: { versions: [3] } });

    const ls = JSON.parse((await run(['cache', 'ls', '--json', '--state-dir', stateDir, '--models', models])).stdout);
    expect(ls.blobs).toEqual([expect.objectContaining({ sha256: sha256(addSub), bytes: addSub.length, usedBy: ['adder/1', 'adder/2', 'fromfile/3'] })]);
    expect(ls.versions.map((v: any) => `${v.name}/${v.version}/${v.by}`)).toEqual(['adder/1/cli', 'adder/2/cli', 'fromfile/3/cli']);
    expect((await run(['cache', 'verify', '--state-dir', stateDir, '--models', models])).status).toBe(0);
    expect((await run(['cache', 'gc', '--state-dir', stateDir, '--models', models])).stdout).toContain('gc: removed 0 blob(s)');
    // Corruption on disk is found by verify, which removes the blob and the versions using it.
    const blob = path.join(stateDir, 'blobs/sha256', sha256(addSub));
    writeFileSync(blob, 'tampered');
    const verify = await run(['cache', 'verify', '--state-dir', stateDir, '--models', models]);
    expect(verify.status).toBe(1);
    expect(verify.stdout).toContain(`CORRUPT  ${sha256(addSub)}`);
    expect(existsSync(path.join(models, 'adder/1'))).toBe(false);
  });
});
