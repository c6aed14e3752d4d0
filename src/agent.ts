/**
 * The composition root: builds every part from the config and the injected dependencies, and
 * owns the start and stop order. `close()` drains (stop taking work, finish what is queued,
 * release sessions); `destroy()` aborts.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AgentConfig } from './config/schema.js';
import { AgentError } from './errors.js';
import { ortSessionFactory, type ProviderName, type SessionFactory } from './execution/ort-session.js';
import type { NodeStatus } from './http/context.js';
import { buildServer } from './http/server.js';
import { AgentMetrics } from './metrics/registry.js';
import { createDecodeQueue, type DecodeQueue } from './preprocess/image.js';
import { ModelRepository } from './repository/repository.js';
import { hostMemoryProbe, type MemoryProbe } from './sessions/memory.js';
import { ModelManager } from './sessions/model-manager.js';
import { systemClock, type Clock } from './util/clock.js';
import { createLogger, type Logger } from './util/logger.js';
import { AGENT_VERSION } from './version.js';

export interface AgentDeps {
  readonly sessionFactory?: SessionFactory;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly memory?: MemoryProbe;
}

export class Agent {
  readonly models: ModelManager;
  readonly repository: ModelRepository;
  readonly node: NodeStatus = { state: 'ready', reason: '' };
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  /** Image decoding across all requests (bounded: see preprocess/image.ts). */
  readonly decodeQueue: DecodeQueue;
  private server: FastifyInstance | undefined;
  private url: string | undefined;

  constructor(readonly config: AgentConfig, deps: AgentDeps = {}) {
    this.logger = deps.logger ?? createLogger(config.logLevel);
    this.repository = new ModelRepository(path.resolve(config.models));
    this.models = new ModelManager({
      repository: this.repository,
      sessionFactory: deps.sessionFactory ?? ortSessionFactory,
      clock: deps.clock ?? systemClock,
      logger: this.logger,
      memory: deps.memory ?? hostMemoryProbe,
      onBatch: (model, version, rows) => this.metrics.observeBatch(model, version, rows),
      pool: {
        memoryBudget: config.memoryBudget,
        preload: config.preload,
        // Lazy loading is a form of loading through the API: not in control mode none.
        lazyLoad: config.lazyLoad && config.modelControlMode === 'explicit',
        idleUnloadMs: config.idleUnloadSeconds * 1000,
      },
      defaults: {
        defaultMaxBatchSize: config.defaultMaxBatchSize,
        session: {
          providers: config.providers as ProviderName[],
          cudaDeviceId: config.cudaDeviceId,
          intraOpThreads: config.intraOpThreads,
          interOpThreads: config.interOpThreads,
          graphOptimizationLevel: config.graphOptimizationLevel,
          executionMode: config.executionMode,
          enableCpuMemArena: config.cpuMemArena,
          enableMemPattern: config.memPattern,
        },
      },
    });
    this.metrics = new AgentMetrics({ models: this.models });
    this.decodeQueue = createDecodeQueue(config.decodeConcurrency);
  }

  /** The listening URL, once started. */
  get address(): string {
    if (!this.url) throw new Error('the agent is not listening');
    return this.url;
  }

  /**
   * Listen first, then load models: the node answers health probes at once and each model
   * reports LOADING until it is READY (a slow model never blocks the others).
   */
  async start(options: { waitForModels?: boolean } = {}): Promise<void> {
    await this.repository.list(); // fail fast on an unreadable repository
    this.server = await buildServer(
      { config: this.config, models: this.models, repository: this.repository, node: this.node, agentVersion: AGENT_VERSION, metrics: this.metrics,
        images: { queue: this.decodeQueue, maxPixels: this.config.maxImagePixels } },
      this.logger,
    );
    this.url = await this.server.listen({ host: this.config.host, port: this.config.port });
    this.logger.info({ url: this.url, models: this.repository.root, version: AGENT_VERSION }, 'gpu-agent listening');
    const loading = this.models.loadAtStartup(this.config.loadModels).then(() => this.models.startIdleSweep());
    if (options.waitForModels) await loading;
  }

  /** Report not-ready so new work goes elsewhere; requests are still served. */
  cordon(reason = 'cordoned'): void {
    if (this.node.state === 'draining') return;
    this.node.state = 'cordoned';
    this.node.reason = reason;
  }

  uncordon(): void {
    this.node.state = 'ready';
    this.node.reason = '';
  }

  /**
   * Stop taking new inference (503 + Retry-After, readiness false); resolves when everything
   * queued and running has finished. Models stay loaded; `uncordon()` takes work again.
   */
  async drain(reason = 'draining'): Promise<void> {
    this.node.state = 'draining';
    this.node.reason = reason;
    await this.models.whenIdle();
  }

  /**
   * Graceful stop: drain for at most --shutdown-grace-ms, then fail what is still queued with
   * a clear error, release the sessions and close the server.
   */
  async close(): Promise<void> {
    const grace = this.config.shutdownGraceMs;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), grace)));
    const timedOut = await Promise.race([this.drain('shutting down').then(() => false), expired]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn({ graceMs: grace }, 'shutdown grace period over: failing requests still queued');
      await this.models.destroy(new AgentError('UNAVAILABLE', `the agent shut down before this request ran (grace period of ${grace} ms over)`));
    } else {
      await this.models.close();
    }
    await this.server?.close();
    this.logger.info('stopped');
  }

  /** Abort: queued requests fail at once. */
  async destroy(): Promise<void> {
    this.node.state = 'draining';
    this.node.reason = 'stopped';
    await this.models.destroy(new AgentError('UNAVAILABLE', 'the agent is stopping'));
    await this.server?.close();
  }
}
