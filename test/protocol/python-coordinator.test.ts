/**
 * A coordinator written in Python from docs/coordinator-protocol.md alone drives the real
 * agent (a CLI process) through every command and every error, validating each message against
 * the JSON Schema. Needs Debian's python3 with python3-websockets and python3-jsonschema
 * (scripts/test-deps.sh); skipped with the reason when they are absent.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { makeRepository } from '../helpers/agent.js';
import { spawnAgent } from '../fleet/helpers.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(import.meta.dirname, 'python_coordinator.py');
const SCHEMA = path.resolve(import.meta.dirname, '../../docs/coordinator-protocol.schema.json');
const probe = spawnSync(PYTHON, ['-c', 'import websockets, jsonschema'], { encoding: 'utf8' });
const missing = probe.error ? `${PYTHON} not found` : probe.status !== 0 ? 'python3-websockets or python3-jsonschema missing (scripts/test-deps.sh installs them)' : undefined;
if (missing) console.warn(`skipping the Python coordinator test: ${missing}`);

describe.skipIf(missing !== undefined)('a coordinator in Python, from the doc alone', () => {
  it('registers the real agent and runs every command and error with the documented codes', async () => {
    const TOKEN = 'python-token-123';
    const py = spawn(PYTHON, [SCRIPT, SCHEMA, TOKEN], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    py.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines: any[] = [];
    const rl = createInterface({ input: py.stdout });
    const port = await new Promise<number>((resolve, reject) => {
      py.once('exit', (code) => reject(new Error(`python exited with ${code}: ${stderr}`)));
      rl.on('line', (line) => {
        const m = JSON.parse(line);
        if (m.port) resolve(m.port);
        else lines.push(m);
      });
    });
    const exit = new Promise<number | null>((resolve) => py.on('exit', (code) => resolve(code)));
    const agent = await spawnAgent(await makeRepository(), `ws://127.0.0.1:${port}/agents`, TOKEN, ['--load-models', 'identity_fp32']);
    try {
      const code = await exit;
      const failed = lines.filter((l) => l.check && !l.ok);
      expect(failed).toEqual([]);
      expect(code).toBe(0);
      expect(lines.filter((l) => l.check && l.ok).length).toBeGreaterThan(35);
      expect(lines.at(-1)).toEqual({ done: true, failures: [] });
    } finally {
      await agent.stop();
      py.kill();
    }
  }, 240_000);
});
