/**
 * The process's malloc in /metrics: which allocator it runs on (jemalloc when started through
 * scripts/gpu-agent.sh on a host with libjemalloc2, else glibc: docs/memory.md) and the
 * releases of freed memory done after unloads (src/memory/allocator.ts).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { allocatorStatus } from '../memory/allocator.js';

export function registerMemoryMetrics(r: Registry): void {
  new Gauge({
    name: 'gpu_agent_memory_allocator_info',
    help: 'The malloc this process runs on (1): allocator jemalloc|glibc|other, its version, and how unloads release freed memory (purge|trim|none|off)',
    labelNames: ['allocator', 'version', 'release'],
    registers: [r],
    collect() {
      const s = allocatorStatus();
      this.reset();
      this.set({ allocator: s.allocator.name, version: s.allocator.version, release: !s.available && s.allocator.release !== 'none' ? 'off' : s.allocator.release }, 1);
    },
  });
  new Counter({
    name: 'gpu_agent_memory_releases_total',
    help: 'Releases of the memory freed inside malloc to the OS, done after unloads, evictions, reloads and failed loads',
    registers: [r],
    collect() {
      this.reset();
      this.inc(allocatorStatus().releases);
    },
  });
}
