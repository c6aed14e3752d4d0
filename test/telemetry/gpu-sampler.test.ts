import { afterEach, describe, expect, it } from 'vitest';
import { GPU_QUERY_FIELDS, GpuSampler, invalidFieldIn, parseComputeAppLine, parseGpuCsvLine } from '../../src/telemetry/gpu-sampler.js';
import { GpuSampleSchema } from '../../src/telemetry/schema.js';
import { FAKE_SMI, alive, fakeEnv, silentLogger, waitFor } from './helpers.js';

const MiB = 1024 * 1024;
const UUID0 = 'GPU-0a3e4f62-91c5-4b8d-a7e2-3f1d6c8b9a04';

describe('CSV line parsing', () => {
  it('parses a --query-gpu line in field order', () => {
    const s = parseGpuCsvLine(
      `0, ${UUID0}, 87, 41, 81251, 20935, 60316, 61, 312.45, 1410, 1593, 0x0000000000000004, [N/A], [N/A]`,
      GPU_QUERY_FIELDS,
      1234,
    );
    expect(s).toEqual({
      index: 0,
      uuid: UUID0,
      utilizationGpuPct: 87,
      utilizationMemoryPct: 41,
      memoryTotalBytes: 81251 * MiB,
      memoryUsedBytes: 20935 * MiB,
      memoryFreeBytes: 60316 * MiB,
      temperatureC: 61,
      powerDrawW: 312.45,
      smClockMHz: 1410,
      memClockMHz: 1593,
      throttleReasonsMask: 4,
      throttleReasons: ['sw_power_cap'],
      eccCorrectedVolatile: null,
      eccUncorrectedVolatile: null,
      sampledAt: 1234,
    });
  });

  it('rejects lines that are not samples', () => {
    expect(parseGpuCsvLine('garbage', GPU_QUERY_FIELDS, 0)).toBeNull();
    expect(parseGpuCsvLine('Field "x" is not a valid field to query.', GPU_QUERY_FIELDS, 0)).toBeNull();
    expect(parseGpuCsvLine(`x, ${UUID0}, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0x0, 0, 0`, GPU_QUERY_FIELDS, 0)).toBeNull();
  });

  it('parses compute-apps lines', () => {
    expect(parseComputeAppLine(`4242, 20480, ${UUID0}`)).toEqual({ pid: 4242, usedMemoryBytes: 20480 * MiB, gpuUuid: UUID0 });
    expect(parseComputeAppLine(`5151, [N/A], ${UUID0}`)).toEqual({ pid: 5151, usedMemoryBytes: null, gpuUuid: UUID0 });
    expect(parseComputeAppLine('No running processes found')).toBeNull();
  });

  it('finds the refused field in nvidia-smi’s message', () => {
    expect(invalidFieldIn('Field "clocks_throttle_reasons.active" is not a valid field to query.\n')).toBe('clocks_throttle_reasons.active');
    expect(invalidFieldIn('something else')).toBeUndefined();
  });
});

describe('GpuSampler with the fake nvidia-smi', () => {
  let sampler: GpuSampler | undefined;
  afterEach(async () => {
    await sampler?.close();
    sampler = undefined;
  });

  function make(vars: Record<string, string>, intervalMs = 100): GpuSampler {
    sampler = new GpuSampler({
      nvidiaSmiPath: FAKE_SMI,
      intervalMs,
      timeoutMs: 10_000,
      env: fakeEnv(vars),
      logger: silentLogger,
      backoff: { initialMs: 50, maxMs: 500 },
    });
    return sampler;
  }

  it('produces samples for every GPU, repeatedly, from one long-running child', async () => {
    const s = make({ FAKE_NVIDIA_SMI_SCENARIO: 'two-gpu' });
    s.start();
    await waitFor(() => s.sampleCount >= 6, 15_000, 'six sample lines');
    const latest = s.latest();
    expect(latest.map((g) => g.index)).toEqual([0, 1]);
    for (const g of latest) expect(GpuSampleSchema.parse(g)).toEqual(g);
    expect(latest[0]!.throttleReasons).toEqual(['sw_power_cap']);
    expect(latest[1]!.utilizationGpuPct).toBeNull(); // MIG: [N/A]
    expect(s.spawnCounts().gpu).toBe(1);
    expect(s.reason()).toBeUndefined();
  });

  it('restarts the child after it is killed', async () => {
    const s = make({});
    s.start();
    await waitFor(() => s.sampleCount >= 2, 15_000, 'first samples');
    const first = s.childPids().gpu!;
    process.kill(first, 'SIGKILL');
    await waitFor(() => s.childPids().gpu !== undefined && s.childPids().gpu !== first, 15_000, 'a new child');
    const count = s.sampleCount;
    await waitFor(() => s.sampleCount > count + 1, 15_000, 'samples from the new child');
    expect(s.spawnCounts().gpu).toBeGreaterThanOrEqual(2);
    expect(alive(first)).toBe(false);
  });

  it('utilization rises under load (FAKE_NVIDIA_SMI_LOAD)', async () => {
    const s = make({ FAKE_NVIDIA_SMI_LOAD: '1' }, 50);
    const seen: number[] = [];
    s.start();
    await waitFor(
      () => {
        const u = s.latest()[0]?.utilizationGpuPct;
        if (typeof u === 'number' && seen[seen.length - 1] !== u) seen.push(u);
        return u === 99;
      },
      15_000,
      'utilization 99',
    );
    expect(seen[seen.length - 1]).toBe(99);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(s.latest()[0]!.throttleReasons).toEqual(['sw_power_cap']);
  });

  it('processMemoryBytes: by pid, 0 when absent, undefined when unknown', async () => {
    const s = make({ FAKE_NVIDIA_SMI_SCENARIO: 'two-gpu', FAKE_NVIDIA_SMI_APPS: `${process.pid}:512:1` });
    expect(s.processMemoryBytes(process.pid)).toBeUndefined();
    s.start();
    await waitFor(() => s.processMemoryBytes(process.pid) !== undefined, 15_000, 'process list');
    expect(s.processMemoryBytes(process.pid)).toBe(512 * MiB);
    expect(s.processMemoryBytes(4242)).toBe(20480 * MiB);
    expect(s.processMemoryBytes(5151)).toBeUndefined(); // [N/A]
    expect(s.processMemoryBytes(999_999_999)).toBe(0);
    await waitFor(() => s.latest().length === 2, 15_000, 'samples');
    const gpu1 = s.latest()[1]!;
    expect(gpu1.processes).toContainEqual({ pid: process.pid, usedMemoryBytes: 512 * MiB });
    const fresh = await s.refreshProcesses();
    expect(fresh.ok).toBe(true);
    expect(s.processMemoryBytes(process.pid)).toBe(512 * MiB);
  });

  it('an empty process list is known (0), not unknown', async () => {
    const s = make({}); // one-gpu: no compute process, the loop prints nothing
    s.start();
    await waitFor(() => s.processesKnown, 15_000, 'an empty process list');
    expect(s.processMemoryBytes(process.pid)).toBe(0);
  });

  it('falls back when the driver refuses a field name', async () => {
    const s = make({ FAKE_NVIDIA_SMI_REJECT_FIELDS: 'clocks_throttle_reasons.active' });
    s.start();
    await waitFor(() => s.sampleCount >= 1, 15_000, 'a sample');
    expect(s.queryFields()).toContain('clocks_event_reasons.active');
    expect(s.latest()[0]!.throttleReasons).toEqual(['gpu_idle']);
  });

  it('drops a field that has no alternative left', async () => {
    const s = make({ FAKE_NVIDIA_SMI_REJECT_FIELDS: 'ecc.errors.corrected.volatile.total' });
    s.start();
    await waitFor(() => s.sampleCount >= 1, 15_000, 'a sample');
    expect(s.queryFields()).not.toContain('ecc.errors.corrected.volatile.total');
    expect(s.latest()[0]!.eccCorrectedVolatile).toBeNull();
    expect(s.latest()[0]!.eccUncorrectedVolatile).toBe(0);
  });

  it('a binary that is missing keeps a reason and retries, without throwing', async () => {
    sampler = new GpuSampler({ nvidiaSmiPath: '/nonexistent/nvidia-smi', intervalMs: 100, logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 } });
    const s = sampler;
    s.start();
    await waitFor(() => (s.reason() ?? '').includes('not found'), 5000, 'a reason');
    expect(s.reason()).toMatch(/nvidia-smi not found at '\/nonexistent\/nvidia-smi'/);
    expect(s.latest()).toEqual([]);
    expect(s.processMemoryBytes(1)).toBeUndefined();
  });

  it('kills and restarts a loop that hangs (stall watchdog)', async () => {
    sampler = new GpuSampler({
      nvidiaSmiPath: FAKE_SMI,
      intervalMs: 100,
      env: fakeEnv({ FAKE_NVIDIA_SMI_HANG: '1' }),
      logger: silentLogger,
      backoff: { initialMs: 50, maxMs: 200 },
      stallMs: 400,
    });
    const s = sampler;
    s.start();
    await waitFor(() => s.spawnCounts().gpu >= 2, 15_000, 'a restart of the hung loop');
    expect(s.reason()).toMatch(/no output for 400 ms/);
    expect(s.latest()).toEqual([]);
  });

  it('close() leaves no child process', async () => {
    const s = make({ FAKE_NVIDIA_SMI_SCENARIO: 'two-gpu' });
    s.start();
    await waitFor(() => s.sampleCount >= 2, 15_000, 'samples');
    const pids = Object.values(s.childPids());
    expect(pids).toHaveLength(2);
    await s.close();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(s.childPids()).toEqual({});
  });
});
