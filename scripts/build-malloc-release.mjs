#!/usr/bin/env node
/**
 * Builds native/malloc-release.c into dist/native/malloc-release.node (see that file for why):
 * one C file, a C compiler (`$CC`, else cc), no Node headers. Run by scripts/native-deps.mjs,
 * so by `npm run build`; dist/ is what the bundle, the installer and the image ship.
 *
 * Never fails the build: where it cannot be built (no compiler, not Linux), the agent runs
 * without it and says so once at start (src/memory/allocator.ts); unloads then leave the
 * memory onnxruntime freed resident (the growth bench/load-cycles.mjs measures).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const src = path.join(ROOT, 'native', 'malloc-release.c');
const out = path.join(ROOT, 'dist', 'native', 'malloc-release.node');

function upToDate() {
  try {
    return statSync(out).mtimeMs >= statSync(src).mtimeMs;
  } catch {
    return false;
  }
}

if (process.platform !== 'linux') {
  console.error(`native-deps: malloc-release skipped (${process.platform}: only glibc's malloc keeps freed memory this way)`);
} else if (!upToDate()) {
  mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env.CC || 'cc';
  // Undefined napi_* symbols are resolved against the node binary when the addon is loaded.
  const r = spawnSync(cc, ['-shared', '-fPIC', '-O2', '-Wall', '-o', out, src, '-ldl'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status === 0) console.error(`native-deps: malloc-release built (${path.relative(ROOT, out)})`);
  else console.error(`native-deps: malloc-release not built (${r.error ? `${cc}: ${r.error.message}` : `${cc} exited ${r.status}`}); the agent runs without it (memory freed at unload stays resident; README "Memory across load/unload")`);
}
