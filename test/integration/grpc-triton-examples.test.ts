/**
 * tritonclient.grpc's example clients, step by step, with the Node client scripts/grpc-client.mjs
 * (a real @grpc/grpc-js client in a child process) against a real agent serving NVIDIA's
 * example models: each step's checks are the example's (see the client's comments).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTritonExampleModels } from '../../scripts/generate-models.mjs';
import { startAgent, type RunningAgent } from '../helpers/agent.js';
import { freePort } from '../helpers/grpc.js';

const CLIENT = path.resolve(import.meta.dirname, '../../scripts/grpc-client.mjs');
const TOKEN = 'example-token-5678';
let agent: RunningAgent;

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-grpc-examples-'));
  await generateTritonExampleModels(dir);
  agent = await startAgent(dir, { grpcPort: await freePort(), host: '127.0.0.1', apiToken: TOKEN });
}, 120_000);

afterAll(async () => {
  await agent?.close();
});

/** Runs the client as a child process (asynchronously: the agent answers from this process). */
function client(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLIENT, '--url', agent.agent.grpcAddress!, ...args], { env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
const run = (...steps: string[]) => client(['--token', TOKEN, ...steps]);

describe('tritonclient.grpc example clients, with scripts/grpc-client.mjs', () => {
  it.each([
    ['health', 'simple_grpc_health_metadata.py'],
    ['infer', 'simple_grpc_infer_client.py'],
    ['async', 'simple_grpc_async_infer_client.py'],
    ['string', 'simple_grpc_string_infer_client.py'],
    ['control', 'simple_grpc_model_control.py'],
    ['stream', 'ModelStreamInfer'],
  ])('%s (%s)', async (step) => {
    const r = await run(step);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`PASS: ${step}`);
    expect(r.stdout).not.toContain('FAILED');
  });

  it('without the token the client is refused by name', async () => {
    const r = await client(['infer'], { ...process.env, GPU_AGENT_API_TOKEN: '' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bearer token/);
  });
});
