/**
 * The dashboard's live updates: one Server-Sent Events stream per open page, fed by the
 * coordinator itself (never a poll per node). Changes are coalesced: the coordinator marks a
 * node dirty on every register, heartbeat, event, disconnect or command, and every
 * `intervalMs` each stream gets one `update` event with the views of the dirty nodes, the new
 * audit rows and the fleet's request counters. A new stream first gets a `snapshot`.
 *
 * The browser reads the stream with fetch() (so the admin token travels in the Authorization
 * header, not in the URL), which is why this is plain text/event-stream over a hijacked reply.
 */
import type { ServerResponse } from 'node:http';
import type { Clock } from '../../util/clock.js';
import type { AuditRow } from '../audit/store.js';
import type { CostReport } from '../cost/ledger.js';
import type { NodeView } from '../fleet-types.js';

export interface FeedSource {
  nodes(): NodeView[];
  node(nodeId: string): NodeView | undefined;
  auditAfter(id: number): AuditRow[];
  latestAudit(limit: number): AuditRow[];
  costs(): CostReport;
}

export interface FeedUpdate {
  /** ms since the epoch when the update was built. */
  readonly at: number;
  readonly nodes: NodeView[];
  /** Ids of nodes the coordinator no longer lists (never, today; kept for forward use). */
  readonly removed: string[];
  readonly audit: AuditRow[];
  readonly fleet: { requests: number; errors: number };
  readonly costs: CostReport;
}

export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  private readonly dirty = new Set<string>();
  private lastAuditId = 0;
  private cancel: (() => void) | undefined;
  private closed = false;

  constructor(private readonly source: FeedSource, private readonly clock: Clock, readonly intervalMs = 500) {}

  get subscribers(): number {
    return this.clients.size;
  }

  markDirty(nodeId: string): void {
    this.dirty.add(nodeId);
  }

  /** Take over an HTTP response as an event stream; it is removed when the client goes away. */
  subscribe(res: ServerResponse): void {
    if (this.closed) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"the coordinator is shutting down"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // Bring the open streams up to date first, so the snapshot and the next update do not overlap.
    if (this.clients.size) {
      this.cancel?.();
      this.flush();
    }
    this.dirty.clear();
    const audit = this.source.latestAudit(100);
    const snapshot: FeedUpdate = { at: Date.now(), nodes: this.source.nodes(), removed: [], audit, fleet: this.fleet(), costs: this.source.costs() };
    if (audit.length) this.lastAuditId = Math.max(this.lastAuditId, audit.at(-1)!.id);
    res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    this.clients.add(res);
    res.once('close', () => this.clients.delete(res));
    this.schedule();
  }

  /** Build and send one update now (called by the timer; public for the scale bench). */
  flush(): void {
    this.cancel = undefined;
    if (this.clients.size === 0) {
      this.dirty.clear();
      return;
    }
    const audit = this.source.auditAfter(this.lastAuditId);
    if (audit.length) this.lastAuditId = audit.at(-1)!.id;
    if (this.dirty.size || audit.length) {
      const nodes: NodeView[] = [];
      for (const id of this.dirty) {
        const v = this.source.node(id);
        if (v) nodes.push(v);
      }
      this.dirty.clear();
      const update: FeedUpdate = { at: Date.now(), nodes, removed: [], audit, fleet: this.fleet(), costs: this.source.costs() };
      const frame = `event: update\ndata: ${JSON.stringify(update)}\n\n`;
      for (const c of this.clients) c.write(frame);
    } else {
      for (const c of this.clients) c.write(': keepalive\n\n');
    }
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.cancel?.();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private schedule(): void {
    if (this.closed || this.cancel || this.clients.size === 0) return;
    this.cancel = this.clock.setTimer(this.intervalMs, () => this.flush());
  }

  private fleet(): { requests: number; errors: number } {
    const t = this.source.costs().total;
    return { requests: t.requests, errors: t.errors };
  }
}
