/**
 * The coordinator's HTTP surface on one fastify app: the admin token check for every route but
 * the health probe, the dashboard's assets and the gateway's inference routes (which check
 * client tokens themselves); errors as `{"error": …}`; and the routes of each part: admin API
 * (admin-routes.ts), manifests (manifests/routes.ts), cost reports, the gateway (gateway/) and
 * the dashboard (dashboard/). The agents' WebSocket upgrade is handed to agent-sockets.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from '../util/logger.js';
import { registerAdminRoutes, type AdminApi } from './admin-routes.js';
import { tokenMatches } from './auth.js';
import { installJsonErrors } from './json-errors.js';
import type { CostLedger } from './cost/ledger.js';
import type { LiveFeed } from './dashboard/live-feed.js';
import { isDashboardAsset, registerDashboard } from './dashboard/routes.js';
import type { Gateway } from './gateway/gateway.js';
import type { ManifestRegistry } from './manifests/registry.js';
import { registerManifestRoutes } from './manifests/routes.js';

export interface HttpAppParts {
  readonly token: string;
  readonly log: Logger;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly admin: AdminApi;
  readonly ledger: CostLedger;
  readonly manifests: ManifestRegistry;
  readonly gateway: Gateway;
  readonly feed: LiveFeed;
}

/** True for the routes that do not take the admin token (they check their own, or none). */
function openRoute(url: string): boolean {
  if (url === '/healthz' || isDashboardAsset(url)) return true;
  // The gateway's inference routes check client tokens themselves (the admin token is refused there).
  return url.startsWith('/v2/') || url === '/v2' || url.startsWith('/v1/');
}

export async function buildHttpApp(parts: HttpAppParts): Promise<FastifyInstance> {
  const { token, log, ledger } = parts;
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  app.server.on('upgrade', parts.onUpgrade);

  const unauthorized = (reply: FastifyReply) =>
    reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or invalid bearer token (Authorization: Bearer <token>)' });
  // A callback hook, not an async one: it runs on every gateway request too, where a promise
  // per request is measurable CPU (bench/gateway-cpu.mjs).
  app.addHook('onRequest', (req, reply, done) => {
    if (openRoute(req.url) || tokenMatches(req.headers.authorization, token)) return done();
    void unauthorized(reply);
  });
  installJsonErrors(app, log, 'coordinator');

  app.get('/costs', async () => ledger.report());
  app.get('/costs.csv', async (_req, reply) => reply.type('text/csv; charset=utf-8').send(ledger.csv()));
  app.get('/metrics', async (_req, reply) => reply.type(ledger.registry.contentType).send(await ledger.registry.metrics()));
  registerAdminRoutes(app, parts.admin);
  registerManifestRoutes(app, parts.manifests);
  await parts.gateway.register(app);
  await registerDashboard(app, parts.feed);
  return app;
}
