/**
 * The composition root: builds every part from the config and the injected dependencies, and
 * owns the start and stop order. `close()` drains (stop taking work, finish what is queued,
 * release sessions); `destroy()` aborts.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { CoordinatorLink } from './coordinator/link.js';
import { loadOrCreateNodeId } from './coordinator/node-id.js';
import { AgentNodeController } from './node-controller.js';
import { Telemetry } from './telemetry/telemetry.js';
import type { AgentConfig } from './config/schema.js';
import { AgentError } from './errors.js';
import { ortSessionFactory, type ProviderName, type SessionFactory, type SessionSettings } from './execution/ort-session.js';
import type { NodeStatus } from './http/context.js';
import { buildServer } from './http/server.js';
import { AgentMetrics } from './metrics/registry.js';
import { createDecodeQueue, type DecodeQueue } from './preprocess/image.js';
import { ModelRepository } from './repository/repository.js';
import { hostMemoryProbe, type MemoryProbe } from './sessions/memory.js';
import { ModelManager } from './sessions/model-manager.js';
import { logAllocator, setFreedMemoryRelease } from './memory/allocator.js';
import { createPullService, type PullService } from './sources/index.js';
import { systemClock, type Clock } from './util/clock.js';
import { RepositoryPoller } from './repository/poller.js';
import { createLogger, type Logger } from './util/logger.js';
import { AGENT_VERSION } from './version.js';
import { resolveStateDir } from './state/state-dir.js';
import { ConfigError } from './config/load.js';
import { drainControlOf } from './http/shutdown.js';
import { GrpcServer } from './grpc/server.js';
import { FrontendPool } from './frontend/pool.js';

export interface AgentDeps {
  readonly sessionFactory?: SessionFactory;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly memory?: MemoryProbe;
  readonly telemetry?: Telemetry;
}

/** The agent-wide session settings from the config (models may override them in their config). */
export function sessionDefaults(config: AgentConfig): SessionSettings {
  return {
    providers: config.providers as ProviderName[],
    cudaDeviceId: config.cudaDeviceId,
    intraOpThreads: config.intraOpThreads,
    interOpThreads: config.interOpThreads,
    graphOptimizationLevel: config.graphOptimizationLevel,
    executionMode: config.executionMode,
    enableCpuMemArena: config.cpuMemArena,
    enableMemPattern: config.memPattern,
    thread: config.sessionThread,
    allowSpinning: config.intraOpSpinning,
  };
}

export class Agent {
  readonly models: ModelManager;
  readonly repository: ModelRepository;
  readonly node: NodeStatus = { state: 'ready', reason: '' };
  readonly logger: Logger;
  readonly metrics: AgentMetrics;
  /** Image decoding across all requests (bounded: see preprocess/image.ts). */
  readonly decodeQueue: DecodeQueue;
  readonly telemetry: Telemetry;
  /** Pulls of models by manifest (load API `source`, coordinator load_model/rollback_model). */
  readonly pulls: PullService;
  /** The coordinator link, when --coordinator-url is set and the agent has started. */
  link: CoordinatorLink | undefined;
  private server: FastifyInstance | undefined;
  /** The gRPC listener, when --grpc-port is not 0. */
  private grpc: GrpcServer | undefined;
  /** The HTTP front-end processes of --http-processes > 1 (this process then listens on none). */
  private frontends: FrontendPool | undefined;
  private readonly clock: Clock;
  /** --model-control-mode poll: rescans the repository (see repository/poller.ts). */
  private poller: RepositoryPoller | undefined;
  private url: string | undefined;

  constructor(readonly config: AgentConfig, deps: AgentDeps = {}) {
    setFreedMemoryRelease(config.releaseFreedMemory);
    this.clock = deps.clock ?? systemClock;
    this.logger = deps.logger ?? createLogger(config.logLevel);
    this.telemetry = deps.telemetry ?? new Telemetry({ nvidiaSmiPath: config.nvidiaSmiPath, intervalMs: config.telemetryIntervalMs, logger: this.logger });
    this.repository = new ModelRepository(path.resolve(config.models), config.modelName);
    this.decodeQueue = createDecodeQueue(config.decodeConcurrency);
    this.models = new ModelManager({
      repository: this.repository,
      sessionFactory: deps.sessionFactory ?? ortSessionFactory,
      clock: deps.clock ?? systemClock,
      logger: this.logger,
      memory: deps.memory ?? this.memoryProbe(),
      onBatch: (model, version, rows) => this.metrics.observeBatch(model, version, rows),
      onRequest: (model, version, ms) => this.metrics.routing.observeRequest(model, version, ms),
      images: { queue: this.decodeQueue, maxPixels: config.maxImagePixels },
      onStateChange: (c) => {
        if (c.state === 'UNAVAILABLE') this.metrics.forget(c.model, c.version); // the series goes away
        this.link?.sendEvent({ kind: 'model_state', model: c.model, version: String(c.version), state: c.state, ...(c.reason ? { reason: c.reason.slice(0, 4000) } : {}), ...(c.provider ? { provider: c.provider } : {}) });
      },
      pool: {
        memoryBudget: config.memoryBudget,
        preload: config.preload,
        // Lazy loading is a form of loading through the API: not in control mode none.
        lazyLoad: config.lazyLoad && config.modelControlMode === 'explicit',
        idleUnloadMs: config.idleUnloadSeconds * 1000,
      },
      defaults: {
        defaultMaxBatchSize: config.defaultMaxBatchSize,
        strictGpu: config.strictGpu,
        batchingPolicy: config.batchingPolicy,
        session: sessionDefaults(config),
      },
    });
    this.metrics = new AgentMetrics({
      models: this.models,
      telemetry: {
        gpuSamples: () => this.telemetry.latest().gpus.map((g) => ({
          uuid: g.uuid,
          utilizationGpu: g.utilizationGpuPct ?? undefined,
          memoryTotalBytes: g.memoryTotalBytes ?? undefined,
          memoryUsedBytes: g.memoryUsedBytes ?? undefined,
          powerDrawWatts: g.powerDrawW ?? undefined,
          powerLimitWatts: this.telemetry.inventory().gpus.find((i) => i.uuid === g.uuid)?.powerLimitW ?? undefined,
          temperatureC: g.temperatureC ?? undefined,
          eccUncorrectedVolatile: g.eccUncorrectedVolatile ?? undefined,
          eccCorrectedVolatile: g.eccCorrectedVolatile ?? undefined,
        })),
        host: () => {
          const h = this.telemetry.latest().host;
          return h ? { cpuUtilization: h.loadPct ?? undefined, memoryTotalBytes: h.memory.totalBytes, memoryUsedBytes: h.memory.usedBytes } : undefined;
        },
      },
      coordinatorConnected: () => (this.link ? (this.link.status().connected ? 1 : 0) : undefined),
      nodeState: () => this.node.state,
    });
    this.pulls = createPullService({
      config, models: this.models, logger: this.logger, clock: deps.clock ?? systemClock, registry: this.metrics.registry,
      onProgress: (p) => this.link?.sendEvent({
        kind: 'model_state', model: p.name, version: String(p.version), state: p.state,
        ...(p.reason ? { reason: p.reason.slice(0, 4000) } : {}),
        progress: { bytesDone: p.bytesDone, ...(p.bytesTotal !== undefined ? { bytesTotal: p.bytesTotal } : {}), rateBytesPerSecond: Math.round(p.rateBytesPerSecond), ...(p.etaSeconds !== undefined ? { etaSeconds: Math.round(p.etaSeconds * 10) / 10 } : {}) },
      }),
    });
  }

  /** Host memory from the OS; GPU memory from nvidia-smi (the GPU the CUDA provider uses). */
  private memoryProbe(): MemoryProbe {
    return {
      totalBytes: (device) => {
        if (device === 'host') return hostMemoryProbe.totalBytes('host');
        const gpu = this.telemetry.inventory().gpus.find((g) => g.index === this.config.cudaDeviceId);
        return gpu?.memoryTotalBytes ?? undefined;
      },
      processUsedBytes: (device) => (device === 'host' ? hostMemoryProbe.processUsedBytes('host') : this.telemetry.queryProcessMemoryBytes(process.pid)),
    };
  }

  /** The listening URL, once started. */
  get address(): string {
    if (!this.url) throw new Error('the agent is not listening');
    return this.url;
  }

  /** The gRPC listening address (host:port), once started with a --grpc-port; undefined without gRPC. */
  get grpcAddress(): string | undefined {
    return this.grpc?.address;
  }

  /**
   * Listen first, then load models: the node answers health probes at once and each model
   * reports LOADING until it is READY (a slow model never blocks the others).
   */
  async start(options: { waitForModels?: boolean } = {}): Promise<void> {
    // Fail fast on an unreadable repository: a configuration error (one line, exit 2 in the CLI).
    await this.repository.list().catch((err: unknown) => {
      throw new ConfigError(err instanceof Error ? err.message : String(err));
    });
    // Fail fast too, before listening, on a state dir nobody can write (only the link needs it).
    const stateDir = this.config.coordinatorUrl ? resolveStateDir(this.config.stateDir) : undefined;
    await this.telemetry.start(); // never throws: no GPU is an empty list and a reason
    const inv = this.telemetry.inventory();
    if (inv.reason) this.logger.info({ reason: inv.reason }, 'no GPU telemetry');
    else this.logger.info({ gpus: inv.gpus.map((g) => `${g.index}: ${g.name}`), driver: inv.driverVersion, cuda: inv.cudaVersion }, 'GPUs found');
    logAllocator(this.logger); // which malloc this process runs on (scripts/gpu-agent.sh preloads jemalloc)
    // One serving context for both transports (the shared memory registry hangs off it).
    const serving = { config: this.config, models: this.models, repository: this.repository, node: this.node, agentVersion: AGENT_VERSION, metrics: this.metrics, pulls: this.pulls,
      images: { queue: this.decodeQueue, maxPixels: this.config.maxImagePixels } };
    this.server = await buildServer(serving, this.logger);
    if (this.config.httpProcesses > 1) {
      // The front ends listen; this process keeps models, batchers and the app that answers what they forward.
      const { pool, url } = await FrontendPool.start(serving, this.server, this.logger, this.config.httpProcesses);
      this.frontends = pool;
      this.url = url;
    } else {
      this.url = await this.server.listen({ host: this.config.host, port: this.config.port });
    }
    if (this.config.grpcPort !== 0) {
      this.grpc = await GrpcServer.start(serving, this.logger, this.config.host, this.config.grpcPort).catch(async (err: unknown) => {
        await this.server?.close();
        throw err;
      });
    }
    this.logger.info({ url: this.url, ...(this.grpc ? { grpc: this.grpc.address } : {}), models: this.repository.root, version: AGENT_VERSION }, 'gpu-agent listening');
    if (this.config.coordinatorUrl) {
      this.link = new CoordinatorLink({
        url: this.config.coordinatorUrl,
        token: this.config.coordinatorToken!,
        nodeId: await loadOrCreateNodeId(stateDir!),
        agentVersion: AGENT_VERSION,
        controller: new AgentNodeController(this),
        logger: this.logger,
        heartbeatIntervalMs: this.config.heartbeatIntervalMs,
      });
      this.link.start(); // never throws; the coordinator being down never affects serving
    }
    const loading = this.models.loadAtStartup(this.config.loadModels).then(async () => {
      this.models.startIdleSweep();
      if (this.config.modelControlMode === 'poll') {
        this.poller = new RepositoryPoller({
          repository: this.repository, clock: this.clock, logger: this.logger,
          everyMs: this.config.repositoryPollSecs * 1000,
          load: (name) => this.models.load(name),
          unload: (name) => this.models.unload(name),
        });
        await this.poller.start();
      }
    });
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
    this.frontends?.setState();
  }

  /**
   * Stop taking new inference (503 + Retry-After, readiness false); resolves when every request
   * accepted before it has been answered, in whatever phase it was (body, image decode, each
   * pipeline stage, queue, run), and nothing is queued or running. Models stay loaded;
   * `uncordon()` takes work again. Live sequences end once their accepted chunks have run (a
   * stream's state does not survive a drain): the next request of each is told so.
   */
  async drain(reason = 'draining'): Promise<void> {
    this.node.state = 'draining';
    this.node.reason = reason;
    this.link?.sendEvent({ kind: 'node_state', state: 'draining', reason });
    await this.frontends?.drain(reason);
    if (this.server) await drainControlOf(this.server).whenNoneInFlight();
    await this.grpc?.drain();
    await this.models.whenIdle();
    const ended = this.models.endSequences(`ended (the node drained: ${reason})`);
    if (ended > 0) this.logger.info({ sequences: ended }, 'drain ended the live sequences');
  }

  /**
   * Graceful stop: drain for at most --shutdown-grace-ms, then fail what is still queued with
   * a clear error; release the sessions only once nothing accepted is left; close each
   * connection after its last response (see http/shutdown.ts), then the server.
   */
  async close(): Promise<void> {
    const grace = this.config.shutdownGraceMs;
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), grace)));
    this.pulls.puller.destroy(); // downloads stop; what they fetched stays for the next start
    const timedOut = await Promise.race([this.drain('shutting down').then(() => false), expired]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn({ graceMs: grace }, 'shutdown grace period over: failing requests still queued');
      await this.models.destroy(new AgentError('UNAVAILABLE', `the agent shut down before this request ran (grace period of ${grace} ms over)`));
    } else {
      await this.models.close();
    }
    await this.poller?.close();
    // The front ends first: what they forward is answered by this.server until they are gone.
    await this.frontends?.close(Math.max(started + grace, Date.now() + 2000));
    if (this.server) {
      // What is left of the grace, and at least 2 s for the answers just failed to be written.
      const deadline = Math.max(started + grace, Date.now() + 2000);
      const { destroyed } = await drainControlOf(this.server).closeConnections(deadline);
      if (destroyed) this.logger.warn({ connections: destroyed }, 'connections still busy at the end of the grace period were closed');
      await this.server.close();
    }
    await this.grpc?.close(Math.max(started + grace, Date.now() + 2000));
    await this.telemetry.close();
    // Last, so the coordinator saw the draining heartbeats and the models going away.
    await this.link?.close();
    this.logger.info('stopped');
  }

  /** Abort: queued requests fail at once. */
  async destroy(): Promise<void> {
    this.node.state = 'draining';
    this.node.reason = 'stopped';
    await this.poller?.close();
    this.pulls.puller.destroy();
    await this.models.destroy(new AgentError('UNAVAILABLE', 'the agent is stopping'));
    this.grpc?.destroy();
    this.frontends?.destroy();
    await this.server?.close();
    await this.telemetry.close();
    this.link?.destroy();
  }
}
