/**
 * Model sources: manifests, fetchers per scheme, the blob cache, pulls. `createPullService`
 * builds the agent's one pull pipeline from its config.
 */
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/schema.js';
import type { ModelManager } from '../sessions/model-manager.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { BlobStore } from './cache/blob-store.js';
import { resolveStateDir, stateDirCandidates } from '../state/state-dir.js';
import { PullMetrics } from './metrics.js';
import { ModelPuller, type PullProgress } from './puller.js';
import { PullService } from './pull-service.js';

export { parseManifest, manifestDigest, ManifestSchema, type Manifest } from './manifest.js';
export { ModelPuller, type PullProgress } from './puller.js';
export { PullService } from './pull-service.js';

/**
 * The state directory the blob cache lives in: the one the node id uses (state/state-dir.ts).
 * When none is writable the agent still starts (serving needs no state); a pull then fails
 * with the folder it could not create.
 */
function pullStateDir(given: string | undefined): string {
  try {
    return resolveStateDir(given);
  } catch {
    return given !== undefined ? path.resolve(given) : stateDirCandidates().at(-1) ?? path.resolve('.gpu-agent');
  }
}

/** The puller's settings from the agent config (shared by the agent and the CLI). */
export function pullerSettings(config: AgentConfig) {
  return {
    stateDir: pullStateDir(config.stateDir),
    modelsDir: path.resolve(config.models),
    allowHttp: config.allowHttp,
    cacheBudget: config.cacheBudget === 'none' ? undefined : config.cacheBudget,
    stallMs: config.pullStallSeconds * 1000,
    retry: { retries: config.pullRetries, baseMs: 1000, capMs: 30_000 },
    ranges: { parts: config.pullRanges, thresholdBytes: config.pullRangeThreshold },
  };
}

export function createPullService(opts: {
  config: AgentConfig;
  models: ModelManager;
  logger: Logger;
  clock: Clock;
  registry: Registry;
  onProgress: (p: Readonly<PullProgress>) => void;
}): PullService {
  const settings = pullerSettings(opts.config);
  const metrics = new PullMetrics(opts.registry, new BlobStore(settings.stateDir), settings.cacheBudget);
  let service: PullService | undefined;
  const puller = new ModelPuller({
    ...settings,
    clock: opts.clock,
    logger: opts.logger,
    onProgress: opts.onProgress,
    protectedDigests: () => service?.protectedDigests() ?? new Set<string>(),
    onBytes: metrics.onBytes,
    onEvict: metrics.onEvict,
    onVerificationFailure: metrics.onVerificationFailure,
    onPulled: metrics.onPulled,
  });
  service = new PullService({ puller, models: opts.models, logger: opts.logger, pinned: opts.config.preload });
  return service;
}
