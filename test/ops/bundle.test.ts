/**
 * `npm run bundle` interrupted while compressing (SIGTERM, as a closed terminal or a CI timeout
 * sends): no archive under the final name, no partial file left, and progress was shown.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('scripts/bundle.sh', () => {
  it('an interrupted run leaves nothing under the final name', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'bundle-out-'));
    const child = spawn('bash', ['scripts/bundle.sh', '--no-cuda', '--out', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // Interrupt once compression has written something and reported progress.
    for (;;) {
      if (/bundle: compressing: \d+ MiB written after \d+ s/.test(log)) break;
      if (child.exitCode !== null) throw new Error(`bundle ended before compressing: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(readdirSync(out).some((f) => f.includes('.partial'))).toBe(true);
    child.kill('SIGTERM');
    expect(await exited).toBe(130);
    expect(log).toMatch(/interrupted; nothing written under/);
    const version = (await import(path.join(ROOT, 'package.json'), { with: { type: 'json' } })).default.version;
    expect(existsSync(path.join(out, `gpu-agent-${version}-linux-x64.tar.xz`))).toBe(false);
    expect(readdirSync(out)).toEqual([]);
  }, 300_000);
});
