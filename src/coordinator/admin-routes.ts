/**
 * The coordinator's admin HTTP API (admin token): the fleet (GET /nodes, GET /nodes/{id}) and
 * commands (POST /nodes/{id}/commands). The gateway's inference routes live in gateway/.
 */
import type { FastifyInstance } from 'fastify';
import type { AuditRow } from './audit/store.js';
import { CommandRefused, type CommandOutcome, type NodeDetail, type NodeView } from './fleet-types.js';
import { CommandSchema, formatIssues, type Command } from './protocol.js';

export interface AdminApi {
  audit(filter: { nodeId?: string; since?: number; limit?: number }): AuditRow[];
  nodes(): NodeView[];
  node(nodeId: string): NodeDetail | undefined;
  sendCommand(nodeId: string, command: Command, options: { timeoutMs?: number; identity?: string }): Promise<CommandOutcome>;
}

export function registerAdminRoutes(app: FastifyInstance, api: AdminApi): void {
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/nodes', async () => ({ nodes: api.nodes() }));
  app.get<{ Params: { id: string } }>('/nodes/:id', async (req, reply) => {
    const node = api.node(req.params.id);
    if (!node) return reply.code(404).send({ error: `unknown node '${req.params.id}'` });
    return node;
  });
  app.get<{ Querystring: { node?: string; since?: string; limit?: string } }>('/audit', async (req, reply) => {
    const { node, since, limit } = req.query;
    let sinceMs: number | undefined;
    if (since !== undefined) {
      sinceMs = /^\d+$/.test(since) ? Number(since) : Date.parse(since);
      if (!Number.isFinite(sinceMs)) return reply.code(400).send({ error: `since must be an ISO 8601 time or epoch milliseconds, got '${since.slice(0, 40)}'` });
    }
    const n = limit === undefined ? 1000 : Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) return reply.code(400).send({ error: 'limit must be an integer between 1 and 100000' });
    return { entries: api.audit({ ...(node ? { nodeId: node } : {}), ...(sinceMs !== undefined ? { since: sinceMs } : {}), limit: n }) };
  });
  app.post<{ Params: { id: string }; Querystring: { timeoutMs?: string } }>('/nodes/:id/commands', async (req, reply) => {
    let timeoutMs: number | undefined;
    if (req.query.timeoutMs !== undefined) {
      timeoutMs = Number(req.query.timeoutMs);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 3_600_000) {
        return reply.code(400).send({ error: 'timeoutMs must be an integer number of milliseconds between 1 and 3600000' });
      }
    }
    const parsed = CommandSchema.safeParse(req.body);
    if (!parsed.success) {
      return reply.code(400).send({ error: `invalid command: ${formatIssues(parsed.error)} (body: {"type": "load_model"|"unload_model"|"cordon"|"uncordon"|"drain"|"ping", "model"?: name})` });
    }
    try {
      const outcome = await api.sendCommand(req.params.id, parsed.data, { ...(timeoutMs === undefined ? {} : { timeoutMs }), identity: 'admin' });
      const { timedOut, ...body } = outcome;
      return reply.code(timedOut ? 504 : 200).send(body);
    } catch (err) {
      if (err instanceof CommandRefused) return reply.code(err.status).send({ error: err.message });
      throw err;
    }
  });
}
