/**
 * The routing gateway: one client endpoint for the fleet. It serves the V2 inference surface
 * (and the /v1 predict route) on the coordinator's HTTP port and forwards each request to a
 * node that has the model READY, chosen by power-of-two-choices on load. A node that fails
 * before answering (connection error or reset, 5xx, 503 draining) is retried once on another
 * candidate; a 4xx is final. No node has the model: one that lists it is asked to load it (or,
 * with a manifest known, the best node with room is asked to pull it by URI; load-on-demand.ts),
 * and the request waits up to its deadline, then gets a 503 with the reason. Bodies stream both ways; only the first
 * `retryBufferBytes` of a request are kept, so that it can be sent again.
 *
 * Auth: the inference routes take client tokens (name=token), never the admin token; the token
 * sent to nodes (the agents' --api-token) stays in the coordinator.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Manifest } from '../../sources/manifest.js';
import { systemClock, type Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { BodyTooLarge, readBody, v2TimeoutParameter, type GatewayBody } from './body.js';
import { ClientTokens } from './client-tokens.js';
import type { GatewayFleet } from './fleet.js';
import { createDispatcher, DROP_RESPONSE, forward, type Attempt } from './forward.js';
import { OnDemandLoader } from './load-on-demand.js';
import { admit, classifyAttempt, DEFAULT_BREAKER, resolveDeadlineMs, type BreakerOptions } from './policy.js';
import { Router, type RoutedCandidate, type RoutingView } from './router.js';

export interface GatewayOptions {
  /** Client name → token, for the inference routes. Without any, those routes answer 401. */
  readonly clientTokens?: Readonly<Record<string, string>>;
  /** Sent to the agents as `Authorization: Bearer` (their --api-token), when they have one. */
  readonly nodeToken?: string;
  /** Deadline of a request that states none, ms. Default 30000. */
  readonly requestTimeoutMs?: number;
  /** Per-model default deadlines, ms (a request's own timeout wins). */
  readonly modelTimeoutsMs?: Readonly<Record<string, number>>;
  /** Request bytes kept in memory so a failed attempt can be retried. Default 1 MiB. */
  readonly retryBufferBytes?: number;
  /** Largest request body, bytes. Default 256 MiB. */
  readonly maxBodyBytes?: number;
  readonly breaker?: Partial<BreakerOptions>;
  /** Wait for a load_model sent on demand (the request's own deadline is usually shorter). Default 120000. */
  readonly loadTimeoutMs?: number;
  readonly rng?: () => number;
}

/** One request the gateway answered, for cost accounting and metrics. */
export interface RoutedRequest {
  /** infer / predict: inference; metadata: model metadata GETs (no compute). */
  readonly kind: Kind;
  readonly identity: string;
  readonly model: string;
  readonly version: string | undefined;
  readonly nodeId: string | undefined;
  readonly status: number;
  readonly attempts: number;
  /** Response headers of the node that answered (compute time lives there). */
  readonly nodeHeaders: IncomingHttpHeaders | undefined;
  /** From the request's arrival to the answer's head, ms. */
  readonly latencyMs: number;
}

export interface GatewayHooks {
  /** Before forwarding: a string refuses the request with 429 and that reason (budgets). */
  admitClient?(identity: string): string | undefined;
  /** Once the answer's head is sent to the client. */
  onRouted?(r: RoutedRequest): void;
  /** The manifest load on demand pulls a model by when no node has it (manifests/registry.ts). */
  manifestOf?(model: string): Manifest | undefined;
}

export interface Gateway {
  readonly router: Router;
  /** Shared with the gRPC front door (grpc-gateway/), so both doors load a model once. */
  readonly loader: OnDemandLoader;
  readonly tokens: ClientTokens;
  routing(nodeId: string): RoutingView;
  /** Register the routes on the coordinator's fastify app (in their own encapsulated scope). */
  register(app: FastifyInstance): Promise<void>;
  close(): Promise<void>;
}

export type Kind = 'infer' | 'predict' | 'metadata';

/** Answers up to this size (with a Content-Length) are relayed as one buffer, larger ones stream. */
export const SMALL_RESPONSE_BYTES = 64 * 1024;

export function createGateway(fleet: GatewayFleet, adminToken: string, options: GatewayOptions, log: Logger, clock: Clock = systemClock, hooks: GatewayHooks = {}): Gateway {
  const tokens = new ClientTokens(options.clientTokens ?? {}, adminToken);
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const retryBufferBytes = options.retryBufferBytes ?? 1024 * 1024;
  const maxBodyBytes = options.maxBodyBytes ?? 256 * 1024 * 1024;
  const router = new Router(fleet, clock, { ...DEFAULT_BREAKER, ...options.breaker }, options.rng);
  const loader = new OnDemandLoader(fleet, router, options.loadTimeoutMs ?? 120_000, clock, (m) => hooks.manifestOf?.(m));
  const dispatcher = createDispatcher();
  if (tokens.size === 0) log.warn('gateway: no client tokens configured (--client-tokens); the inference routes answer 401');

  const fail = (reply: FastifyReply, status: number, error: string, extra: Record<string, unknown> = {}) =>
    reply.code(status).header('content-type', 'application/json; charset=utf-8').send({ error, ...extra });

  const identify = (req: FastifyRequest, reply: FastifyReply): string | undefined => {
    const who = tokens.identify(req.headers.authorization);
    if (who === undefined) {
      void fail(reply.header('www-authenticate', 'Bearer'), 401, tokens.size === 0
        ? 'this gateway has no client tokens configured (coordinator --client-tokens name=token)'
        : 'missing or invalid client token (Authorization: Bearer <client token>; the admin token is not accepted here)');
    }
    return who;
  };

  /**
   * Send the node's answer to the client; counts end when the body does. A body that states a
   * Content-Length of at most SMALL_RESPONSE_BYTES is read whole and written with one writeHead
   * + end on the raw response (hijacked: fastify's reply pipeline has nothing to do for bytes
   * relayed as they are, and it is a measurable share of the gateway's CPU per request);
   * anything larger or of unknown length streams through reply.send.
   */
  const relay = async (reply: FastifyReply, a: Extract<Attempt, { response: unknown }>, nodeId: string, attempts: number, end: () => void) => {
    const res = a.response;
    const headers = res.headers;
    const out: Record<string, string | string[]> = {};
    for (const k in headers) {
      const v = headers[k];
      if (v !== undefined && !DROP_RESPONSE.has(k)) out[k] = v;
    }
    out['x-gateway-node'] = nodeId;
    out['x-gateway-attempts'] = String(attempts);
    const length = Number(headers['content-length']);
    if (length >= 0 && length <= SMALL_RESPONSE_BYTES) {
      let bytes: Buffer;
      try {
        bytes = Buffer.from(await res.body.arrayBuffer());
      } catch {
        return reply.code(502).send({ error: `node ${nodeId} failed while sending its answer` });
      } finally {
        end();
      }
      out['content-length'] = String(bytes.length);
      reply.hijack();
      reply.raw.writeHead(res.statusCode, out);
      reply.raw.end(bytes);
      return reply;
    }
    const body = res.body as unknown as Readable;
    body.once('close', end);
    body.once('end', end);
    return reply.code(res.statusCode).headers(out).send(body);
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply, kind: Kind, model: string, version: string | undefined) => {
    const started = clock.now();
    const identity = identify(req, reply);
    if (identity === undefined) return reply;
    const refusal = hooks.admitClient?.(identity);
    if (refusal) return fail(reply, 429, refusal);

    // Read by the content-type parser below (before this handler runs); GETs have none.
    const body: GatewayBody = (req.body as GatewayBody | undefined) ?? { kind: 'none' };
    const headerLength = Number(req.headers['inference-header-content-length']);
    const deadline = resolveDeadlineMs({
      headerMs: req.headers['x-timeout-ms'] as string | undefined,
      parameterUs: kind === 'infer' ? v2TimeoutParameter(body, Number.isFinite(headerLength) ? headerLength : undefined) : undefined,
      modelDefaultMs: options.modelTimeoutsMs?.[model],
      defaultMs: requestTimeoutMs,
    });
    if (!deadline.ok) return fail(reply, 400, deadline.error);
    const deadlineAt = started + deadline.ms;
    const remaining = () => deadlineAt - clock.now();
    const done = (status: number, nodeId: string | undefined, attempts: number, nodeHeaders?: IncomingHttpHeaders) =>
      hooks.onRouted?.({ kind, identity, model, version, nodeId, status, attempts, nodeHeaders, latencyMs: clock.now() - started });

    const tried = new Set<string>();
    let lastError = '';
    let attempts = 0;
    let loadedOn: string | undefined;
    while (attempts < 2) {
      let candidates = router.candidates(model, version, tried);
      if (candidates.length === 0 && attempts === 0 && loadedOn === undefined) {
        const loaded = await loader.load(model, remaining(), identity);
        if (!loaded.ok) {
          done(loaded.status, undefined, attempts);
          return fail(reply, loaded.status, loaded.error);
        }
        loadedOn = loaded.nodeId;
        candidates = router.candidates(model, version, tried);
        // The command result can arrive before the registry shows the model READY.
        if (candidates.length === 0) {
          const node = fleet.nodes().find((n) => n.nodeId === loaded.nodeId);
          if (node) candidates = [{ nodeId: node.nodeId, node, load: router.loadOf(node, model, version) }];
        }
      }
      const target: RoutedCandidate | undefined = router.pick(candidates);
      if (!target) break;
      const verdict = admit(remaining(), target.load, router.latencyEstimate(target.nodeId, model));
      if (verdict === 'expired') {
        done(504, undefined, attempts);
        return fail(reply, 504, `the request's deadline (${Math.round(deadline.ms)} ms) passed before a node could take it${lastError ? `; last failure: ${lastError}` : ''}`);
      }
      if (verdict === 'overloaded') {
        done(429, undefined, attempts);
        return fail(reply, 429, `no node can answer '${model}' within the request's deadline (${Math.round(remaining())} ms left; node ${target.nodeId} has ${target.load} requests ahead at about ${Math.round(router.latencyEstimate(target.nodeId, model)!)} ms each)`);
      }
      attempts++;
      tried.add(target.nodeId);
      const end = router.begin(target.nodeId);
      const path = req.url;
      const a = await forward(dispatcher, target.node.url, {
        method: req.method as 'GET' | 'POST', path, headers: req.headers, body, timeoutMs: remaining(),
        ...(options.nodeToken ? { nodeToken: options.nodeToken } : {}),
      }, () => clock.now());
      const verdictOf = classifyAttempt(a.outcome);
      router.record(target.nodeId, verdictOf === 'final');
      if ('response' in a) {
        router.observeLatency(target.nodeId, model, a.elapsedMs);
        const canRetry = verdictOf === 'retry' && attempts < 2 && body.kind !== 'stream' && router.candidates(model, version, tried).length > 0;
        if (!canRetry) {
          done(a.response.statusCode, target.nodeId, attempts, a.response.headers);
          return relay(reply, a, target.nodeId, attempts, end);
        }
        lastError = `node ${target.nodeId} answered ${a.response.statusCode}`;
        await a.response.body.dump().catch(() => undefined);
        end();
        log.info({ nodeId: target.nodeId, model, status: a.response.statusCode }, 'gateway: retrying on another node');
        continue;
      }
      end();
      if (a.outcome.kind === 'body_too_large') {
        done(413, target.nodeId, attempts);
        return fail(reply, 413, a.error);
      }
      lastError = `node ${target.nodeId}: ${a.error}`;
      if (verdictOf === 'deadline') {
        done(504, target.nodeId, attempts);
        return fail(reply, 504, `the request's deadline (${Math.round(deadline.ms)} ms) passed: ${lastError}`);
      }
      if (body.kind === 'stream') {
        done(502, target.nodeId, attempts);
        return fail(reply, 502, `${lastError} (a body larger than ${retryBufferBytes} bytes is not retried)`);
      }
      log.info({ nodeId: target.nodeId, model, err: a.error }, 'gateway: node failed; retrying on another node');
    }
    const status = attempts > 0 ? 502 : 503;
    done(status, undefined, attempts);
    return fail(reply, status, attempts > 0
      ? `every node tried failed: ${lastError}`
      : `no node can take '${model}'${version ? ` version ${version}` : ''} now (none Ready with it READY, or all out of rotation)`);
  };

  /** Model metadata and readiness: forwarded to a node with the model READY (no retry needed: GET). */
  const readyOf = (model: string, version: string | undefined) => router.candidates(model, version).length > 0;

  const register = async (app: FastifyInstance) => {
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      // Every request body, whatever its type, is read here into a GatewayBody (body.ts): kept
      // whole up to retryBufferBytes, streamed on beyond; errors reach the app's error handler
      // as {"error": …} with the status set here.
      scope.addContentTypeParser('*', (req, payload, done) => {
        // A stated length past the maximum is refused before a byte is read.
        if (Number(req.headers['content-length']) > maxBodyBytes) return done(new BodyTooLarge(maxBodyBytes), undefined);
        readBody(payload, retryBufferBytes, maxBodyBytes, (err, body) => {
          if (!err) return done(null, body);
          done(err instanceof BodyTooLarge ? err : Object.assign(new Error('could not read the request body (the client went away?)'), { statusCode: 400 }), undefined);
        });
      });
      for (const path of ['/v2/models/:model/infer', '/v2/models/:model/versions/:version/infer']) {
        scope.post<{ Params: { model: string; version?: string } }>(path, (req, reply) => handle(req, reply, 'infer', req.params.model, req.params.version));
      }
      scope.post<{ Params: { model: string } }>('/v1/models/:model/predict', (req, reply) => handle(req, reply, 'predict', req.params.model, undefined));
      for (const path of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
        scope.get<{ Params: { model: string; version?: string } }>(path, (req, reply) => handle(req, reply, 'metadata', req.params.model, req.params.version));
      }
      for (const path of ['/v2/models/:model/ready', '/v2/models/:model/versions/:version/ready']) {
        scope.get<{ Params: { model: string; version?: string } }>(path, async (req, reply) => {
          if (identify(req, reply) === undefined) return reply;
          const ready = readyOf(req.params.model, req.params.version);
          return reply.code(ready ? 200 : 400).send({ name: req.params.model, ...(req.params.version ? { version: req.params.version } : {}), ready });
        });
      }
      scope.get('/v2/health/live', async () => ({ live: true }));
      scope.get('/v2/health/ready', async (_req, reply) => {
        const nodes = fleet.nodes().filter((n) => router.takesWork(n)).length;
        return reply.code(nodes > 0 ? 200 : 503).send({ ready: nodes > 0, nodes });
      });
      scope.get('/v2', async () => ({ name: 'gpu-node-agent-gateway', extensions: ['binary_tensor_data'] }));
    });
  };

  return {
    router,
    loader,
    tokens,
    routing: (nodeId) => router.view(nodeId),
    register,
    close: async () => {
      await dispatcher.close().catch(() => undefined);
    },
  };
}
