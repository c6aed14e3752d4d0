/**
 * The agent as the coordinator link sees it (coordinator/link.ts NodeController): what to
 * register, what each heartbeat carries, and how commands act on the model manager and the
 * node state. Commands name repository models only; control mode none refuses them.
 */
import os from 'node:os';
import type { Agent } from './agent.js';
import type { NodeController, NodeDescription, NodeHeartbeat } from './coordinator/link.js';
import { ThroughputMeter } from './coordinator/throughput.js';
import { AgentError } from './errors.js';

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
    const index = await agent.models.index();
    const models = index.map((e) => {
      const served = e.version ? agent.models.ready().find((m) => m.spec.name === e.name && String(m.spec.version) === e.version) : undefined;
      return {
        name: e.name,
        ...(e.version ? { version: e.version } : {}),
        state: e.state ?? 'UNAVAILABLE',
        ...(e.state ? (e.reason ? { reason: e.reason } : {}) : { reason: 'not loaded' }),
        ...(served ? { provider: served.provider } : {}),
      };
    });
    const budget = agent.models.memoryReport().find((r) => r.device === (inventory.gpus.length ? 'gpu' : 'host'))?.budgetBytes;
    const gpuTotal = inventory.gpus.reduce((n, g) => n + (g.memoryTotalBytes ?? 0), 0);
    return {
      hostname: os.hostname(),
      url: agent.config.advertiseUrl ?? agent.address,
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
        ...(m.sequences ? { liveSequences: m.sequences.live } : {}),
      })),
    };
  }

  private checkMode(): void {
    if (this.agent.config.modelControlMode === 'none') {
      throw new AgentError('FAILED_PRECONDITION', 'model control mode is none: models cannot be loaded or unloaded by command');
    }
  }

  async loadModel(name: string): Promise<void> {
    this.checkMode();
    await this.agent.models.load(name);
  }

  async unloadModel(name: string): Promise<void> {
    this.checkMode();
    await this.agent.models.unload(name);
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
