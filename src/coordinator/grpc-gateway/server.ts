/**
 * The gateway's gRPC front door: Triton's `inference.GRPCInferenceService` on the coordinator's
 * `--grpc-port`, routed to the nodes' own gRPC ports (register.grpcAddress) with the HTTP
 * door's policy: the same candidates and power-of-two-choices (gateway/router.ts), the same
 * load on demand (shared loader: one load per model for both doors), one retry on another node
 * after UNAVAILABLE or a connection error, the same circuit breaker, deadlines, client tokens
 * and cost accounting (gateway hooks).
 *
 * Contracts:
 * - Pass-through: every method is registered with identity serializers, so a ModelInferRequest
 *   arrives as its serialized bytes and is sent on to the node unchanged; only the model name,
 *   version and `timeout` parameter are read from it (wire.ts, without decoding tensors). The
 *   node's answer goes back the same way.
 * - Auth: metadata `authorization: Bearer <client token>` on every RPC but ServerLive and
 *   ServerReady (as the agent); the admin token is refused. The client's authorization is never
 *   forwarded; the node token (--node-token) is sent in its place.
 * - Deadline: the first that is set of the metadata `x-timeout-ms`, the request's `timeout`
 *   parameter (µs), the model's default, the gateway default, capped by the call's own gRPC
 *   deadline. Refusals as HTTP's, in gRPC terms: DEADLINE_EXCEEDED (passed), RESOURCE_EXHAUSTED
 *   (the node's queue would outlast it, or a spent budget), UNAVAILABLE (no node can take it).
 * - Answered here: ServerLive, ServerReady (some node takes work), ModelReady (some node has the
 *   model READY), ServerMetadata. Forwarded: ModelInfer, ModelStreamInfer, and the per-model
 *   reads ModelMetadata, ModelConfig and ModelStatistics (which need a model name; statistics
 *   are those of the node that answers, named in x-gateway-node). Every other RPC (repository,
 *   shared memory, trace, log settings) answers UNIMPLEMENTED and says where to go: those are
 *   per-node operations.
 * - ModelStreamInfer: the stream's first message picks the node; every later message goes to
 *   the same node (a stream is one connection; it is not retried once it is open). Each answer
 *   is accounted separately.
 * - Answers carry the metadata `x-gateway-node` and `x-gateway-attempts` (initial metadata on
 *   success, trailers on an error).
 */
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { GatewayFleet } from '../gateway/fleet.js';
import type { GatewayHooks, GatewayOptions } from '../gateway/gateway.js';
import { admit, classifyAttempt, resolveDeadlineMs } from '../gateway/policy.js';
import type { RoutedCandidate } from '../gateway/router.js';
import type { Gateway } from '../gateway/gateway.js';
import { CLIENT_OPTIONS, DROP_METADATA, identity, METHODS, passThroughDefinition, SERVICE } from './definition.js';
import { attemptOutcome, grpcStatusOf, httpStatusOf } from './status.js';
import { computeTimeUs, encodeSimple, routeFields, streamResponseFields, timeoutParameterUs } from './wire.js';
import { COMPUTE_TIME_HEADER } from '../../protocol/compute-time.js';


interface Refusal { code: grpc.status; details: string; metadata?: grpc.Metadata }

export interface GrpcGatewayOptions {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** Largest request message accepted from a client, bytes. Default 256 MiB (the HTTP door's maxBodyBytes). */
  readonly maxMessageBytes?: number;
}

export interface GrpcGateway {
  /** host:port it listens on. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The unary RPCs sent on to a node that has the named model READY. */
type Routed = 'ModelInfer' | 'ModelMetadata' | 'ModelConfig' | 'ModelStatistics';

type Upstream = { code: grpc.status; details: string; response?: Buffer; headers?: grpc.Metadata; trailers?: grpc.Metadata };

export async function startGrpcGateway(
  gateway: Gateway, fleet: GatewayFleet, options: GatewayOptions, hooks: GatewayHooks, log: Logger, clock: Clock, listen: GrpcGatewayOptions,
): Promise<GrpcGateway> {
  const { router, loader, tokens } = gateway;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const clients = new Map<string, grpc.Client>();
  const clientFor = (address: string): grpc.Client => {
    let c = clients.get(address);
    if (!c) {
      c = new grpc.Client(address, grpc.credentials.createInsecure(), CLIENT_OPTIONS);
      clients.set(address, c);
    }
    return c;
  };

  const refusal = (code: grpc.status, details: string, extra?: Record<string, string>): Refusal => {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(extra ?? {})) metadata.set(k, v);
    return { code, details, metadata };
  };

  const first = (md: grpc.Metadata, key: string): string | undefined => {
    const v = md.get(key)[0];
    return v === undefined ? undefined : typeof v === 'string' ? v : v.toString('utf8');
  };

  /** The client's identity, or the refusal to answer with. */
  const identify = (md: grpc.Metadata): string | Refusal => {
    const who = tokens.identify(first(md, 'authorization'));
    if (who !== undefined) return who;
    return refusal(grpc.status.UNAUTHENTICATED, tokens.size === 0
      ? 'this gateway has no client tokens configured (coordinator --client-tokens name=token)'
      : 'missing or invalid client token (metadata authorization: Bearer <client token>; the admin token is not accepted here)');
  };

  /** The client's metadata as the node gets it: no credentials of the client, the node token instead. */
  const nodeMetadata = (md: grpc.Metadata): grpc.Metadata => {
    const out = new grpc.Metadata();
    for (const [k, v] of Object.entries(md.getMap())) if (!DROP_METADATA.has(k) && !k.startsWith(':')) out.set(k, v);
    if (options.nodeToken) out.set('authorization', `Bearer ${options.nodeToken}`);
    return out;
  };

  const grpcCandidates = (model: string, version: string | undefined, tried: ReadonlySet<string>): RoutedCandidate[] =>
    router.candidates(model, version, tried).filter((c) => c.node.grpcAddress !== undefined);

  /** One unary attempt on one node, bytes in and out. */
  const attempt = (address: string, method: string, request: Buffer, md: grpc.Metadata, deadline: number, cancelled: { on(cb: () => void): void }) =>
    new Promise<Upstream>((resolve) => {
      let headers: grpc.Metadata | undefined;
      const call = clientFor(address).makeUnaryRequest(`${SERVICE}${method}`, identity, identity, request, md, { deadline }, (err, res) => {
        if (err) resolve({ code: err.code, details: err.details, trailers: err.metadata, ...(headers ? { headers } : {}) });
        else resolve({ code: grpc.status.OK, details: '', response: res!, ...(headers ? { headers } : {}) });
      });
      call.on('metadata', (m: grpc.Metadata) => (headers = m));
      cancelled.on(() => call.cancel());
    });

  /** What both routed unary RPCs share: candidates, load on demand, admission, one retry. */
  const routeUnary = async (method: Routed, call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
    const started = clock.now();
    const who = identify(call.metadata);
    if (typeof who !== 'string') return callback(who);
    const fields = routeFields(call.request); // field 1 is the model name in all four requests
    if (!fields) return callback(refusal(grpc.status.INVALID_ARGUMENT, `the ${method}Request is not a valid protobuf message`));
    const { model } = fields;
    const version = fields.version || undefined;
    if (!model) return callback(refusal(grpc.status.INVALID_ARGUMENT, method === 'ModelInfer' ? 'the request has no model_name' : 'the request has no model name'));
    const kind = method === 'ModelInfer' ? 'infer' : 'metadata'; // metadata: no compute, not accounted
    const done = (status: number, nodeId: string | undefined, attempts: number, computeUs?: number) =>
      hooks.onRouted?.({ kind, identity: who, model, version, nodeId, status, attempts, nodeHeaders: computeUs !== undefined ? { [COMPUTE_TIME_HEADER]: String(computeUs) } : undefined, latencyMs: clock.now() - started });
    const refuse = (http: number, details: string, nodeId?: string, attempts = 0) => {
      done(http, nodeId, attempts);
      callback(refusal(grpcStatusOf(http), details, nodeId ? { 'x-gateway-node': nodeId, 'x-gateway-attempts': String(attempts) } : undefined));
    };
    if (method === 'ModelInfer') {
      const budget = hooks.admitClient?.(who);
      if (budget) return refuse(429, budget);
    }
    const deadline = resolveDeadlineMs({
      headerMs: first(call.metadata, 'x-timeout-ms'),
      parameterUs: method === 'ModelInfer' ? timeoutParameterUs(call.request) : undefined,
      modelDefaultMs: options.modelTimeoutsMs?.[model],
      defaultMs: requestTimeoutMs,
    });
    if (!deadline.ok) return refuse(400, deadline.error);
    const callDeadline = call.getDeadline();
    const callMs = callDeadline instanceof Date ? callDeadline.getTime() : callDeadline;
    const budgetMs = Math.min(deadline.ms, Number.isFinite(callMs) ? callMs - Date.now() : Infinity);
    const deadlineAt = started + budgetMs;
    const remaining = () => deadlineAt - clock.now();
    let clientGone = false;
    const onCancel: (() => void)[] = [];
    call.on('cancelled', () => {
      clientGone = true;
      for (const f of onCancel) f();
    });
    const cancelled = { on: (f: () => void) => onCancel.push(f) };
    const md = nodeMetadata(call.metadata);

    const tried = new Set<string>();
    let lastError = '';
    let attempts = 0;
    let loaded = false;
    while (attempts < 2 && !clientGone) {
      let candidates = grpcCandidates(model, version, tried);
      if (candidates.length === 0 && attempts === 0 && !loaded && router.candidates(model, version).length === 0) {
        const r = await loader.load(model, remaining(), who);
        if (!r.ok) return refuse(r.status, r.error);
        loaded = true;
        candidates = grpcCandidates(model, version, tried);
        if (candidates.length === 0) {
          const node = fleet.nodes().find((n) => n.nodeId === r.nodeId && n.grpcAddress !== undefined);
          if (node) candidates = [{ nodeId: node.nodeId, node, load: router.loadOf(node, model, version) }];
        }
      }
      const target = router.pick(candidates);
      if (!target) break;
      const verdict = admit(remaining(), target.load, router.latencyEstimate(target.nodeId, model));
      if (verdict === 'expired') return refuse(504, `the request's deadline (${Math.round(budgetMs)} ms) passed before a node could take it${lastError ? `; last failure: ${lastError}` : ''}`);
      if (verdict === 'overloaded') {
        return refuse(429, `no node can answer '${model}' within the request's deadline (${Math.round(remaining())} ms left; node ${target.nodeId} has ${target.load} requests ahead at about ${Math.round(router.latencyEstimate(target.nodeId, model)!)} ms each)`);
      }
      attempts++;
      tried.add(target.nodeId);
      const end = router.begin(target.nodeId);
      const sentAt = clock.now();
      const up = await attempt(target.node.grpcAddress!, method, call.request, md, Date.now() + Math.max(1, remaining()), cancelled);
      end();
      const outcome = attemptOutcome(up.code);
      const verdictOf = classifyAttempt(outcome);
      router.record(target.nodeId, verdictOf === 'final');
      const gatewayMd = { 'x-gateway-node': target.nodeId, 'x-gateway-attempts': String(attempts) };
      const canRetry = verdictOf === 'retry' && attempts < 2 && grpcCandidates(model, version, tried).length > 0;
      // A node's own answer (any status but UNAVAILABLE / DEADLINE_EXCEEDED) goes to the client
      // unless it is an INTERNAL that another node may not repeat.
      if (verdictOf === 'final' || (outcome.kind === 'response' && !canRetry)) {
        router.observeLatency(target.nodeId, model, clock.now() - sentAt);
        if (up.code === grpc.status.OK) {
          const headers = up.headers ?? new grpc.Metadata();
          for (const [k, v] of Object.entries(gatewayMd)) headers.set(k, v);
          const us = Number(first(headers, COMPUTE_TIME_HEADER) ?? (method === 'ModelInfer' ? computeTimeUs(up.response!) : undefined) ?? NaN);
          done(200, target.nodeId, attempts, Number.isFinite(us) ? us : undefined);
          call.sendMetadata(headers);
          return callback(null, up.response!);
        }
        done(httpStatusOf(up.code), target.nodeId, attempts);
        const trailers = up.trailers ?? new grpc.Metadata();
        for (const [k, v] of Object.entries(gatewayMd)) trailers.set(k, v);
        return callback({ code: up.code, details: up.details, metadata: trailers });
      }
      lastError = `node ${target.nodeId}: ${grpc.status[up.code]}${up.details ? ` (${up.details})` : ''}`;
      if (verdictOf === 'deadline') return refuse(504, `the request's deadline (${Math.round(budgetMs)} ms) passed: ${lastError}`, target.nodeId, attempts);
      log.info({ nodeId: target.nodeId, model, code: grpc.status[up.code] }, 'gateway (gRPC): node failed; retrying on another node');
    }
    if (clientGone) return undefined;
    if (attempts > 0) return refuse(502, `every node tried failed: ${lastError}`);
    const anyHttp = router.candidates(model, version).length > 0;
    return refuse(503, anyHttp
      ? `the nodes that have '${model}' READY serve no gRPC (they registered no grpcAddress); use the HTTP door`
      : `no node can take '${model}'${version ? ` version ${version}` : ''} now (none Ready with it READY, or all out of rotation)`);
  };

  /** ModelStreamInfer: the first message picks the node; the stream is then piped both ways. */
  const streamInfer = (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const started = clock.now();
    const who = identify(call.metadata);
    if (typeof who !== 'string') return void call.emit('error', who);
    const pending: Buffer[] = [];
    let upstream: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
    let clientEnded = false;
    let finished = false;
    const fail = (e: Refusal) => {
      if (finished) return;
      finished = true;
      call.emit('error', e);
    };
    const open = async (firstMessage: Buffer) => {
      const fields = routeFields(firstMessage);
      if (!fields?.model) return fail(refusal(grpc.status.INVALID_ARGUMENT, 'the stream\'s first request has no model_name (it picks the node for the stream)'));
      const budget = hooks.admitClient?.(who);
      if (budget) return fail(refusal(grpc.status.RESOURCE_EXHAUSTED, budget));
      const version = fields.version || undefined;
      let candidates = grpcCandidates(fields.model, version, new Set());
      if (candidates.length === 0 && router.candidates(fields.model, version).length === 0) {
        const r = await loader.load(fields.model, options.modelTimeoutsMs?.[fields.model] ?? requestTimeoutMs, who);
        if (!r.ok) return fail(refusal(grpcStatusOf(r.status), r.error));
        candidates = grpcCandidates(fields.model, version, new Set());
        if (candidates.length === 0) {
          const node = fleet.nodes().find((n) => n.nodeId === r.nodeId && n.grpcAddress !== undefined);
          if (node) candidates = [{ nodeId: node.nodeId, node, load: 0 }];
        }
      }
      const target = router.pick(candidates);
      if (!target) return fail(refusal(grpc.status.UNAVAILABLE, `no node with gRPC can take '${fields.model}' now`));
      if (finished) return undefined;
      const end = router.begin(target.nodeId);
      const headers = new grpc.Metadata();
      headers.set('x-gateway-node', target.nodeId);
      headers.set('x-gateway-attempts', '1');
      call.sendMetadata(headers);
      const up = clientFor(target.node.grpcAddress!).makeBidiStreamRequest(`${SERVICE}ModelStreamInfer`, identity, identity, nodeMetadata(call.metadata), { deadline: call.getDeadline() });
      upstream = up;
      let answered = started;
      up.on('data', (buf: Buffer) => {
        const r = streamResponseFields(buf);
        const now = clock.now();
        hooks.onRouted?.({
          kind: 'infer', identity: who, model: r.model || fields.model, version, nodeId: target.nodeId, status: r.error ? 500 : 200, attempts: 1,
          nodeHeaders: r.computeUs !== undefined ? { [COMPUTE_TIME_HEADER]: String(r.computeUs) } : undefined, latencyMs: now - answered,
        });
        answered = now;
        call.write(buf);
      });
      up.on('error', () => undefined); // the status event carries it
      up.on('status', (s: grpc.StatusObject) => {
        end();
        router.record(target.nodeId, s.code !== grpc.status.UNAVAILABLE);
        if (finished) return;
        finished = true;
        if (s.code === grpc.status.OK) call.end();
        else call.emit('error', { code: s.code, details: s.details, metadata: s.metadata });
      });
      for (const m of pending.splice(0)) up.write(m);
      if (clientEnded) up.end();
    };
    call.on('data', (buf: Buffer) => {
      if (upstream) return void upstream.write(buf);
      pending.push(buf);
      if (pending.length === 1) {
        open(buf).catch((err: Error) => fail(refusal(grpc.status.INTERNAL, `gateway error: ${err.message}`)));
      }
    });
    call.on('end', () => {
      clientEnded = true;
      if (upstream) upstream.end();
      else if (pending.length === 0 && !finished) {
        finished = true;
        call.end();
      }
    });
    call.on('cancelled', () => {
      finished = true;
      upstream?.cancel();
    });
    call.on('error', () => undefined);
  };

  const local = (needsToken: boolean, answer: () => Buffer): grpc.handleUnaryCall<Buffer, Buffer> => (call, callback) => {
    if (needsToken) {
      const who = identify(call.metadata);
      if (typeof who !== 'string') return callback(who);
    }
    callback(null, answer());
  };

  const implementation: grpc.UntypedServiceImplementation = {
    ServerLive: local(false, () => encodeSimple([[1, true]])),
    ServerReady: local(false, () => encodeSimple([[1, fleet.nodes().some((n) => router.takesWork(n) && n.grpcAddress !== undefined)]])),
    ServerMetadata: local(true, () => encodeSimple([[1, 'gpu-node-agent-gateway'], [3, ['binary_tensor_data']]])),
    ModelReady: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const who = identify(call.metadata);
      if (typeof who !== 'string') return callback(who);
      const f = routeFields(call.request);
      if (!f) return callback(refusal(grpc.status.INVALID_ARGUMENT, 'the ModelReadyRequest is not a valid protobuf message'));
      callback(null, encodeSimple([[1, grpcCandidates(f.model, f.version || undefined, new Set()).length > 0]]));
    },
    ModelMetadata: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => void routeUnary('ModelMetadata', call, callback),
    ModelConfig: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => void routeUnary('ModelConfig', call, callback),
    ModelStatistics: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => void routeUnary('ModelStatistics', call, callback),
    ModelInfer: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => void routeUnary('ModelInfer', call, callback),
    ModelStreamInfer: streamInfer,
  };
  for (const name of Object.keys(METHODS)) {
    implementation[name] ??= ((_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(refusal(grpc.status.UNIMPLEMENTED,
      `${name} is a per-node operation: the gateway routes inference only; call the node's own gRPC port, or use the coordinator's admin API (/nodes/{id}/commands)`))) as grpc.handleUnaryCall<Buffer, Buffer>;
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': listen.maxMessageBytes ?? options.maxBodyBytes ?? 256 * 1024 * 1024,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  });
  server.addService(passThroughDefinition(), implementation);
  const bindHost = listen.host.includes(':') && !listen.host.startsWith('[') ? `[${listen.host}]` : listen.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${bindHost}:${listen.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(new Error(`cannot listen for gRPC on ${bindHost}:${listen.port}: ${err.message} (choose another --grpc-port)`));
      else resolve(p);
    });
  });
  const address = `${bindHost}:${port}`;
  log.info({ grpc: address }, 'gateway: gRPC front door listening');

  return {
    address,
    port,
    close: () => new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.forceShutdown(), 2_000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        for (const c of clients.values()) c.close();
        clients.clear();
        resolve();
      });
    }),
  };
}
