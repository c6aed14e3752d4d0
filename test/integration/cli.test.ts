/**
 * The gpu-agent binary as a user runs it (built into dist/ by `npm test`'s tsc step).
 */
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeRepository } from '../helpers/agent.js';
import { CLI, spawnCliAgent } from '../helpers/cli-agent.js';

let repo: string;

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });

beforeAll(async () => {
  repo = await makeRepository();
});

describe('gpu-agent CLI', () => {
  it('--help lists every option with its env variable and default', () => {
    const r = run(['serve', '--help']);
    expect(r.status).toBe(0);
    for (const s of ['--models <v>', 'GPU_AGENT_MODELS', '--port <v>', '(default: 8000)', '--api-token', '--insecure', '--providers', '(default: cuda,cpu)', '--config <file>']) {
      expect(r.stdout).toContain(s);
    }
  });

  it('rejects unknown options and bad values, naming the fix', () => {
    let r = run(['serve', '--prot', '80']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option --prot; run with --help/);
    r = run(['serve', '--port', 'eighty']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/option --port: /);
    r = run(['serve'], { GPU_AGENT_PROVIDERS: 'tpu' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/environment GPU_AGENT_PROVIDERS/);
    r = run(['serve', '--memory-budget', 'lots']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/option --memory-budget: 'lots' is not a size; write e\.g\. 24GiB/);
  });

  it('refuses a public address without a token unless --insecure', () => {
    const r = run(['serve', '--host', '0.0.0.0', '--models', repo]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without an API token.*--api-token.*--insecure/s);
  });

  it('serves, logs JSON, and drains on SIGTERM', async () => {
    const agent = await spawnCliAgent(['--models', repo, '--port', '0', '--providers', 'cpu', '--load-models', 'add_sub,corrupt'], { timeoutMs: 15_000, stderr: 'capture' });
    const url = agent.url;
    let ready = 0;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      ready = (await fetch(`${url}/v2/models/add_sub/ready`)).status;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ready).toBe(200);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    const lines: any[] = agent.lines().map((l) => JSON.parse(l)); // every line is JSON (throws if not)
    expect(lines.some((l) => l.msg === 'model ready on cpu' && l.model === 'add_sub')).toBe(true);
    expect(lines.some((l) => l.msg === 'model failed to load' && l.model === 'corrupt' && /Protobuf parsing failed/.test(l.err))).toBe(true);
    expect(lines.some((l) => l.msg === 'draining and stopping')).toBe(true);
  });
});

