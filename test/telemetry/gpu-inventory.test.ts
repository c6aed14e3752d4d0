import { describe, expect, it } from 'vitest';
import { parseNvidiaSmiXml, queryGpuInventory } from '../../src/telemetry/gpu-inventory.js';
import { GpuInventorySchema } from '../../src/telemetry/schema.js';
import { FAKE_SMI, fakeEnv, fixture } from './helpers.js';

const MiB = 1024 * 1024;

describe('GPU inventory from nvidia-smi -q -x', () => {
  it('parses one GPU (xml2js gives an object, not an array)', async () => {
    const inv = await parseNvidiaSmiXml(fixture('one-gpu', 'query.xml'));
    expect(GpuInventorySchema.parse(inv)).toEqual(inv);
    expect(inv.reason).toBeUndefined();
    expect(inv.driverVersion).toBe('535.129.03');
    expect(inv.cudaVersion).toBe('12.2');
    expect(inv.gpus).toHaveLength(1);
    expect(inv.gpus[0]).toEqual({
      index: 0,
      uuid: 'GPU-5f2c8a1e-3b7d-4c9e-8a21-6d4f0b9e7c13',
      name: 'NVIDIA H100 80GB HBM3',
      pciBusId: '00000000:18:00.0',
      minorNumber: 0,
      architecture: 'Hopper',
      memoryTotalBytes: 81559 * MiB,
      powerLimitW: 700,
      powerDefaultLimitW: 700,
      computeMode: 'Default',
      persistenceMode: true,
      eccEnabled: true,
      eccPendingEnabled: true,
      migEnabled: false,
      migPendingEnabled: false,
      migDeviceCount: 0,
      maxSmClockMHz: 1980,
      maxMemClockMHz: 2619,
    });
  });

  it('parses two GPUs with the older <power_readings> layout, MIG and ECC modes, N/A', async () => {
    const inv = await parseNvidiaSmiXml(fixture('two-gpu', 'query.xml'));
    expect(GpuInventorySchema.parse(inv)).toEqual(inv);
    expect(inv.driverVersion).toBe('470.182.03');
    expect(inv.gpus.map((g) => g.index)).toEqual([0, 1]);
    const [a, b] = inv.gpus;
    expect(a!.pciBusId).toBe('00000000:07:00.0');
    expect(b!.uuid).toBe('GPU-7b1d2c93-0e4f-4a6b-9c3d-8e2f1a5b6c07');
    expect(a!.memoryTotalBytes).toBe(81251 * MiB);
    // power_limit is N/A on GPU 0: the enforced limit is used
    expect(a!.powerLimitW).toBe(400);
    expect(a!.eccEnabled).toBe(false);
    expect(a!.migEnabled).toBe(false);
    expect(a!.migDeviceCount).toBe(0);
    expect(a!.architecture).toBeNull(); // no <product_architecture> on this driver
    expect(b!.eccEnabled).toBe(true);
    expect(b!.eccPendingEnabled).toBe(false);
    expect(b!.migEnabled).toBe(true);
    expect(b!.migDeviceCount).toBe(2);
    expect(b!.powerDefaultLimitW).toBeNull(); // "N/A"
  });

  it('reports garbage, empty and foreign XML as a reason', async () => {
    expect((await parseNvidiaSmiXml('Segmentation fault')).reason).toMatch(/not valid XML/);
    expect((await parseNvidiaSmiXml('')).reason).toMatch(/printed nothing/);
    expect((await parseNvidiaSmiXml('<html><body/></html>')).reason).toMatch(/no <nvidia_smi_log>/);
    const none = await parseNvidiaSmiXml('<nvidia_smi_log><driver_version>535.1</driver_version><attached_gpus>0</attached_gpus></nvidia_smi_log>');
    expect(none).toEqual({ gpus: [], driverVersion: '535.1', reason: 'nvidia-smi reports no GPUs (attached_gpus: 0)' });
  });

  it('runs the (fake) nvidia-smi binary', async () => {
    const inv = await queryGpuInventory({ nvidiaSmiPath: FAKE_SMI, timeoutMs: 10_000, env: fakeEnv({ FAKE_NVIDIA_SMI_SCENARIO: 'two-gpu' }) });
    expect(inv.reason).toBeUndefined();
    expect(inv.gpus).toHaveLength(2);
  });

  it('missing binary → empty list and why, no throw', async () => {
    const inv = await queryGpuInventory({ nvidiaSmiPath: '/nonexistent/nvidia-smi', timeoutMs: 5000 });
    expect(inv).toEqual({ gpus: [], reason: "nvidia-smi not found at '/nonexistent/nvidia-smi' (no NVIDIA driver?)" });
  });

  it('garbage output → reason', async () => {
    const inv = await queryGpuInventory({ nvidiaSmiPath: FAKE_SMI, timeoutMs: 10_000, env: fakeEnv({ FAKE_NVIDIA_SMI_GARBAGE: '1' }) });
    expect(inv.gpus).toEqual([]);
    expect(inv.reason).toMatch(/not valid XML/);
  });

  it('no driver (exit code 9) → reason with nvidia-smi’s own words', async () => {
    const inv = await queryGpuInventory({ nvidiaSmiPath: FAKE_SMI, timeoutMs: 10_000, env: fakeEnv({ FAKE_NVIDIA_SMI_SCENARIO: 'no-driver' }) });
    expect(inv.gpus).toEqual([]);
    expect(inv.reason).toMatch(/exited with code 9 \(the NVIDIA driver is not loaded\): NVIDIA-SMI has failed/);
  });

  it('a hanging nvidia-smi is killed at the timeout → reason', async () => {
    const started = Date.now();
    const inv = await queryGpuInventory({ nvidiaSmiPath: FAKE_SMI, timeoutMs: 1500, env: fakeEnv({ FAKE_NVIDIA_SMI_HANG: '1' }) });
    expect(inv.gpus).toEqual([]);
    expect(inv.reason).toMatch(/timed out after 1500 ms/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
