/**
 * The HTTP front-end processes of --http-processes N (N > 1), seen from the primary.
 *
 * Contracts:
 * - `start` forks N processes (node:cluster), listens once every one is ready, and hands each
 *   accepted connection to the next front end (round-robin); resolves with the URL.
 * - Each inference a front end sends runs here (serve-remote.ts) and its answer, or its
 *   AgentError as code + message, goes back to that front end; any other route is answered by
 *   the primary's own fastify app.
 * - A front end that exits while the pool is open is forked again; what it had sent and not
 *   been answered is cancelled here (its clients' connections died with it: they see a reset,
 *   never a hang).
 * - `setState` mirrors the node state to every front end; `drain` makes them refuse new
 *   inference and resolves once each has answered everything it accepted; `close` closes
 *   their connections (after each one's last response) and waits for them to exit.
 * - Every front end runs with ORT_DISABLE_TELEMETRY=1 in its environment and never imports
 *   onnxruntime (see worker-main.ts).
 */
import cluster, { type Worker } from 'node:cluster';
import net, { type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../http/context.js';
import { QUIET_MS } from '../http/shutdown.js';
import { CancelSource } from '../util/cancel.js';
import type { Logger } from '../util/logger.js';
import type { FrontendToPrimary, PrimaryToFrontend } from './messages.js';
import { eachMessage, Outbox } from './outbox.js';
import { serveRemoteHttp, serveRemoteInfer, wireError } from './serve-remote.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

/** A front end that does not listen within this long is a failed start. */
const START_TIMEOUT_MS = 30_000;

interface Slot {
  index: number;
  worker: Worker;
  /** Inference sent by this front end and not answered yet. */
  inFlight: Map<number, CancelSource>;
  listening: boolean;
  /** What this front end is sent, coalesced per turn of the event loop (outbox.ts). */
  outbox: Outbox<PrimaryToFrontend>;
  /** Connections sent to it and not yet confirmed: this process's copies, closed on its exit. */
  connecting: Map<number, Socket>;
}

export class FrontendPool {
  private readonly slots: Slot[] = [];
  private closing = false;
  private controlId = 0;
  private readonly acks = new Map<number, (m: { idleMs?: number | undefined }) => void>();
  /** When the last connection was handed to a front end (epoch ms). */
  private lastHandOff = 0;
  private url: string | undefined;
  private acceptor: NetServer | undefined;
  private nextSlot = 0;
  private connId = 0;

  private constructor(private readonly ctx: HttpContext, private readonly app: FastifyInstance, private readonly logger: Logger) {}

  /** Fork `count` front ends on the config's host and port; resolves with the listening URL. */
  static async start(ctx: HttpContext, app: FastifyInstance, logger: Logger, count: number): Promise<{ pool: FrontendPool; url: string }> {
    cluster.setupPrimary({ exec: WORKER_MAIN, args: [], serialization: 'json' });
    const pool = new FrontendPool(ctx, app, logger);
    await Promise.all(Array.from({ length: count }, (_, i) => pool.fork(i)));
    // This process accepts and hands each connection, paused and unread, to the next front end.
    // Not node:cluster's own sharing: its round-robin keeps a handed-over connection open until
    // the front end confirms it, so one handed to a front end that dies meanwhile hangs its
    // client; its SCHED_NONE (each front end accepts) gives one front end nearly every
    // connection of a burst (measured: 32 wrk connections, one front end idle). A connection
    // sent here is closed on this side once sent: if its front end dies, its client sees a reset.
    const acceptor = net.createServer({ pauseOnConnect: true }, (socket) => pool.handOff(socket));
    pool.acceptor = acceptor;
    await new Promise<void>((resolve, reject) => {
      acceptor.once('error', reject);
      acceptor.listen({ host: ctx.config.host, port: ctx.config.port }, () => resolve());
    });
    const { address, port } = acceptor.address() as AddressInfo;
    pool.url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
    return { pool, url: pool.url };
  }

  /** The next ready front end (round-robin) gets the connection; none alive: it is closed. */
  private handOff(socket: Socket): void {
    for (let tries = 0; tries < this.slots.length; tries++) {
      const slot = this.slots[this.nextSlot++ % this.slots.length];
      if (!slot?.listening || !slot.worker.isConnected()) continue;
      this.lastHandOff = Date.now();
      // keepOpen: this process keeps its copy of the connection until the front end confirms
      // it has its own ('connAck'), then closes it; if the front end dies first, the copy is
      // closed on its exit, so the client sees the connection close instead of a hang (Node
      // itself would leave a handle queued behind an unacknowledged one open for ever).
      const id = ++this.connId;
      slot.connecting.set(id, socket);
      slot.worker.send({ t: 'conn', id }, socket, { keepOpen: true }, (err: Error | null) => {
        if (err) {
          slot.connecting.delete(id);
          socket.destroy();
        }
      });
      return;
    }
    socket.destroy();
  }

  /** Process ids of the live front ends (for logs and tests). */
  get pids(): number[] {
    return this.slots.filter((s) => !s.worker.isDead()).map((s) => s.worker.process.pid!);
  }

  private fork(index: number): Promise<void> {
    const worker = cluster.fork({ ORT_DISABLE_TELEMETRY: '1' });
    const slot: Slot = {
      index, worker, inFlight: new Map(), listening: false, connecting: new Map(),
      outbox: new Outbox<PrimaryToFrontend>((m) => {
        if (!worker.isConnected()) return; // it died: its clients are gone with it
        worker.send(m, (err: Error | null) => {
          if (err) this.logger.debug({ err: err.message, frontend: index }, 'front end gone before its answer');
        });
      }),
    };
    this.slots[index] = slot;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`HTTP front end ${index} did not listen within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      worker.on('message', (msg: unknown) => eachMessage<FrontendToPrimary>(msg, (m) => {
        if (m.t === 'listening') {
          clearTimeout(timer);
          slot.listening = true;
          this.logger.info({ frontend: index, pid: worker.process.pid }, 'HTTP front end listening');
          resolve();
          return;
        }
        this.onMessage(slot, m);
      }));
      worker.on('exit', (code, signal) => {
        clearTimeout(timer);
        for (const c of slot.inFlight.values()) c.cancel();
        slot.inFlight.clear();
        for (const socket of slot.connecting.values()) socket.destroy();
        slot.connecting.clear();
        if (!slot.listening) reject(new Error(`HTTP front end ${index} exited before listening (code ${code}, signal ${signal})`));
        if (this.closing) return;
        this.logger.warn({ frontend: index, pid: worker.process.pid, code, signal }, 'HTTP front end exited: starting another');
        this.fork(index).catch((err: unknown) => this.logger.error({ err, frontend: index }, 'HTTP front end failed to restart'));
      });
    });
  }

  private send(slot: Slot, m: PrimaryToFrontend): void {
    slot.outbox.post(m);
  }

  private onMessage(slot: Slot, m: FrontendToPrimary): void {
    switch (m.t) {
      case 'hello':
        this.send(slot, { t: 'config', config: this.ctx.config, index: slot.index, state: this.ctx.node.state, reason: this.ctx.node.reason });
        return;
      case 'infer': {
        const cancel = new CancelSource();
        slot.inFlight.set(m.id, cancel);
        serveRemoteInfer(this.ctx, m, cancel).then(
          (reply) => this.send(slot, { t: 'inferResult', id: m.id, reply }),
          (err: unknown) => {
            const e = wireError(err, this.ctx.config.bodyLimit);
            if (e.code === 'INTERNAL') this.logger.error({ err }, e.message);
            this.send(slot, { t: 'inferResult', id: m.id, error: e });
          },
        ).finally(() => slot.inFlight.delete(m.id));
        return;
      }
      case 'connAck': {
        const socket = slot.connecting.get(m.id);
        slot.connecting.delete(m.id);
        socket?.destroy(); // this process's copy only: the front end holds its own
        return;
      }
      case 'cancel':
        slot.inFlight.get(m.id)?.cancel();
        return;
      case 'http':
        serveRemoteHttp(this.app, m).then(
          (r) => this.send(slot, { t: 'httpResult', id: m.id, ...r }),
          (err: unknown) => {
            this.logger.error({ err }, 'forwarded request failed');
            this.send(slot, { t: 'httpResult', id: m.id, status: 500, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ error: `internal error: ${String(err)}` })) });
          },
        );
        return;
      case 'countError':
        this.ctx.metrics.routing.countError(m.status);
        return;
      case 'ack':
        this.acks.get(m.id)?.(m);
        this.acks.delete(m.id);
        return;
      default:
        return;
    }
  }

  /** Send a control message to every live front end; resolves when each has acked or exited. */
  private control(make: (id: number) => PrimaryToFrontend): Promise<{ idleMs?: number | undefined }[]> {
    return Promise.all(this.slots.map((slot) => new Promise<{ idleMs?: number | undefined }>((resolve) => {
      if (slot.worker.isDead() || !slot.worker.isConnected()) return resolve({});
      const id = ++this.controlId;
      const done = (m: { idleMs?: number | undefined } = {}) => {
        slot.worker.off('exit', onExit);
        this.acks.delete(id);
        resolve(m);
      };
      const onExit = () => done();
      this.acks.set(id, done);
      slot.worker.once('exit', onExit);
      this.send(slot, make(id));
    })));
  }

  /** The node state changed: every front end refuses or takes inference accordingly. */
  setState(): void {
    for (const slot of this.slots) this.send(slot, { t: 'state', state: this.ctx.node.state, reason: this.ctx.node.reason });
  }

  /** Front ends refuse new inference; resolves once each has answered what it accepted. */
  async drain(reason: string): Promise<void> {
    await this.control((id) => ({ t: 'drain', id, reason }));
  }

  /** Close every front end's connections by `deadline` (epoch ms) and wait for it to exit. */
  async close(deadline: number): Promise<void> {
    this.closing = true;
    // As http/shutdown.ts does for one process: stop accepting only after a quiet period with no
    // new connection, request or response anywhere, so a client that got its last answer
    // (Connection: close while draining) and reconnects at once is still answered.
    for (;;) {
      const idle = await this.control((id) => ({ t: 'idle', id }));
      const quiet = Math.min(Date.now() - this.lastHandOff, ...idle.map((x) => x.idleMs ?? Infinity));
      if (quiet >= QUIET_MS || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, QUIET_MS / 4));
    }
    // A connection handed over before this close arrives before the 'close' message (one channel, in order).
    this.acceptor?.close();
    await this.control((id) => ({ t: 'close', id, deadline }));
    await Promise.all(this.slots.map((slot) => waitExit(slot.worker, Math.max(1000, deadline - Date.now() + 1000))));
  }

  /** Abort: the front ends are killed (their connections cut). */
  destroy(): void {
    this.closing = true;
    this.acceptor?.close();
    for (const slot of this.slots) if (!slot.worker.isDead()) slot.worker.process.kill('SIGKILL');
  }
}

function waitExit(worker: Worker, ms: number): Promise<void> {
  if (worker.isDead()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      worker.process.kill('SIGKILL');
      resolve();
    }, ms);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
