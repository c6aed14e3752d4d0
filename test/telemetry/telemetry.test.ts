import { afterEach, describe, expect, it } from 'vitest';
import { measureSamplingCost } from '../../src/telemetry/measure-cost.js';
import { TelemetrySnapshotSchema } from '../../src/telemetry/schema.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';
import { FAKE_SMI, alive, fakeChildren, fakeEnv, silentLogger, waitFor } from './helpers.js';

const MiB = 1024 * 1024;

describe('Telemetry', () => {
  let t: Telemetry | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('inventory, samples, host and process memory from the fake nvidia-smi', async () => {
    t = new Telemetry({
      nvidiaSmiPath: FAKE_SMI,
      intervalMs: 100,
      logger: silentLogger,
      env: fakeEnv({ FAKE_NVIDIA_SMI_SCENARIO: 'two-gpu', FAKE_NVIDIA_SMI_APPS: `${process.pid}:1024:0` }),
    });
    const tel = t;
    await tel.start();
    const inv = tel.inventory();
    expect(inv.reason).toBeUndefined();
    expect(inv.gpus.map((g) => g.name)).toEqual(['NVIDIA A100-SXM4-80GB', 'NVIDIA A100-SXM4-80GB']);
    expect(inv.driverVersion).toBe('470.182.03');
    expect(inv.cudaVersion).toBe('11.4');
    expect(tel.totalGpuMemoryBytes()).toBe(2 * 81251 * MiB);

    await waitFor(() => tel.latest().gpus.length === 2 && tel.processMemoryBytes(process.pid) !== undefined, 15_000, 'samples');
    const snap = tel.latest();
    expect(TelemetrySnapshotSchema.parse(snap)).toEqual(snap);
    expect(snap.gpuReason).toBeUndefined();
    expect(snap.gpus[0]!.memoryUsedBytes).toBe(20935 * MiB);
    expect(snap.host?.memory.totalBytes).toBeGreaterThan(0);
    expect(tel.processMemoryBytes(process.pid)).toBe(1024 * MiB);
    expect(await tel.queryProcessMemoryBytes(process.pid)).toBe(1024 * MiB);
    expect(tel.processes().map((p) => p.pid)).toContain(4242);

    const pids = tel.childPids();
    expect(pids).toHaveLength(2);
    await tel.close();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(fakeChildren()).toEqual([]);
  });

  it('without nvidia-smi: empty GPU list and why; host telemetry still works; nothing throws', async () => {
    t = new Telemetry({ nvidiaSmiPath: '/nonexistent/nvidia-smi', intervalMs: 200, logger: silentLogger });
    await t.start();
    expect(t.inventory()).toEqual({ gpus: [], reason: "nvidia-smi not found at '/nonexistent/nvidia-smi' (no NVIDIA driver?)" });
    const snap = t.latest();
    expect(TelemetrySnapshotSchema.parse(snap)).toEqual(snap);
    expect(snap.gpus).toEqual([]);
    expect(snap.gpuReason).toMatch(/not found/);
    expect(snap.host?.cpu.model).toBeTruthy();
    expect(t.processMemoryBytes(process.pid)).toBeUndefined();
    expect(await t.queryProcessMemoryBytes(process.pid)).toBeUndefined();
    expect(t.totalGpuMemoryBytes()).toBeUndefined();
    expect(t.childPids()).toEqual([]);
    expect((await t.refreshInventory()).reason).toMatch(/not found/);
  });

  it('a hanging nvidia-smi: start() returns after the timeout with a reason', async () => {
    t = new Telemetry({ nvidiaSmiPath: FAKE_SMI, intervalMs: 200, timeoutMs: 1000, logger: silentLogger, host: false, env: fakeEnv({ FAKE_NVIDIA_SMI_HANG: '1' }) });
    await t.start();
    expect(t.inventory().gpus).toEqual([]);
    expect(t.inventory().reason).toMatch(/timed out after 1000 ms/);
    expect(t.latest().host).toBeNull();
    await t.close();
    expect(fakeChildren()).toEqual([]);
  });

  it('garbage from nvidia-smi: reason', async () => {
    t = new Telemetry({ nvidiaSmiPath: FAKE_SMI, intervalMs: 200, logger: silentLogger, host: false, env: fakeEnv({ FAKE_NVIDIA_SMI_GARBAGE: '1' }) });
    await t.start();
    expect(t.inventory().gpus).toEqual([]);
    expect(t.latest().gpuReason).toMatch(/not valid XML/);
  });

  it('close() before start() settles, and close() is idempotent', async () => {
    t = new Telemetry({ nvidiaSmiPath: FAKE_SMI, intervalMs: 100, logger: silentLogger, env: fakeEnv() });
    const starting = t.start();
    await t.close();
    await starting;
    await t.close();
    expect(t.childPids()).toEqual([]);
    expect(fakeChildren()).toEqual([]);
  });

  it('measureSamplingCost reports agent and child CPU time', async () => {
    const cost = await measureSamplingCost({ nvidiaSmiPath: FAKE_SMI, intervalMs: 100, logger: silentLogger, env: fakeEnv() }, 1000);
    expect(cost.gpus).toBe(1);
    expect(cost.samples).toBeGreaterThan(0);
    expect(cost.agentCpuMs).toBeGreaterThanOrEqual(0);
    expect(cost.childCpuMs).not.toBeNull();
    expect(fakeChildren()).toEqual([]);
  });
});
