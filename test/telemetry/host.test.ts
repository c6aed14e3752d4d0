import { describe, expect, it } from 'vitest';
import { HostCollector } from '../../src/telemetry/host.js';
import { HostInfoSchema } from '../../src/telemetry/schema.js';
import { silentLogger, waitFor } from './helpers.js';

describe('HostCollector', () => {
  it('has the cpu model, memory, os and network, and refreshes', async () => {
    const h = new HostCollector({ intervalMs: 100, logger: silentLogger });
    await h.start();
    try {
      const info = h.latest()!;
      expect(HostInfoSchema.parse(info)).toEqual(info);
      expect(info.cpu.model.length).toBeGreaterThan(0);
      expect(info.cpu.cores).toBeGreaterThan(0);
      expect(info.memory.totalBytes).toBeGreaterThan(0);
      expect(info.memory.usedBytes).toBeGreaterThan(0);
      expect(info.os.kernel.length).toBeGreaterThan(0);
      expect(info.network.some((n) => n.iface === 'lo' || n.internal)).toBe(true);
      expect(info.uptimeS).toBeGreaterThan(0);
      const first = info.refreshedAt;
      await waitFor(() => h.latest()!.refreshedAt > first, 5000, 'a refresh');
      expect(h.latest()!.loadPct).not.toBeNull();
    } finally {
      await h.close();
    }
  });

  it('survives a systeminformation source that fails', async () => {
    const boom = () => Promise.reject(new Error('boom'));
    const h = new HostCollector({ intervalMs: 100, logger: silentLogger, source: { cpu: boom, osInfo: boom, mem: boom, fsSize: boom } });
    await h.start();
    const info = h.latest()!;
    expect(info.cpu.model.length).toBeGreaterThan(0); // from os.cpus()
    expect(info.memory.totalBytes).toBeGreaterThan(0); // from os.totalmem()
    expect(info.disks).toEqual([]);
    await h.close();
  });
});
