/**
 * The agent as the coordinator link sees it (coordinator/link.ts NodeController): what to
 * register, what each heartbeat carries, and how commands act on the model manager and the
 * node state. Commands name repository models only; control mode none refuses them.
 */
import os from 'node:os';
import type { Agent } from './agent.js';
import type { NodeController, NodeDescription, NodeHeartbeat } from './coordinator/link.js';
import type { NodeState } from './coordinator/protocol.js';
import { ThroughputMeter } from './coordinator/throughput.js';
import { AgentError } from './errors.js';
import type { Manifest } from './sources/manifest.js';

export class AgentNodeController implements NodeController {
  private readonly meter = new ThroughputMeter();

  constructor(private readonly agent: Agent) {}

  private labels(): Record<string, string> {
    return Object.fromEntries(this.agent.config.labels.map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    }));
  }

  async describe(): Promise<NodeDescription> {
    const { agent } = this;
    const inventory = agent.telemetry.inventory();
    const index = await agent.pulls.decorateIndex(await agent.models.index(), false);
    const models = index.map((e) => {
      const served = e.version ? agent.models.ready().find((m) => m.spec.name === e.name && String(m.spec.version) === e.version) : undefined;
      return {
        name: e.name,
        ...(e.version ? { version: e.version } : {}),
        state: e.state ?? 'UNAVAILABLE',
        ...(e.state ? (e.reason ? { reason: e.reason } : {}) : { reason: 'not loaded' }),
        ...(served ? { provider: served.provider } : {}),
        ...(e.progress ? { progress: { bytesDone: e.progress.bytes_done, ...(e.progress.bytes_total !== undefined ? { bytesTotal: e.progress.bytes_total } : {}), rateBytesPerSecond: e.progress.rate_bytes_per_second, ...(e.progress.eta_seconds !== undefined ? { etaSeconds: e.progress.eta_seconds } : {}) } } : {}),
        ...(e.provenance ? { provenance: { manifestDigest: e.provenance.manifest_digest, source: e.provenance.source } } : {}),
      };
    });
    const budget = agent.models.memoryReport().find((r) => r.device === (inventory.gpus.length ? 'gpu' : 'host'))?.budgetBytes;
    const gpuTotal = inventory.gpus.reduce((n, g) => n + (g.memoryTotalBytes ?? 0), 0);
    return {
      hostname: os.hostname(),
      url: agent.config.advertiseUrl ?? agent.address,
      ...(agent.grpcAddress ? { grpcAddress: advertisedGrpc(agent.config.advertiseUrl ?? agent.address, agent.grpcAddress) } : {}),
      labels: this.labels(),
      gpus: inventory.gpus,
      models,
      capacity: {
        gpuCount: inventory.gpus.length,
        ...(gpuTotal ? { gpuMemoryTotalBytes: gpuTotal } : {}),
        ...(budget !== undefined && Number.isFinite(budget) ? { memoryBudgetBytes: budget } : {}),
      },
      nodeState: agent.node.state,
    };
  }

  heartbeat(): NodeHeartbeat {
    const { agent } = this;
    const snapshot = agent.telemetry.latest();
    const ready = agent.models.ready();
    const keys = ready.map((m) => `${m.spec.name}/${m.spec.version}`);
    this.meter.retain(keys);
    return {
      nodeState: agent.node.state,
      telemetry: { collectedAt: Date.now(), gpus: snapshot.gpus, host: snapshot.host, ...(snapshot.gpuReason ? { gpuReason: snapshot.gpuReason } : {}) },
      models: ready.map((m, i) => ({
        name: m.spec.name,
        version: String(m.spec.version),
        queueDepth: m.queued,
        inFlight: m.executing,
        throughput: this.meter.rate(keys[i]!, m.stats.inferenceCount),
        computeMs: m.computeMsTotal,
        ...(m.sequences ? { liveSequences: m.sequences.live } : {}),
      })),
    };
  }

  private checkMode(): void {
    if (this.agent.config.modelControlMode === 'none') {
      throw new AgentError('FAILED_PRECONDITION', 'model control mode is none: models cannot be loaded or unloaded by command');
    }
  }

  async loadModel(name: string, source?: Manifest): Promise<void> {
    this.checkMode();
    if (!source) {
      await this.agent.models.load(name);
      return;
    }
    if (source.name !== name) throw new AgentError('INVALID_ARGUMENT', `the source manifest is for model '${source.name}', the command for '${name}'`);
    await this.agent.pulls.pullAndLoad(source, 'coordinator');
  }

  async rollbackModel(name: string, version?: number): Promise<void> {
    this.checkMode();
    await this.agent.pulls.rollback(name, version, 'coordinator');
  }

  async unloadModel(name: string): Promise<void> {
    this.checkMode();
    await this.agent.models.unload(name);
  }

  state(): NodeState {
    return this.agent.node.state;
  }

  cordon(): void {
    this.agent.cordon('cordoned by the coordinator');
  }

  uncordon(): void {
    this.agent.uncordon();
  }

  drain(): Promise<void> {
    return this.agent.drain('drained by the coordinator');
  }
}

/** The gRPC address to advertise: the advertised HTTP host with the gRPC port (a wildcard bind is not an address). */
export function advertisedGrpc(httpUrl: string, bound: string): string {
  const port = bound.slice(bound.lastIndexOf(':') + 1);
  const host = new URL(httpUrl).hostname;
  return `${host}:${port}`;
}
