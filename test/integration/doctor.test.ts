/**
 * `gpu-agent doctor` on this machine (no GPU, no CUDA provider): it must say exactly that,
 * and fail only when the agent could not serve.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBundledModels } from '../../scripts/generate-models.mjs';
import { PROBE_MODEL_BASE64 } from '../../src/doctor.js';
import { makeRepository } from '../helpers/agent.js';

const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli.js');
let repo: string;
let busy: Server;
let busyPort: number;

const doctor = (...args: string[]) => spawnSync(process.execPath, [CLI, 'doctor', '--models', repo, '--port', '0', ...args], { encoding: 'utf8', timeout: 30_000 });

beforeAll(async () => {
  repo = await makeRepository();
  mkdirSync(path.join(repo, 'typo', '1'), { recursive: true });
  writeFileSync(path.join(repo, 'typo', '1', 'model.onnx'), 'x');
  writeFileSync(path.join(repo, 'typo', 'config.pbtxt'), 'max_batch_sise: 4\n');
  busy = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
  busyPort = (busy.address() as { port: number }).port;
});

afterAll(() => busy?.close());

describe('gpu-agent doctor', () => {
  it('passes on a CPU-only host and says why CUDA is not used', () => {
    const r = doctor();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ok {4}provider cpu: a session runs on cpu/);
    expect(r.stdout).toMatch(/WARN {2}provider cuda: the CUDA execution provider is not installed: libonnxruntime_providers_shared\.so, libonnxruntime_providers_cuda\.so not found/);
    expect(r.stdout).toMatch(/fix: run scripts\/install-cuda-provider\.sh/);
    expect(r.stdout).toMatch(/WARN {2}model typo: .*config\.pbtxt line 1: field '\(root\)'|WARN {2}model typo: .*unknown field 'max_batch_sise'/);
    expect(r.stdout).toMatch(/ok {4}model add_sub: versions 1/);
    expect(r.stdout).toMatch(/the agent can serve on this host/);
  });

  it('fails when the port is taken or a public address has no token, with --json', () => {
    const r = doctor('--json', '--port', String(busyPort));
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(false);
    expect(report.checks).toContainEqual(expect.objectContaining({ name: 'port', status: 'fail', detail: expect.stringMatching(/EADDRINUSE/) }));
    const pub = doctor('--json', '--host', '0.0.0.0');
    expect(pub.status).toBe(1);
    expect(JSON.parse(pub.stdout).checks).toContainEqual(expect.objectContaining({ name: 'auth', status: 'fail', fix: expect.stringMatching(/--api-token/) }));
  });

  it('fails when no provider can run a model', () => {
    const r = doctor('--providers', 'cuda');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}providers: none of cuda can run a model/);
  });

  it('probes with the generator\'s add_sub model, byte for byte', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'probe-'));
    await generateBundledModels(dir);
    expect(readFileSync(path.join(dir, 'add_sub', '1', 'model.onnx')).toString('base64')).toBe(PROBE_MODEL_BASE64);
  });
});
