/**
 * A front end's side of the IPC channel: requests to the primary, matched to their answers by
 * id. If the channel closes (the primary died), every pending request fails with UNAVAILABLE
 * and the process exits: a front end never serves without its primary.
 */
import type { Socket } from 'node:net';
import { AgentError } from '../errors.js';
import type { FrontendToPrimary, HttpMessage, InferMessage, PrimaryToFrontend } from './messages.js';
import { eachMessage, Outbox } from './outbox.js';

type InferResult = Extract<PrimaryToFrontend, { t: 'inferResult' }>;
type HttpResult = Extract<PrimaryToFrontend, { t: 'httpResult' }>;

interface Pending {
  resolve(m: InferResult | HttpResult): void;
  reject(err: Error): void;
}

export class PrimaryLink {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly outbox = new Outbox<FrontendToPrimary>((m) => {
    if (process.connected) process.send!(m);
  });

  /** `onConnection`: a connection the primary accepted, paused, for this front end's HTTP server. */
  constructor(private readonly onControl: (m: PrimaryToFrontend) => void, onConnection: (socket: Socket) => void) {
    process.on('message', (msg: unknown, handle: unknown) => {
      if (handle) {
        onConnection(handle as Socket);
        this.post({ t: 'connAck', id: (msg as { id: number }).id });
        return;
      }
      this.onMessage(msg);
    });
    process.on('disconnect', () => {
      const gone = new AgentError('UNAVAILABLE', 'the agent process is gone; retry', { retryAfterSeconds: 5 });
      for (const p of this.pending.values()) p.reject(gone);
      this.pending.clear();
      setTimeout(() => process.exit(1), 100).unref();
    });
  }

  private onMessage(msg: unknown): void {
    eachMessage<PrimaryToFrontend>(msg, (m) => {
      if (m.t === 'inferResult' || m.t === 'httpResult') {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.resolve(m);
      } else {
        this.onControl(m);
      }
    });
  }

  /** Sent at the end of this turn of the event loop, with whatever else was posted in it. */
  post(m: FrontendToPrimary): void {
    this.outbox.post(m);
  }

  private call<R>(build: (id: number) => FrontendToPrimary): { id: number; result: Promise<R> } {
    const id = ++this.nextId;
    const result = new Promise<R>((resolve, reject) => {
      if (!process.connected) return reject(new AgentError('UNAVAILABLE', 'the agent process is gone; retry', { retryAfterSeconds: 5 }));
      this.pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      this.outbox.post(build(id));
    });
    return { id, result };
  }

  /** An inference; `onCancel` lets the caller tell the primary that its client went away. */
  infer(m: Omit<InferMessage, 'id' | 't'>): { cancel: () => void; result: Promise<InferResult> } {
    const { id, result } = this.call<InferResult>((id) => ({ t: 'infer', id, ...m }));
    return { cancel: () => this.post({ t: 'cancel', id }), result };
  }

  http(m: Omit<HttpMessage, 'id' | 't'>): Promise<HttpResult> {
    return this.call<HttpResult>((id) => ({ t: 'http', id, ...m })).result;
  }
}
