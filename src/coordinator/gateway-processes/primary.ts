/**
 * The coordinator's side of --gateway-processes N: N gateway processes (worker-main.ts) serve
 * the gateway's routes on their own port, so routing can use more than the coordinator's one
 * event loop. This side:
 * - accepts the gateway port's connections (paused, unread) and hands each socket to the next
 *   ready process in turn, as node:cluster does on Linux; a kept-alive client stays on its
 *   process, so the hand-off is paid once per connection, not per request;
 * - sends each process the fleet as the gateway sees it: every node at start, then every
 *   BROADCAST_MS the nodes that changed (heartbeats, state, health, models), the clients whose
 *   budget is spent when that changed, and the manifests when the registry reports a change;
 * - runs the commands a process asks for (load on demand) and feeds each process's answered
 *   requests to cost accounting, as the in-process gateway's hooks do;
 * - restarts a process that exits (after RESTART_MS), until close().
 * The main port keeps its own in-process gateway; the two share nodes, costs and budgets, not
 * routing counters (each process has its own outstanding counts and breakers).
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../../util/logger.js';
import { PACKAGE_ROOT } from '../../util/package-root.js';
import type { Manifest } from '../../sources/manifest.js';
import { COMPUTE_TIME_HEADER } from '../cost/ledger.js';
import type { GatewayFleet, GatewayNode } from '../gateway/fleet.js';
import type { GatewayHooks, GatewayOptions } from '../gateway/gateway.js';
import type { FromGatewayProcess, ToGatewayProcess, WireGatewayOptions } from './messages.js';

/** How often changed nodes, refusals and manifests go to the processes, ms. */
export const BROADCAST_MS = 100;
const RESTART_MS = 1_000;

// The process always runs the build's JavaScript (under vitest this module is the .ts source).
const WORKER_MAIN = path.join(PACKAGE_ROOT ?? '.', 'dist/src/coordinator/gateway-processes/worker-main.js');

export interface GatewayProcessesOptions {
  readonly count: number;
  /** 0 = any free port. */
  readonly port: number;
  readonly host: string;
  readonly logLevel: string;
}

export interface GatewayProcessesDeps {
  readonly adminToken: string;
  readonly gateway: GatewayOptions;
  readonly fleet: GatewayFleet;
  readonly hooks: GatewayHooks;
  readonly manifests: () => Readonly<Record<string, Manifest>>;
  readonly log: Logger;
}

export interface GatewayProcesses {
  /** Base URL of the gateway port, e.g. http://127.0.0.1:9100. */
  readonly url: string;
  readonly port: number;
  /** PIDs of the processes now running (for tests and operators). */
  pids(): number[];
  /** A node's routing-relevant state changed (the fleet's onDirty). */
  markDirty(nodeId: string): void;
  /** A manifest was set or deleted (the manifest registry's onChange): sent with the next tick. */
  manifestsChanged(): void;
  close(): Promise<void>;
}

interface Slot {
  child: ChildProcess;
  ready: boolean;
}

/** Plain data of a node (the fleet's adapters are getters, which IPC's JSON would drop). */
function wireNode(n: GatewayNode): GatewayNode {
  return { nodeId: n.nodeId, url: n.url, grpcAddress: n.grpcAddress, health: n.health, nodeState: n.nodeState, models: n.models, load: n.load, labels: n.labels, gpus: n.gpus };
}

export async function startGatewayProcesses(opts: GatewayProcessesOptions, deps: GatewayProcessesDeps): Promise<GatewayProcesses> {
  const { log } = deps;
  const { rng: _rng, ...wireOptions } = deps.gateway;
  const options: WireGatewayOptions = wireOptions;
  const clients = Object.keys(deps.gateway.clientTokens ?? {});
  const slots: Slot[] = [];
  let closing = false;
  let turn = 0;
  const dirty = new Set<string>();
  let modelsChanged = false;
  let lastRefusals = '{}';
  let manifestsDirty = false;

  const post = (slot: Slot, m: ToGatewayProcess) => {
    if (slot.child.connected) slot.child.send(m);
  };
  const broadcast = (m: ToGatewayProcess) => {
    for (const s of slots) if (s.ready) post(s, m);
  };
  const refusals = () => {
    const out: Record<string, string> = {};
    for (const c of clients) {
      const why = deps.hooks.admitClient?.(c);
      if (why) out[c] = why;
    }
    return out;
  };

  const onMessage = (slot: Slot, m: FromGatewayProcess) => {
    if (m.t === 'ready') {
      // Everything it needs before its first socket: the whole fleet, budgets, manifests.
      const nodes = deps.fleet.nodes();
      post(slot, { t: 'nodes', upsert: nodes.map(wireNode), modelsChanged: true });
      post(slot, { t: 'refusals', byClient: JSON.parse(lastRefusals) as Record<string, string> });
      post(slot, { t: 'manifests', byModel: deps.manifests() });
      slot.ready = true;
      log.info({ pid: slot.child.pid }, 'gateway process ready');
    } else if (m.t === 'routed') {
      for (const r of m.batch) {
        deps.hooks.onRouted?.({ ...r, nodeHeaders: r.computeUs !== undefined ? { [COMPUTE_TIME_HEADER]: r.computeUs } : undefined });
      }
    } else if (m.t === 'command') {
      void deps.fleet.sendCommand(m.nodeId, m.command, m.options).then(
        (outcome) => post(slot, { t: 'command_result', id: m.id, outcome }),
        (err: Error) => post(slot, { t: 'command_result', id: m.id, outcome: { id: String(m.id), ok: false, code: 'internal', error: err.message } }),
      );
    }
  };

  const spawn = (): Slot => {
    const child = fork(WORKER_MAIN, [], { serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
    const slot: Slot = { child, ready: false };
    child.on('message', (m: FromGatewayProcess) => onMessage(slot, m));
    child.once('exit', (code, signal) => {
      slot.ready = false;
      const i = slots.indexOf(slot);
      if (closing || i < 0) return;
      log.warn({ pid: child.pid, code, signal }, `gateway process exited; a new one starts in ${RESTART_MS} ms`);
      setTimeout(() => {
        if (!closing) slots[i] = spawn();
      }, RESTART_MS).unref();
    });
    child.send({ t: 'init', adminToken: deps.adminToken, options, logLevel: opts.logLevel } satisfies ToGatewayProcess);
    return slot;
  };

  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    for (let k = 0; k < slots.length; k++) {
      const slot = slots[(turn + k) % slots.length]!;
      if (!slot.ready || !slot.child.connected) continue;
      turn = (turn + k + 1) % slots.length;
      slot.child.send({ t: 'socket' } satisfies ToGatewayProcess, socket);
      return;
    }
    socket.destroy(); // no process ready (all restarting): the client reconnects
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  server.on('error', (err) => log.error({ err: err.message }, 'gateway port: accepting a connection failed'));
  const addr = server.address() as net.AddressInfo;

  const unsubscribe = deps.fleet.onModelsChanged((nodeId) => {
    modelsChanged = true;
    if (nodeId) dirty.add(nodeId);
  });
  const tick = setInterval(() => {
    if (dirty.size > 0 || modelsChanged) {
      // Every registration reports a model change for its node, so a new node is always dirty;
      // the registry never drops a node (Gone ones stay listed), so nothing is ever removed.
      const upsert: GatewayNode[] = deps.fleet.nodes().filter((n) => dirty.has(n.nodeId)).map(wireNode);
      broadcast({ t: 'nodes', upsert, modelsChanged });
      dirty.clear();
      modelsChanged = false;
    }
    const r = JSON.stringify(refusals());
    if (r !== lastRefusals) {
      lastRefusals = r;
      broadcast({ t: 'refusals', byClient: JSON.parse(r) as Record<string, string> });
    }
    if (manifestsDirty) {
      manifestsDirty = false;
      broadcast({ t: 'manifests', byModel: deps.manifests() });
    }
  }, BROADCAST_MS);
  tick.unref();
  lastRefusals = JSON.stringify(refusals());
  for (let i = 0; i < opts.count; i++) slots.push(spawn());

  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${addr.port}`;
  log.info({ url, processes: opts.count }, 'gateway processes listening');
  return {
    url,
    port: addr.port,
    pids: () => slots.filter((s) => s.child.exitCode === null && s.child.signalCode === null).map((s) => s.child.pid!),
    markDirty: (id) => dirty.add(id),
    manifestsChanged: () => {
      manifestsDirty = true;
    },
    close: async () => {
      closing = true;
      clearInterval(tick);
      unsubscribe();
      // Stop accepting; do not wait for close's callback: the sockets handed to the processes
      // still count as this server's connections until their clients hang up.
      server.close();
      await Promise.all(slots.map((s) => new Promise<void>((resolve) => {
        if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
        const kill = setTimeout(() => s.child.kill('SIGKILL'), 6_000);
        s.child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        s.child.disconnect(); // the process finishes what it has in flight, then exits
      })));
    },
  };
}
