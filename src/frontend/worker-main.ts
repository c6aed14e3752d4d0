/**
 * Entry point of one HTTP front-end process (forked by pool.ts with node:cluster). It asks
 * the primary for the config, serves HTTP on the shared port (frontend-app.ts) and obeys the
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
});

link.post({ t: 'hello' });
const { config, index, state, reason } = await configured;
node.state = state;
node.reason = reason;
const logger = createLogger(config.logLevel).child({ frontend: index });
app = await buildFrontendApp(config, node, link, logger);
const url = await app.listen({ host: config.host, port: config.port });
link.post({ t: 'listening', url });
