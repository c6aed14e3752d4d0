/**
 * What the default launch (scripts/gpu-agent.sh) does about the allocator on this host, asked
 * of the launcher itself (`--print-allocator`: it decides and prints, starts nothing), so the
 * rules live in one place. Used by `gpu-agent doctor`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../util/package-root.js';
import { allocatorIdentity, describeAllocator } from './allocator.js';

/** scripts/gpu-agent.sh of this install (the package root holds dist/ and scripts/). */
export const LAUNCHER_PATH = path.join(PACKAGE_ROOT ?? '/', 'scripts', 'gpu-agent.sh');

export interface LaunchAllocator {
  /** What the launcher would start the agent on. */
  readonly allocator: 'jemalloc' | 'glibc' | 'preset' | 'unknown';
  /** Its line: "jemalloc /usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "glibc (...)", "preset LD_PRELOAD=...". */
  readonly line: string;
}

/** The launcher's decision with this process's environment (GPU_AGENT_ALLOCATOR, LD_PRELOAD ...). */
export function launchAllocator(env: NodeJS.ProcessEnv = process.env): LaunchAllocator {
  if (!existsSync(LAUNCHER_PATH)) return { allocator: 'unknown', line: `${LAUNCHER_PATH} not found` };
  const r = spawnSync('sh', [LAUNCHER_PATH, '--print-allocator'], { encoding: 'utf8', env, timeout: 10_000 });
  const line = (r.stdout ?? '').trim() || (r.stderr ?? '').trim() || `exited ${r.status}`;
  if (r.status !== 0) return { allocator: 'unknown', line };
  const word = line.split(' ')[0];
  return { allocator: word === 'jemalloc' || word === 'glibc' || word === 'preset' ? word : 'unknown', line };
}

/** The doctor's check: jemalloc found for the launch (ok), glibc chosen (ok), not found (warn). */
export function allocatorCheck(env: NodeJS.ProcessEnv = process.env): { name: string; status: 'ok' | 'warn'; detail: string; fix?: string } {
  const launch = launchAllocator(env);
  const self = `this doctor process runs on ${describeAllocator(allocatorIdentity())}`;
  const name = 'allocator';
  switch (launch.allocator) {
    case 'jemalloc':
      return { name, status: 'ok', detail: `scripts/gpu-agent.sh (npm start, the installed service, the image) starts the agent on ${launch.line}; ${self}` };
    case 'preset':
      return { name, status: 'ok', detail: `scripts/gpu-agent.sh starts the agent with the ${launch.line}; ${self}` };
    case 'glibc':
      if (/chosen/.test(launch.line)) return { name, status: 'ok', detail: `scripts/gpu-agent.sh starts the agent on ${launch.line}; ${self}` };
      return {
        name, status: 'warn', detail: `scripts/gpu-agent.sh starts the agent on ${launch.line}; ${self}`,
        fix: 'apt-get install libjemalloc2 (on glibc the RSS grows over model load/unload cycles: docs/memory.md), or GPU_AGENT_ALLOCATOR=glibc to choose glibc',
      };
    default:
      return { name, status: 'warn', detail: `the launcher could not tell (${launch.line}); ${self}`, fix: 'start the agent with scripts/gpu-agent.sh serve (it preloads jemalloc where libjemalloc2 is installed)' };
  }
}
