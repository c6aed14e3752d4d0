#!/usr/bin/env node
/**
 * Native addons whose install script `.npmrc`'s `ignore-scripts=true` skips (that key keeps
 * onnxruntime-node's NuGet download from ever running). Today one: better-sqlite3, the
 * coordinator's audit trail and node registry. Its script tries a prebuilt binary from the
 * network (unreachable in CI, so it fails at once) and then compiles with node-gyp against
 * Node's own headers (about a minute on 2 cores, once per `npm ci`).
 *
 * Run by `npm run build` (so by npm start, npm test, the installer, the bundle and the image):
 * a loadable addon costs one require; a missing one is built with `npm rebuild <pkg>`, which
 * runs that package's script alone. Exit 1 with the reason when it still cannot load.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function loads(pkg) {
  try {
    const Database = require(pkg);
    new Database(':memory:').close();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message.split('\n')[0] : String(err);
  }
}

for (const pkg of ['better-sqlite3']) {
  if (!loads(pkg)) continue;
  console.error(`native-deps: building ${pkg} (its install script is skipped by .npmrc ignore-scripts)`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['rebuild', pkg, '--ignore-scripts=false'], { stdio: ['ignore', 'inherit', 'inherit'] });
  const why = loads(pkg);
  if (r.status !== 0 || why) {
    console.error(`native-deps: ${pkg} cannot be loaded: ${why ?? `npm rebuild exited ${r.status}`}; it needs python3, make and g++ (node-gyp)`);
    process.exit(1);
  }
  console.error(`native-deps: ${pkg} built`);
}

// Our own addon (optional; never fails the build): see native/malloc-release.c.
await import('./build-malloc-release.mjs');
