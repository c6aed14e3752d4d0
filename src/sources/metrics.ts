/**
 * Prometheus instruments of model pulls and the blob cache, registered into the agent's
 * registry: bytes downloaded, download duration, cache size / budget / evictions and
 * verification failures. The cache size is read from disk when scraped.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BlobStore } from './cache/blob-store.js';

export class PullMetrics {
  private readonly bytes: Counter;
  private readonly duration: Histogram;
  private readonly evictions: Counter;
  private readonly verifyFailures: Counter;

  constructor(registry: Registry, blobs: BlobStore, budget: number | undefined) {
    const registers = [registry];
    this.bytes = new Counter({ name: 'gpu_agent_pull_bytes_total', help: 'Bytes of model files downloaded from their sources (resumed bytes are not counted twice)', registers });
    this.duration = new Histogram({
      name: 'gpu_agent_pull_duration_seconds', help: 'Wall time of completed model pulls (all files of a manifest)', registers,
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    });
    this.evictions = new Counter({ name: 'gpu_agent_cache_evictions_total', help: 'Blobs evicted from the model cache (budget or gc)', registers });
    this.verifyFailures = new Counter({ name: 'gpu_agent_pull_verification_failures_total', help: 'Downloads whose bytes did not hash to the manifest sha256 (deleted)', registers });
    new Gauge({
      name: 'gpu_agent_cache_bytes', help: 'Bytes of verified blobs in the model cache', registers,
      async collect() {
        this.set(await blobs.sizeBytes());
      },
    });
    if (budget !== undefined) new Gauge({ name: 'gpu_agent_cache_budget_bytes', help: 'The model cache budget (--cache-budget)', registers }).set(budget);
  }

  readonly onBytes = (n: number): void => this.bytes.inc(n);
  readonly onPulled = (seconds: number): void => this.duration.observe(seconds);
  readonly onEvict = (): void => this.evictions.inc();
  readonly onVerificationFailure = (): void => this.verifyFailures.inc();
}
