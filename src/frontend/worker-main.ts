/**
 * Entry point of one HTTP front-end process (forked by pool.ts with node:cluster). It asks
 * the primary for the config, serves HTTP on the connections the primary hands it
 * (frontend-app.ts) and obeys the
 * primary's state, drain and close messages. Signals are the primary's business: a SIGTERM or
 * SIGINT sent to the whole process group is ignored here, and the primary drains everyone.
 */
import './../util/ort-env.js'; // ORT_DISABLE_TELEMETRY=1, should anything ever load onnxruntime here
import { drainControlOf } from '../http/shutdown.js';
import type { NodeStatus } from '../inference/context.js';
import { createLogger } from '../util/logger.js';
import { logSink } from '../util/log-sink.js';
import type { PrimaryToFrontend } from './messages.js';
import { buildFrontendApp } from './frontend-app.js';
import { PrimaryLink } from './primary-link.js';

process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});

const node: NodeStatus = { state: 'ready', reason: '' };
let started: ((m: Extract<PrimaryToFrontend, { t: 'config' }>) => void) | undefined;
const configured = new Promise<Extract<PrimaryToFrontend, { t: 'config' }>>((resolve) => (started = resolve));
let app: Awaited<ReturnType<typeof buildFrontendApp>> | undefined;
let openConnections = 0;
/** Last new connection, request or response (epoch ms): the primary's close waits for quiet. */
let lastTraffic = Date.now();
let maxConnections = 0;

const link = new PrimaryLink((m) => {
  switch (m.t) {
    case 'config':
      started?.(m);
      return;
    case 'state':
      node.state = m.state;
      node.reason = m.reason;
      return;
    case 'drain':
      node.state = 'draining';
      node.reason = m.reason;
      void (app ? drainControlOf(app).whenNoneInFlight() : Promise.resolve()).then(() => link.post({ t: 'ack', id: m.id }));
      return;
    case 'idle':
      link.post({ t: 'ack', id: m.id, idleMs: Date.now() - lastTraffic });
      return;
    case 'close':
      void (async () => {
        if (app) {
          await drainControlOf(app).closeConnections(m.deadline);
          await app.close();
        }
        link.post({ t: 'ack', id: m.id });
        await logSink().flush(1000);
        process.exit(0);
      })();
      return;
    default:
      return;
  }
}, (socket) => {
  // --max-connections holds per front end (the primary accepts them all and spreads them).
  if (!app || openConnections >= maxConnections) {
    socket.destroy();
    return;
  }
  openConnections++;
  lastTraffic = Date.now();
  socket.once('close', () => openConnections--);
  app.server.emit('connection', socket);
  socket.resume();
});

link.post({ t: 'hello' });
const { config, index, state, reason } = await configured;
node.state = state;
node.reason = reason;
const logger = createLogger(config.logLevel).child({ frontend: index });
maxConnections = config.maxConnections;
app = await buildFrontendApp(config, node, link, logger);
await app.ready(); // it never listens: connections come from the primary
// Node starts the checks of --request-timeout-ms / --headers-timeout-ms on 'listening'.
app.server.emit('listening');
app.server.on('request', (_req: unknown, res: import('node:http').ServerResponse) => {
  lastTraffic = Date.now();
  res.once('close', () => (lastTraffic = Date.now()));
});
link.post({ t: 'listening' });
