/**
 * Connection handling for a drain and a graceful stop, so that no request on the wire is lost.
 *
 * Contracts:
 * - Inference (`POST .../infer`, `.../predict`) counts as *accepted* once its headers are parsed
 *   (fastify's onRequest) before the drain began; the drain waits until every accepted request
 *   has been answered, whatever phase it is in (body, image decode, each pipeline stage, queue,
 *   run). A lazy load or a LOADING wait is part of that.
 * - Inference whose headers arrive once the drain has begun gets the agent's own answer,
 *   503 `{"error": ...}` with `Retry-After: 5`, decided before the body is read. Every other
 *   endpoint still answers (health says draining).
 * - While draining, every response carries `Connection: close`, and Node closes the connection
 *   only after that response is written: a keep-alive client never has its next request cut.
 * - `closeConnections` stops listening only after a quiet period with no new connection, no
 *   request and no response (so a client that just got its answer and reconnects at once is
 *   still answered), then closes the connections with no request in progress and waits for the
 *   others; whatever is left at the deadline is destroyed.
 */
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { AgentError } from '../errors.js';
import type { NodeStatus } from './context.js';
import { trackClose } from './response-close.js';

/** A connection is quiet enough to stop listening after this long without traffic. */
export const QUIET_MS = 200;

interface Tracked {
  active: number;
}

/** On every response of the server (false); true once it counts as an accepted inference (see onRequest). */
const ACCEPTED = Symbol('accepted inference');
type Counted = ServerResponse & { [ACCEPTED]?: boolean };

const INFERENCE = /^\/v[12]\/models\/[^/]+(?:\/versions\/[^/]+)?\/(?:infer|predict)$/;

export function isInferencePath(url: string): boolean {
  return INFERENCE.test(url.split('?')[0]!);
}

export class DrainControl {
  private readonly sockets = new Map<Socket, Tracked>();
  private accepted = 0;
  private waiters: (() => void)[] = [];
  private lastTraffic = Date.now();
  private listening = true;

  constructor(private readonly server: Server, private readonly node: NodeStatus) {
    server.on('connection', (socket: Socket) => {
      this.lastTraffic = Date.now();
      this.sockets.set(socket, { active: 0 });
      socket.once('close', () => this.sockets.delete(socket));
    });
    // Before fastify's own listener, so the response is marked when the onRequest hook sees it.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      this.lastTraffic = Date.now();
      const t = this.sockets.get(req.socket);
      if (t) t.active++;
      // One 'close' listener per response does both counts (connection activity, accepted inference).
      (res as Counted)[ACCEPTED] = false;
      trackClose(res, () => {
        this.lastTraffic = Date.now();
        if (t) t.active--;
        if ((res as Counted)[ACCEPTED]) this.release();
      });
    });
  }

  get draining(): boolean {
    return this.node.state === 'draining';
  }

  /** Inference requests accepted before the drain and not answered yet. */
  get inFlight(): number {
    return this.accepted;
  }

  /** Open connections (for tests and logs). */
  get connections(): number {
    return this.sockets.size;
  }

  /**
   * fastify onRequest: admit inference (count it until its response closes) or refuse it with
   * the draining answer; while draining, make every response the last of its connection.
   */
  onRequest(url: string, res: ServerResponse): void {
    if (this.draining) res.setHeader('Connection', 'close');
    if (!isInferencePath(url)) return;
    if (this.draining) {
      throw new AgentError('UNAVAILABLE', `the node is not taking new requests (${this.node.reason || 'draining'})`, { retryAfterSeconds: 5 });
    }
    this.accepted++;
    if (ACCEPTED in res) (res as Counted)[ACCEPTED] = true; // released by the server's 'close' listener above
    else res.once('close', () => this.release()); // not from this server (fastify's inject): its own listener
  }

  private release(): void {
    this.accepted--;
    if (this.accepted === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** A response leaving while draining is the last on its connection (it may have begun before). */
  onSend(res: ServerResponse): void {
    if (this.draining && !res.headersSent) res.setHeader('Connection', 'close');
  }

  /** Resolves once every accepted inference request has been answered. */
  whenNoneInFlight(): Promise<void> {
    if (this.accepted === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Stop listening after a quiet period, close idle connections, wait for the busy ones to
   * finish their last response; destroy what is left at `deadline` (epoch ms).
   */
  async closeConnections(deadline: number): Promise<{ destroyed: number }> {
    while (Date.now() < deadline && Date.now() - this.lastTraffic < QUIET_MS) await sleep(QUIET_MS / 4);
    this.stopListening();
    for (;;) {
      for (const [socket, t] of this.sockets) if (t.active === 0) socket.destroy();
      if (this.sockets.size === 0 || Date.now() >= deadline) break;
      await sleep(20);
    }
    const destroyed = this.sockets.size;
    for (const socket of this.sockets.keys()) socket.destroy();
    return { destroyed };
  }

  /** Close the listening socket only: http.Server#close would also cut idle keep-alive connections at once. */
  private stopListening(): void {
    if (!this.listening) return;
    this.listening = false;
    if (this.server.listening) NetServer.prototype.close.call(this.server);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const controls = new WeakMap<FastifyInstance, DrainControl>();

/** Install the drain control on a fastify app (before its routes); see the contracts above. */
export function installDrainControl(app: FastifyInstance, node: NodeStatus): DrainControl {
  const control = new DrainControl(app.server, node);
  controls.set(app, control);
  // Callback-style hooks: they run for every request, and an async hook costs a promise each.
  app.addHook('onRequest', (req, reply, done) => {
    try {
      control.onRequest(req.url, reply.raw);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    control.onSend(reply.raw);
    done(null, payload);
  });
  return control;
}

export function drainControlOf(app: FastifyInstance): DrainControl {
  const c = controls.get(app);
  if (!c) throw new Error('this fastify app has no drain control (built without buildServer?)');
  return c;
}
