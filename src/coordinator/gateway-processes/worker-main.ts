/**
 * One gateway process (--gateway-processes N): the gateway's routes (gateway/gateway.ts, the
 * same code as in the coordinator) on its own event loop. The primary accepts the connections
 * of the gateway port and hands each socket to a process in turn; a process answers every
 * request on its sockets by itself, with its own router (outstanding counts, breakers, latency
 * estimates), from the node snapshots the primary sends. Commands (load on demand) go through
 * the primary; each answered request is reported to it in batches for cost accounting; budgets
 * come from it as a list of refused clients. It loads no SQLite and holds no agent socket.
 */
import type { Socket } from 'node:net';
import Fastify from 'fastify';
import { createLogger } from '../../util/logger.js';
import type { Manifest } from '../../sources/manifest.js';
import { COMPUTE_TIME_HEADER } from '../cost/ledger.js';
import { createGateway } from '../gateway/gateway.js';
import type { FromGatewayProcess, ToGatewayProcess, WireRouted } from './messages.js';
import { installJsonErrors } from '../json-errors.js';
import { RemoteFleet } from './remote-fleet.js';

process.env.ORT_DISABLE_TELEMETRY = '1'; // nothing here loads onnxruntime; kept off all the same

/** Reports to the primary leave at most this often (ms), or once this many are waiting. */
const ROUTED_FLUSH_MS = 50;
const ROUTED_BATCH = 256;

const send = (m: FromGatewayProcess) => {
  if (process.connected) process.send!(m);
};
const fleet = new RemoteFleet(send);
let refusals: Readonly<Record<string, string>> = {};
let manifests: Readonly<Record<string, Manifest>> = {};
let routed: WireRouted[] = [];
let flushTimer: NodeJS.Timeout | undefined;
const flush = () => {
  flushTimer = undefined;
  if (routed.length === 0) return;
  send({ t: 'routed', batch: routed });
  routed = [];
};

let app: ReturnType<typeof Fastify> | undefined;
const early: Socket[] = [];
/** Requests being answered now: a stop waits for them (up to STOP_GRACE_MS). */
let inFlight = 0;
const STOP_GRACE_MS = 5_000;

async function init(m: Extract<ToGatewayProcess, { t: 'init' }>): Promise<void> {
  const log = createLogger(m.logLevel).child({ component: 'gateway-process', pid: process.pid });
  const gateway = createGateway(fleet, m.adminToken, m.options, log, undefined, {
    admitClient: (client) => refusals[client],
    manifestOf: (model) => manifests[model],
    onRouted: (r) => {
      const us = r.nodeHeaders?.[COMPUTE_TIME_HEADER];
      routed.push({
        kind: r.kind, identity: r.identity, model: r.model, version: r.version, nodeId: r.nodeId, status: r.status,
        attempts: r.attempts, computeUs: Array.isArray(us) ? us[0] : us, latencyMs: r.latencyMs,
      });
      if (routed.length >= ROUTED_BATCH) flush();
      else flushTimer ??= setTimeout(flush, ROUTED_FLUSH_MS);
    },
  });
  const a = Fastify({ logger: false });
  installJsonErrors(a, log, 'gateway process', " on the gateway port (it serves the V2 inference routes; the admin API and dashboard are on the coordinator's main port)");
  await gateway.register(a);
  await a.ready();
  a.server.on('request', (_req, res) => {
    inFlight++;
    res.once('close', () => inFlight--);
  });
  app = a;
  for (const s of early.splice(0)) accept(s);
  send({ t: 'ready' });
}

function accept(socket: Socket): void {
  if (!app) {
    early.push(socket);
    return;
  }
  app.server.emit('connection', socket);
  socket.resume();
}

process.on('message', (m: ToGatewayProcess, handle?: unknown) => {
  switch (m.t) {
    case 'init':
      void init(m).catch((err: Error) => {
        console.error(`gateway process: ${err.message}`);
        process.exit(1);
      });
      break;
    case 'socket':
      if (handle) accept(handle as Socket);
      break;
    case 'nodes':
      fleet.apply(m.upsert, m.modelsChanged);
      break;
    case 'refusals':
      refusals = m.byClient;
      break;
    case 'manifests':
      manifests = m.byModel;
      break;
    case 'command_result':
      fleet.commandResult(m.id, m.outcome);
      break;
  }
});

/**
 * The primary went away or asked us to stop: no new connections come (the primary stopped
 * accepting); answer the requests in flight (up to STOP_GRACE_MS), then exit.
 */
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  const started = Date.now();
  const finish = () => {
    if (inFlight > 0 && Date.now() - started < STOP_GRACE_MS) return void setTimeout(finish, 10);
    if (flushTimer) clearTimeout(flushTimer);
    flush();
    process.exit(0);
  };
  finish();
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
