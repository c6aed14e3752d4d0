/**
 * `gpu-agent doctor` in the operator's first hour: next to a running agent, on the bundled OCR
 * pipeline, and with --load (every model created and warmed up as a load would).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRepository } from '../helpers/agent.js';
import { CLI, spawnCliAgent } from '../helpers/cli-agent.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const doctor = (args: string[]) => spawnSync(process.execPath, [CLI, 'doctor', '--providers', 'cpu', ...args], { encoding: 'utf8', timeout: 120_000 });

describe('gpu-agent doctor for operators', () => {
  it('sees that a gpu-agent answers on the port, and passes the bundled OCR pipeline', async () => {
    const { child, url } = await spawnCliAgent(['--models', path.join(ROOT, 'models'), '--port', '0', '--providers', 'cpu', '--load-models', 'add_sub', '--api-token', 'doctor-token-1']);
    const port = new URL(url).port;
    const r = doctor(['--models', path.join(ROOT, 'models'), '--port', port, '--api-token', 'doctor-token-1']);
    child.kill('SIGTERM');
    expect(r.stdout).toMatch(new RegExp(`ok {4}port: 127\\.0\\.0\\.1:${port} is in use: a gpu-agent \\S+ answers there`));
    expect(r.stdout).toMatch(/ok {4}model ocr: pipeline of text_detection → text_direction → text_recognition/);
    expect(r.stdout).not.toMatch(/WARN {2}model ocr/);
    expect(r.stdout).toMatch(/the agent can serve on this host/);
    expect(r.status).toBe(0);
  }, 60_000);

  it('--load creates and warms up every model, and fails one that parses but cannot load', async () => {
    const repo = await makeRepository(); // has 'corrupt': a model file onnxruntime refuses
    const r = doctor(['--models', repo, '--port', '0', '--load']);
    expect(r.stdout).toMatch(/ok {4}model corrupt: versions 1/); // parsing alone passes it
    expect(r.stdout).toMatch(/FAIL {2}load corrupt: /);
    expect(r.stdout).toMatch(/ok {4}load add_sub: loaded and warmed up on cpu in \d+ ms/);
    expect(r.stdout).toMatch(/ok {4}load mlp: loaded and warmed up on cpu/);
    expect(r.status).toBe(1);
  }, 120_000);
});
