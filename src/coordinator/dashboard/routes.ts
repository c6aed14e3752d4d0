/**
 * GET / on the coordinator: the fleet dashboard. A static page (no build step) served with
 * @fastify/static from ./public, uPlot from its npm package, and live data from GET /events
 * (Server-Sent Events, admin token). The page itself holds no data, so it is served without a
 * token; it asks for the admin token and sends it with every data request and command.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { PACKAGE_ROOT } from '../../util/package-root.js';
import type { LiveFeed } from './live-feed.js';

/** URL paths served without the admin token (static files only). */
export function isDashboardAsset(url: string): boolean {
  return url === '/' || url.startsWith('/dashboard/') || url.startsWith('/?');
}

function packageRoot(): string {
  if (PACKAGE_ROOT === undefined) throw new Error('dashboard: package root not found');
  return PACKAGE_ROOT;
}

export async function registerDashboard(app: FastifyInstance, feed: LiveFeed): Promise<void> {
  const publicDir = path.join(packageRoot(), 'src/coordinator/dashboard/public');
  const uplotDir = path.dirname(createRequire(import.meta.url).resolve('uplot'));
  await app.register(fastifyStatic, { root: publicDir, prefix: '/dashboard/', index: false, cacheControl: false });
  await app.register(fastifyStatic, { root: uplotDir, prefix: '/dashboard/uplot/', decorateReply: false, allowedPath: (p) => /^\/uPlot\.(iife\.min\.js|min\.css)$/.test(p) });
  app.get('/', (_req, reply) => reply.header('cache-control', 'no-store').sendFile('index.html'));
  app.get('/events', (req, reply) => {
    reply.hijack();
    feed.subscribe(reply.raw);
    req.raw.socket.setTimeout(0);
  });
}
