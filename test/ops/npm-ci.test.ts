/**
 * `npm ci` of this project as npm will behave once it stops passing unknown `.npmrc` keys to
 * scripts (it warns so today for onnxruntime-node's `onnxruntime-node-install`): with any such
 * key removed, in a clean folder, from npm's cache only (like CI without onnxruntime's NuGet
 * download), the whole tree (dev dependencies included) must install with no warning about
 * configs or engines, and onnxruntime-node must load.
 *
 * npm checks engines against the Node running it only, so a second check holds every installed
 * package's `engines.node` against the lowest version of each line that package.json's `engines`
 * (and the README) admit: what `npm ci` would print on Node 20.19.0 itself. The real runs on
 * each Node are `npm run test:matrix` (scripts/node-matrix.mjs; README, Requirements).
 * Skips when npm's cache lacks the packages (no `npm ci` ran on this machine).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import semver from 'semver';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface LockEntry { version?: string; engines?: { node?: string } | string[] }

describe('npm ci', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'npm-ci-'));
  const env: NodeJS.ProcessEnv = {};
  let ci: SpawnSyncReturns<string> | undefined;
  let skipped: string | undefined;

  beforeAll(() => {
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(ROOT, f), path.join(dir, f));
    // The .npmrc as npm's next major reads it: keys it does not know are not passed on.
    const npmrc = readFileSync(path.join(ROOT, '.npmrc'), 'utf8').split('\n').filter((l) => !/^\s*onnxruntime-node-install/.test(l)).join('\n');
    writeFileSync(path.join(dir, '.npmrc'), npmrc);
    for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !/^ONNXRUNTIME_NODE_INSTALL/.test(k)) env[k] = v;
    // Everything, dev dependencies included: a warning from any package counts.
    ci = spawnSync('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: dir, env, encoding: 'utf8', timeout: 240_000 });
    if (ci.status !== 0 && /ENOTCACHED/.test(ci.stderr)) skipped = 'npm cache lacks packages (ENOTCACHED)';
  }, 300_000);

  it('needs no project config key npm passes to scripts, and warns about neither configs nor engines', () => {
    if (skipped) return void console.log(`skipped: ${skipped}`);
    expect(ci!.status, ci!.stderr).toBe(0);
    expect(ci!.stderr).not.toMatch(/Unknown (project|user|env) config/);
    const engine = [...ci!.stderr.matchAll(/EBADENGINE\s+package: '([^']+)'/g)].map((m) => m[1]);
    expect(engine, `EBADENGINE on ${process.version}`).toEqual([]);
    expect(ci!.stderr).not.toMatch(/EBADENGINE/);
    const load = spawnSync(process.execPath, ['-e', "require('onnxruntime-node'); console.log('ok')"], { cwd: dir, env: { ...env, ORT_DISABLE_TELEMETRY: '1' }, encoding: 'utf8' });
    expect(load.stdout.trim(), load.stderr).toBe('ok');
  }, 60_000);

  it("every installed package's engines admit the lowest Node of each line package.json and the README admit", () => {
    if (skipped) return void console.log(`skipped: ${skipped}`);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    const floors = pkg.engines.node.split('||').map((r) => semver.minVersion(r.trim())!.version);
    expect(floors[0]).toBe('20.19.0');
    const lock = JSON.parse(readFileSync(path.join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
    const bad: string[] = [];
    let checked = 0;
    for (const [where, entry] of Object.entries(lock.packages)) {
      // Only what npm installed here (optional packages of other platforms are not).
      if (!where || !existsSync(path.join(dir, where))) continue;
      const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
      if (!range) continue;
      checked++;
      for (const f of floors) if (!semver.satisfies(f, range)) bad.push(`${where.replace(/^.*node_modules\//, '')}@${entry.version} wants node ${range}, not ${f}`);
    }
    expect(checked).toBeGreaterThan(20);
    expect(bad).toEqual([]);
    // The README's Requirements state the same range.
    expect(readFileSync(path.join(ROOT, 'README.md'), 'utf8').includes(`\`${pkg.engines.node}\``), `README states engines \`${pkg.engines.node}\``).toBe(true);
  });
});
