/**
 * `npm ci` of this project as npm will behave once it stops passing unknown `.npmrc` keys to
 * scripts (it warns so today for onnxruntime-node's `onnxruntime-node-install`): with any such
 * key removed, in a clean folder, from npm's cache only (like CI without onnxruntime's NuGet
 * download), it must succeed with no warning about configs or engines, and onnxruntime-node must
 * load. Skips when npm's cache lacks the packages (no `npm ci` ran on this machine).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');


describe('npm ci', () => {
  it('needs no project config key npm passes to scripts, and warns about neither configs nor engines', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'npm-ci-'));
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(ROOT, f), path.join(dir, f));
    // The .npmrc as npm's next major reads it: keys it does not know are not passed on.
    const npmrc = readFileSync(path.join(ROOT, '.npmrc'), 'utf8').split('\n').filter((l) => !/^\s*onnxruntime-node-install/.test(l)).join('\n');
    writeFileSync(path.join(dir, '.npmrc'), npmrc);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !/^ONNXRUNTIME_NODE_INSTALL/.test(k)) env[k] = v;
    const r = spawnSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--omit=dev'], { cwd: dir, env, encoding: 'utf8', timeout: 240_000 });
    if (r.status !== 0 && /ENOTCACHED/.test(r.stderr)) return void console.log('skipped: npm cache lacks packages (ENOTCACHED)');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown (project|user|env) config/);
    expect(r.stderr).not.toMatch(/EBADENGINE/);
    const load = spawnSync(process.execPath, ['-e', "require('onnxruntime-node'); console.log('ok')"], { cwd: dir, env: { ...env, ORT_DISABLE_TELEMETRY: '1' }, encoding: 'utf8' });
    expect(load.stdout.trim(), load.stderr).toBe('ok');
  }, 300_000);
});
