/**
 * The fleet as a gateway process sees it: the primary's node snapshots (messages.ts 'nodes'),
 * kept as one object per node so the router's per-model lists stay valid across updates (an
 * update assigns into the existing object), and commands sent through the primary.
 */
import type { CommandOutcome } from '../fleet-types.js';
import type { GatewayFleet, GatewayNode } from '../gateway/fleet.js';
import type { Command } from '../protocol.js';
import type { FromGatewayProcess } from './messages.js';

export class RemoteFleet implements GatewayFleet {
  private readonly byId = new Map<string, GatewayNode>();
  private list: GatewayNode[] = [];
  private readonly listeners = new Set<(nodeId: string) => void>();
  private readonly pending = new Map<number, (o: CommandOutcome) => void>();
  private nextId = 1;

  constructor(private readonly send: (m: FromGatewayProcess) => void) {}

  nodes(): readonly GatewayNode[] {
    return this.list;
  }

  /** Apply the primary's update; the model listeners run when routing lists must be rebuilt. */
  apply(upsert: readonly GatewayNode[], modelsChanged: boolean): void {
    let added = false;
    for (const n of upsert) {
      const known = this.byId.get(n.nodeId);
      if (known) Object.assign(known, n);
      else {
        this.byId.set(n.nodeId, { ...n });
        added = true;
      }
    }
    if (added) this.list = [...this.byId.values()];
    if (added || modelsChanged) for (const l of this.listeners) l(upsert[0]?.nodeId ?? '');
  }

  sendCommand(nodeId: string, command: Command, options?: { timeoutMs?: number; identity?: string }): Promise<CommandOutcome> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.send({ t: 'command', id, nodeId, command, ...(options ? { options } : {}) });
    });
  }

  commandResult(id: number, outcome: CommandOutcome): void {
    const settle = this.pending.get(id);
    this.pending.delete(id);
    settle?.(outcome);
  }

  onModelsChanged(listener: (nodeId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
