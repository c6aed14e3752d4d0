/**
 * Coordinator test fixtures: a fake NodeController, a logger that keeps its lines, a raw
 * WebSocket server standing in for a coordinator, polling, and HTTP helpers for the
 * reference coordinator's API.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import {
  CoordinatorLink,
  type CoordinatorLinkOptions,
  type NodeController,
  type NodeDescription,
  type NodeHeartbeat,
} from '../../src/coordinator/link.js';
import type { ModelInfo, NodeState } from '../../src/coordinator/protocol.js';
import type { RunningCoordinator } from '../../src/coordinator/server.js';
import { deferred, type Deferred } from '../../src/util/deferred.js';
import type { Logger } from '../../src/util/logger.js';

export const TOKEN = 'test-token-123456';

/** A pino logger at debug level whose JSON lines are kept in `lines`. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[]; messages(): string[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream);
  return { logger, lines, messages: () => lines.map((l) => String(l.msg)) };
}

export const silentLogger: Logger = pino({ level: 'silent' });

/** A node with two models; records every call; drain() waits for the test to finish it. */
export class FakeController implements NodeController {
  nodeState: NodeState = 'ready';
  readonly calls: string[] = [];
  readonly models = new Map<string, ModelInfo>([
    ['add_sub', { name: 'add_sub', version: '1', state: 'READY', provider: 'cpu' }],
    ['mlp', { name: 'mlp', state: 'UNAVAILABLE', reason: 'not loaded' }],
  ]);
  drainDone: Deferred<void> | undefined;
  /** When set, loadModel waits for it. */
  loadGate: Promise<void> | undefined;
  heartbeatError: Error | undefined;
  describeError: Error | undefined;

  describe(): NodeDescription {
    if (this.describeError) throw this.describeError;
    return {
      hostname: 'gpu-box-1',
      url: 'http://127.0.0.1:8000',
      labels: { zone: 'eu-1a', gpu: 'h100' },
      gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-0000', memoryTotalBytes: 85_899_345_920 }],
      models: [...this.models.values()],
      capacity: { gpuCount: 1, gpuMemoryTotalBytes: 85_899_345_920, memoryBudgetBytes: 64_000_000_000 },
      nodeState: this.nodeState,
    };
  }

  heartbeat(): NodeHeartbeat {
    if (this.heartbeatError) throw this.heartbeatError;
    return {
      nodeState: this.nodeState,
      telemetry: { collectedAt: Date.now(), gpus: [{ index: 0, utilizationGpuPct: 37, memoryUsedBytes: 1_000_000, vendorField: 'kept' }] },
      models: [{ name: 'add_sub', version: '1', queueDepth: 2, inFlight: 1, throughput: 12.5 }],
    };
  }

  async loadModel(name: string): Promise<void> {
    this.calls.push(`load:${name}`);
    if (this.loadGate) await this.loadGate;
    const m = this.models.get(name);
    if (!m) throw new Error(`model '${name}' is not in the model repository`);
    this.models.set(name, { name, version: '1', state: 'READY', provider: 'cpu' });
  }

  async unloadModel(name: string): Promise<void> {
    this.calls.push(`unload:${name}`);
    if (!this.models.has(name)) throw new Error(`unknown model '${name}'`);
    this.models.set(name, { name, state: 'UNAVAILABLE', reason: 'unloaded' });
  }

  cordon(): void {
    this.calls.push('cordon');
    this.nodeState = 'cordoned';
  }

  uncordon(): void {
    this.calls.push('uncordon');
    this.nodeState = 'ready';
  }

  drain(): Promise<void> {
    this.calls.push('drain');
    this.nodeState = 'draining';
    this.drainDone = deferred<void>();
    return this.drainDone.promise;
  }
}

/** Small intervals so that tests run in well under a second per reconnect. */
export function fastLinkOptions(
  url: string,
  controller: NodeController,
  overrides: Partial<CoordinatorLinkOptions> = {},
): CoordinatorLinkOptions {
  return {
    url,
    token: TOKEN,
    nodeId: '6f1c2b1e-8d1a-4c53-9a57-1b2f3c4d5e6f',
    agentVersion: '0.1.0',
    controller,
    logger: silentLogger,
    heartbeatIntervalMs: 100,
    backoff: { baseMs: 20, capMs: 200 },
    refusedRetryMs: 60_000,
    pingIntervalMs: 1_000,
    registerTimeoutMs: 2_000,
    ...overrides,
  };
}

export function startLink(options: CoordinatorLinkOptions): CoordinatorLink {
  const link = new CoordinatorLink(options);
  link.start();
  return link;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Poll until `fn` returns a truthy value (generous default: 5 s). */
export async function waitFor<T>(fn: () => T | Promise<T>, what = 'condition', timeoutMs = 5_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(10);
  }
}

/** Call the coordinator's HTTP API with the token (or the given headers). */
export async function api(
  coordinator: Pick<RunningCoordinator, 'url'>,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${coordinator.url}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A WebSocket connection seen by the raw server, with every message it received. */
export interface RawConn {
  readonly ws: WebSocket;
  readonly messages: any[];
  readonly headers: Record<string, string | string[] | undefined>;
  closed: { code: number; reason: string } | undefined;
  send(message: unknown): void;
  /** Wait for the n-th (1-based) message matching `pred`. */
  next(pred: (m: any) => boolean, what?: string): Promise<any>;
}

/** A bare WebSocket server on 127.0.0.1 that plays the coordinator by hand. */
export interface RawServer {
  readonly url: string;
  readonly port: number;
  readonly conns: RawConn[];
  nextConn(index: number): Promise<RawConn>;
  close(): Promise<void>;
}

export async function startRawServer(options: { autoPong?: boolean; onConnection?: (c: RawConn) => void } = {}): Promise<RawServer> {
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, autoPong: options.autoPong ?? true });
  const conns: RawConn[] = [];
  wss.on('connection', (ws, req) => {
    const conn: RawConn = {
      ws,
      messages: [],
      headers: req.headers,
      closed: undefined,
      send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
      next: (pred, what = 'message') => waitFor(() => conn.messages.find(pred), what),
    };
    ws.on('message', (data, isBinary) => {
      conn.messages.push(isBinary ? { binary: true } : JSON.parse(data.toString()));
    });
    ws.on('close', (code, reason) => {
      conn.closed = { code, reason: reason.toString() };
    });
    ws.on('error', () => undefined);
    conns.push(conn);
    options.onConnection?.(conn);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/agents`,
    port,
    conns,
    nextConn: (index) => waitFor(() => conns[index], `connection #${index + 1}`),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The register → registered handshake, as a coordinator does it. */
export async function acceptRegistration(conn: RawConn): Promise<any> {
  const reg = await conn.next((m) => m.type === 'register', 'register');
  conn.send({ type: 'registered', protocolVersion: 1, nodeId: reg.nodeId, sessionId: reg.sessionId });
  return reg;
}

/** A WebSocket subclass counting its instances (connection attempts). */
export function countingWebSocket(): { WebSocket: typeof WebSocket; count: () => number } {
  let n = 0;
  class Counting extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      n++;
    }
  }
  return { WebSocket: Counting as typeof WebSocket, count: () => n };
}

/** A raw client to the coordinator's agent endpoint, keeping what it receives. */
export async function rawAgent(
  url: string,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  options: { autoPong?: boolean } = {},
): Promise<{ ws: WebSocket; messages: any[]; closed: Promise<{ code: number; reason: string }>; send(m: unknown): void; next(pred: (m: any) => boolean, what?: string): Promise<any> }> {
  const ws = new WebSocket(url, { headers, autoPong: options.autoPong ?? true });
  const messages: any[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    closed,
    send: (m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m)),
    next: (pred, what = 'message') => waitFor(() => messages.find(pred), what),
  };
}

export function registerMessage(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'register',
    protocolVersion: 1,
    nodeId: 'raw-node-1',
    sessionId: 'raw-session-1',
    hostname: 'raw-host',
    agentVersion: '0.0.1',
    url: 'http://10.0.0.5:8000',
    labels: {},
    gpus: [],
    models: [],
    capacity: { gpuCount: 0 },
    nodeState: 'ready',
    ...overrides,
  };
}
