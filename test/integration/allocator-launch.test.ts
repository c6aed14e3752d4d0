/**
 * The default launch, scripts/gpu-agent.sh, as real processes: the real agent started through it
 * runs on jemalloc where libjemalloc2 is installed (preloaded, then `exec node`: the launcher's
 * PID is the agent's, so SIGTERM drains it), on glibc when asked (GPU_AGENT_ALLOCATOR=glibc or
 * --allocator glibc) or when jemalloc is not found (one line on stderr; it still starts), and
 * leaves an LD_PRELOAD already set alone. The agent reports what it runs on (start log line,
 * /metrics gpu_agent_memory_allocator_info) and releases freed memory at every unload on both
 * allocators (jemalloc: arena purge; glibc: malloc_trim), counted in gpu_agent_memory_releases_total.
 *
 * Counts and reports are asserted, never RSS figures (bench/load-cycles.mjs has those).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnCliAgent, type CliAgent } from '../helpers/cli-agent.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LAUNCHER = path.join(ROOT, 'scripts/gpu-agent.sh');
const MODELS = path.join(ROOT, 'models');
const ADDON = existsOrUndefined(path.join(ROOT, 'dist/native/malloc-release.node'));

function existsOrUndefined(p: string): string | undefined {
  try {
    readFileSync(p);
    return p;
  } catch {
    return undefined;
  }
}

/** The launcher's own decision on this host (auto, nothing preset). */
const decision = spawnSync('sh', [LAUNCHER, '--print-allocator'], { encoding: 'utf8', env: { ...process.env, GPU_AGENT_ALLOCATOR: 'auto', LD_PRELOAD: '' } }).stdout.trim();
const JEMALLOC = decision.startsWith('jemalloc ') ? decision.slice('jemalloc '.length) : undefined;
const noJemalloc = `libjemalloc2 is not installed (launcher: ${decision}); apt-get install libjemalloc2 (scripts/test-deps.sh)`;
const noAddon = 'dist/native/malloc-release.node is not built (npm run build needs cc)';

const running: ChildProcess[] = [];
afterEach(() => {
  for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** `sh scripts/gpu-agent.sh [launcherArgs] serve ...` with env on top of this process's (LD_PRELOAD cleared). */
async function launch(env: Record<string, string>, launcherArgs: string[] = []): Promise<CliAgent> {
  const a = await spawnCliAgent(['--models', MODELS, '--port', '0', '--grpc-port', '0', '--providers', 'cpu', '--load-models', 'add_sub'], {
    command: ['sh', LAUNCHER, ...launcherArgs, 'serve'],
    stderr: 'capture',
    timeoutMs: 30_000,
    env: { ...process.env, LD_PRELOAD: '', GPU_AGENT_ALLOCATOR: '', GPU_AGENT_NODE: process.execPath, ORT_DISABLE_TELEMETRY: '1', ...env },
  });
  running.push(a.child);
  return a;
}

/** The start log line about the allocator. */
function allocatorLine(out: string): { allocator: string; allocatorVersion: string; release: string; msg: string } {
  const line = out.split('\n').find((l) => l.includes('"msg":"memory allocator:'));
  expect(line, out).toBeDefined();
  return JSON.parse(line!) as { allocator: string; allocatorVersion: string; release: string; msg: string };
}

async function metric(url: string, name: string): Promise<string[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

async function releases(url: string): Promise<number> {
  const [line] = await metric(url, 'gpu_agent_memory_releases_total ');
  return Number(line!.split(' ')[1]);
}

async function post(url: string, p: string, body: unknown = {}): Promise<number> {
  const r = await fetch(`${url}${p}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  await r.text();
  return r.status;
}

const mlpRequest = { inputs: [{ name: 'x', shape: [1, 256], datatype: 'FP32', data: Array.from({ length: 256 }, (_, i) => (i % 7) / 7) }] };

/** n load + infer + unload cycles of the mlp over HTTP, each answered 200. */
async function cycles(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    expect(await post(url, '/v2/repository/models/mlp/load')).toBe(200);
    expect(await post(url, '/v2/models/mlp/infer', mlpRequest)).toBe(200);
    expect(await post(url, '/v2/repository/models/mlp/unload')).toBe(200);
  }
}

/**
 * The start line and /metrics name `allocator` and its `release`, 10 mlp load/infer/unload
 * cycles count at least 10 releases, and the launcher printed nothing (no fallback line).
 */
async function expectReleasesOn(a: CliAgent, allocator: 'jemalloc' | 'glibc', release: 'purge' | 'trim') {
  const line = allocatorLine(a.lines().join('\n'));
  expect(line.allocator).toBe(allocator);
  expect(line.release).toBe(release);
  expect(await metric(a.url, 'gpu_agent_memory_allocator_info{')).toEqual([
    `gpu_agent_memory_allocator_info{allocator="${allocator}",version="${line.allocatorVersion}",release="${release}"} 1`,
  ]);
  const before = await releases(a.url);
  await cycles(a.url, 10);
  expect((await releases(a.url)) - before).toBeGreaterThanOrEqual(10);
  expect(a.err()).toBe('');
  return line;
}

/** SIGTERM to the PID the launcher was started as: the agent itself drains and exits 0. */
async function stop(a: CliAgent): Promise<void> {
  a.child.kill('SIGTERM');
  expect(await a.exited).toBe(0);
}

describe('scripts/gpu-agent.sh (the default launch)', () => {
  it.skipIf(!JEMALLOC || !ADDON)(`starts the agent on jemalloc by default, in the same process, and it purges at every unload${JEMALLOC ? '' : ` (skipped: ${noJemalloc})`}${ADDON ? '' : ` (skipped: ${noAddon})`}`, async () => {
    const a = await launch({});
    // exec: the launcher's PID now runs node with the CLI, and jemalloc is mapped into it.
    expect(readFileSync(`/proc/${a.child.pid}/cmdline`, 'utf8').split('\0')).toContain(path.join(ROOT, 'dist/src/cli.js'));
    expect(readFileSync(`/proc/${a.child.pid}/maps`, 'utf8')).toContain(JEMALLOC);
    expect(readFileSync(`/proc/${a.child.pid}/environ`, 'utf8').split('\0')).toContain(`LD_PRELOAD=${JEMALLOC}`);
    const line = await expectReleasesOn(a, 'jemalloc', 'purge');
    expect(line.allocatorVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(line.msg).toContain('mallctl arena purge');
    await stop(a);
  });

  it.skipIf(!ADDON)(`starts on glibc when asked (GPU_AGENT_ALLOCATOR=glibc), and malloc_trim runs at every unload${ADDON ? '' : ` (skipped: ${noAddon})`}`, async () => {
    const a = await launch({ GPU_AGENT_ALLOCATOR: 'glibc' });
    expect(readFileSync(`/proc/${a.child.pid}/maps`, 'utf8')).not.toMatch(/libjemalloc/);
    await expectReleasesOn(a, 'glibc', 'trim');
    await stop(a);
  });

  it('--allocator glibc (the launcher\'s flag) wins over GPU_AGENT_ALLOCATOR', async () => {
    const a = await launch({ GPU_AGENT_ALLOCATOR: 'jemalloc' }, ['--allocator', 'glibc']);
    expect(allocatorLine(a.lines().join('\n')).allocator).toBe('glibc');
    await stop(a);
  });

  it('falls back to glibc with one line on stderr when jemalloc is not found, and starts', async () => {
    const a = await launch({ GPU_AGENT_JEMALLOC_PATH: '/nonexistent/libjemalloc.so.2' });
    const lines = a.err().split('\n').filter(Boolean);
    expect(lines).toEqual([expect.stringMatching(/^gpu-agent\.sh: libjemalloc\.so\.2 not found in \/nonexistent\/libjemalloc\.so\.2 \(Debian\/Ubuntu: apt-get install libjemalloc2\): starting on glibc's malloc/)]);
    expect(allocatorLine(a.lines().join('\n')).allocator).toBe('glibc');
    expect((await fetch(`${a.url}/v2/health/ready`)).status).toBe(200);
    await stop(a);
  });

  it('GPU_AGENT_ALLOCATOR=jemalloc without jemalloc: a warning, and the agent still starts on glibc', async () => {
    const a = await launch({ GPU_AGENT_ALLOCATOR: 'jemalloc', GPU_AGENT_JEMALLOC_PATH: '/nonexistent/libjemalloc.so.2' });
    expect(a.err()).toMatch(/^gpu-agent\.sh: warning: allocator jemalloc was chosen but libjemalloc\.so\.2 is not found/);
    expect(allocatorLine(a.lines().join('\n')).allocator).toBe('glibc');
    await stop(a);
  });

  it.skipIf(!JEMALLOC)(`leaves an LD_PRELOAD already set alone (here: jemalloc with GPU_AGENT_ALLOCATOR=glibc)${JEMALLOC ? '' : ` (skipped: ${noJemalloc})`}`, async () => {
    const a = await launch({ LD_PRELOAD: JEMALLOC!, GPU_AGENT_ALLOCATOR: 'glibc' });
    expect(allocatorLine(a.lines().join('\n')).allocator).toBe('jemalloc');
    await stop(a);
  });

  it('refuses an unknown allocator with exit 2 and a line naming the choices', () => {
    const r = spawnSync('sh', [LAUNCHER, 'serve', '--models', MODELS], { encoding: 'utf8', env: { ...process.env, GPU_AGENT_ALLOCATOR: 'tcmalloc' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/the allocator \(--allocator \/ GPU_AGENT_ALLOCATOR\) must be auto, jemalloc or glibc, not 'tcmalloc'/);
  });

  it('--print-allocator says what it would do and starts nothing', () => {
    const r = spawnSync('sh', [LAUNCHER, '--print-allocator'], { encoding: 'utf8', env: { ...process.env, LD_PRELOAD: '', GPU_AGENT_ALLOCATOR: 'glibc' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('glibc (chosen: allocator glibc)\n');
  });
});

describe('gpu-agent doctor', () => {
  it('reports the allocator the launcher would start the agent on', () => {
    // The allocator line alone (the rest of the report depends on the host); stderr rides along
    // in the failure message.
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/src/cli.js'), 'doctor', '--models', MODELS, '--port', '0', '--grpc-port', '0', '--providers', 'cpu'], {
        encoding: 'utf8', env: { ...process.env, LD_PRELOAD: '', GPU_AGENT_ALLOCATOR: '', ORT_DISABLE_TELEMETRY: '1', ...env }, timeout: 120_000,
      });
      const line = r.stdout.split('\n').findIndex((l) => / allocator: /.test(l));
      expect(line, `doctor exited ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`).toBeGreaterThanOrEqual(0);
      return r.stdout.split('\n').slice(line, line + 2).join('\n');
    };
    expect(run({ GPU_AGENT_JEMALLOC_PATH: '/nonexistent/libjemalloc.so.2' })).toMatch(/^WARN {2}allocator: scripts\/gpu-agent\.sh starts the agent on glibc \(libjemalloc\.so\.2 not found.*\n {6}fix: apt-get install libjemalloc2/m);
    expect(run({ GPU_AGENT_ALLOCATOR: 'glibc' })).toMatch(/^ok {4}allocator: scripts\/gpu-agent\.sh starts the agent on glibc \(chosen: allocator glibc\)/m);
    if (JEMALLOC) expect(run({})).toContain(`ok    allocator: scripts/gpu-agent.sh (npm start, the installed service, the image) starts the agent on jemalloc ${JEMALLOC}`);
  });
});
