/**
 * Memory across load/unload cycles (issue 10 item 11), with real onnxruntime on the real mlp
 * through the HTTP load/unload API: what the agent holds after an unload is back to where it
 * was (onnxruntime sessions alive, the model's served version, its metrics series), and the
 * pages onnxruntime freed inside malloc are handed back to the OS at every unload.
 *
 * Counts are asserted, not RSS ratios of the agent (those move with other processes' load and
 * with GC timing: bench/load-cycles.mjs prints them). The one memory figure asserted is the
 * addon's own effect on a heap fragmented on purpose in this process, which does not depend on
 * timing: freed-but-resident pages come back when it runs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveSessions } from '../../src/execution/live-sessions.js';
import { ADDON_PATH, allocatorStatus, releaseFreedMemory, setFreedMemoryRelease } from '../../src/memory/allocator.js';
import { getJson, makeRepository, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const available = allocatorStatus().available;
const why = allocatorStatus().reason;
const mlpRequest = { inputs: [{ name: 'x', shape: [1, 256], datatype: 'FP32', data: Array.from({ length: 256 }, (_, i) => (i % 7) / 7) }] };

let repo: string;
let agent: RunningAgent;

beforeAll(async () => {
  repo = await makeRepository();
  agent = await startAgent(repo, { loadModels: ['add_sub'] });
});

afterAll(async () => {
  await agent?.close();
  setFreedMemoryRelease(true);
});

async function cycle(url: string) {
  expect((await postJson(`${url}/v2/repository/models/mlp/load`, {})).status).toBe(200);
  expect((await postJson(`${url}/v2/models/mlp/infer`, mlpRequest)).status).toBe(200);
  expect((await postJson(`${url}/v2/repository/models/mlp/unload`, {})).status).toBe(200);
}

describe('load/unload cycles of the mlp over HTTP', () => {
  it('hold nothing after the unload: sessions back to baseline, no served version, no per-version histograms', async () => {
    const { url } = agent;
    const baseline = liveSessions.count; // add_sub's session
    expect(baseline).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 100; i++) {
      await cycle(url);
      // Each unload has released the version's sessions before it answered.
      expect(liveSessions.count).toBe(baseline);
    }
    const status = agent.agent.models.status('mlp')!;
    expect(status.versions.map((v) => ({ version: v.version, state: v.state, model: v.model }))).toEqual([{ version: 1, state: 'UNAVAILABLE', model: undefined }]);
    expect((await getJson(`${url}/v2/models/mlp/ready`)).status).not.toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    // What stays is the version's state (UNAVAILABLE, by design: one series per tracked
    // version); its latency and batch-size histograms went with it.
    const left = metrics.split('\n').filter((l) => !l.startsWith('#') && l.includes('model="mlp"') && l.includes('version="1"'));
    expect(left.filter((l) => !l.startsWith('gpu_agent_model_state{'))).toEqual([]);
    expect(left).toContain('gpu_agent_model_state{model="mlp",version="1",state="UNAVAILABLE"} 1');
  });

  it.skipIf(!available)(`return the memory freed inside malloc to the OS at every unload (${why ?? 'addon loaded'})`, async () => {
    const before = allocatorStatus().releases;
    for (let i = 0; i < 20; i++) await cycle(agent.url);
    expect(allocatorStatus().releases - before).toBeGreaterThanOrEqual(20);
  });

  it('do no release with --release-freed-memory false', async () => {
    setFreedMemoryRelease(false);
    try {
      const before = allocatorStatus().releases;
      for (let i = 0; i < 5; i++) await cycle(agent.url);
      expect(allocatorStatus().releases).toBe(before);
      expect(allocatorStatus().available).toBe(false);
      expect(allocatorStatus().reason).toContain('--release-freed-memory false');
    } finally {
      setFreedMemoryRelease(true);
    }
  });
});

describe.skipIf(!available)(`the malloc-release addon (${why ?? 'loaded'})`, () => {
  it('returns freed pages that lie between chunks still in use', () => {
    // 40,000 malloc'd 2 KiB blocks (Buffer.allocUnsafeSlow is a malloc of its size), keeping
    // every 16th: the 75 MiB freed are holes in the heap that free() alone keeps resident.
    let blocks: Buffer[] | undefined = Array.from({ length: 40_000 }, () => Buffer.allocUnsafeSlow(2000).fill(1));
    const kept = blocks.filter((_, i) => i % 16 === 0);
    const freedBytes = (blocks.length - kept.length) * 2000;
    blocks = undefined;
    for (let i = 0; i < 4; i++) gc();
    const resident = rss();
    releaseFreedMemory();
    const returned = resident - rss();
    // Measured: 68 of 75 MiB come back (pages holding a kept block stay); half is the floor.
    expect(returned).toBeGreaterThan(freedBytes / 2);
    expect(kept.every((b) => b[0] === 1 && b[1999] === 1)).toBe(true);
  });
});

/**
 * The same heap fragmented on purpose, in a child process that runs on jemalloc (preloaded, as
 * scripts/gpu-agent.sh starts the agent): there malloc_trim is glibc's and returns nothing
 * (measured: -4 KiB with the addon before it knew jemalloc); the addon's release is jemalloc's
 * arena purge, which returns the dirty pages jemalloc would otherwise keep for its decay time.
 */
const launcherDecision = spawnSync('sh', [path.resolve(import.meta.dirname, '../../scripts/gpu-agent.sh'), '--print-allocator'], {
  encoding: 'utf8', env: { ...process.env, LD_PRELOAD: '', GPU_AGENT_ALLOCATOR: 'auto' },
}).stdout.trim();
const jemalloc = launcherDecision.startsWith('jemalloc ') ? launcherDecision.slice('jemalloc '.length) : undefined;
const FRAGMENT = `
  const a = require(process.argv[1]);
  const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
  let blocks = Array.from({ length: 40000 }, () => Buffer.allocUnsafeSlow(2000).fill(1));
  const kept = blocks.filter((_, i) => i % 16 === 0);
  const freed = (blocks.length - kept.length) * 2000;
  blocks = undefined;
  for (let i = 0; i < 4; i++) gc();
  const resident = rss();
  const released = a.trim();
  const returned = resident - rss();
  console.log(JSON.stringify({ allocator: a.allocator, released, freed, returned, intact: kept.every((b) => b[0] === 1 && b[1999] === 1) }));
`;

describe.skipIf(!available || !jemalloc)(`the malloc-release addon under jemalloc (${!available ? why : jemalloc ? 'loaded' : `libjemalloc2 not installed: ${launcherDecision}`})`, () => {
  it('detects jemalloc and purges the freed pages that lie between blocks still in use', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', FRAGMENT, ADDON_PATH], { encoding: 'utf8', env: { ...process.env, LD_PRELOAD: jemalloc! }, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { allocator: string; released: boolean; freed: number; returned: number; intact: boolean };
    expect(got.allocator).toBe('jemalloc');
    expect(got.released).toBe(true);
    // Measured: 72 of 75 MiB come back; half is the floor.
    expect(got.returned).toBeGreaterThan(got.freed / 2);
    expect(got.intact).toBe(true);
  });
});
