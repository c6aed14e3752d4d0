/**
 * The fastify app of one HTTP front end. The inference routes are served here up to the
 * batcher: admission from the headers that needs no model state (draining, --body-limit),
 * body read and decompression, decode (JSON or binary) into tensors, then the decoded request
 * goes to the primary; its outputs come back and are encoded here, with the same headers as
 * routes/infer.ts. Every other route is forwarded whole to the primary, which answers with its
 * own app, so health, metadata, repository, metrics, stats, shared memory, logging and KServe
 * V1 behave exactly as without front ends.
 *
 * Admission that needs model state (unknown model, queue full) is decided by the primary on
 * arrival, with the same codes and messages, but after the body was read: the front ends do
 * not mirror the model table yet (see docs/architecture.md).
 *
 * Imports nothing that loads onnxruntime (checked by test/frontend/http-processes.test.ts).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AgentConfig } from '../config/schema.js';
import { AgentError } from '../errors.js';
import { checkToken } from '../inference/auth.js';
import type { NodeStatus } from '../inference/context.js';
import { KEEP_ALIVE_BODY_BYTES } from '../http/admission.js';
import { decodedBody, rawBody } from '../http/body.js';
import { httpError } from '../http/http-error.js';
import { installDrainControl } from '../http/shutdown.js';
import { timeoutOptions } from '../http/timeouts.js';
import { decodeInferRequest, parseHeaderLength } from '../protocol/decode-request.js';
import { sendInferReply } from '../http/infer-reply.js';
import type { InferRequest } from '../protocol/tensor.js';
import type { Logger } from '../util/logger.js';
import type { PrimaryLink } from './primary-link.js';


const MODEL_PATHS = ['/v2/models/:model/infer', '/v2/models/:model/versions/:version/infer'];

interface ModelRoute {
  Params: { model: string; version?: string };
}

let requestCounter = 0;

/**
 * The request decoded here, or undefined when the primary should decode it (raw binary needs
 * the model's spec, shared memory the primary's registry, and a malformed request is answered
 * exactly as the single-process route answers it).
 */
async function decodeHere(req: FastifyRequest, limit: number): Promise<InferRequest | undefined> {
  try {
    const headerLength = parseHeaderLength(req.headers['inference-header-content-length']);
    if (headerLength === 0) return undefined;
    const decoded = decodeInferRequest(await decodedBody(req, limit), headerLength);
    return decoded.shmRegions ? undefined : decoded;
  } catch {
    return undefined;
  }
}

export async function buildFrontendApp(config: AgentConfig, node: NodeStatus, link: PrimaryLink, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => `f${(++requestCounter).toString(36)}`,
    return503OnClosing: false,
    forceCloseConnections: false,
    ...timeoutOptions(config),
  });
  installDrainControl(app, node);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const e = httpError(err, config.bodyLimit);
    if (e.status >= 500 && e.code !== 'UNAVAILABLE') req.log.error({ code: e.code }, e.message);
    link.post({ t: 'countError', status: e.status });
    if (e.retryAfterSeconds !== undefined) reply.header('Retry-After', String(e.retryAfterSeconds));
    void reply.code(e.status).type('application/json').send({ error: e.message });
  });

  // The inference routes' onRequest: token (the primary checks it for forwarded routes) and --body-limit.
  const admit = async (req: FastifyRequest<ModelRoute>, reply: FastifyReply): Promise<void> => {
    if (config.apiToken) {
      try {
        checkToken(req.headers.authorization, config.apiToken, 'Authorization');
      } catch (err) {
        reply.header('WWW-Authenticate', 'Bearer');
        throw err;
      }
    }
    const v = req.headers['content-length'];
    const length = v === undefined ? undefined : Number(v);
    if (length !== undefined && Number.isFinite(length) && length > config.bodyLimit) {
      if (length > KEEP_ALIVE_BODY_BYTES) reply.header('Connection', 'close');
      throw new AgentError('PAYLOAD_TOO_LARGE', `the request body is larger than the limit of ${config.bodyLimit} bytes (--body-limit)`);
    }
  };

  for (const path of MODEL_PATHS) {
    app.post<ModelRoute>(path, { onRequest: admit }, async (req, reply) => {
      const { model, version } = req.params;
      const request = await decodeHere(req, config.bodyLimit);
      const call = link.infer(request
        ? { model, version, request }
        : { model, version, body: rawBody(req), encoding: req.headers['content-encoding'], headerLength: req.headers['inference-header-content-length'] });
      // The client hung up before its answer: the primary drops it from the queue if it has not run.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) call.cancel();
      });
      const res = await call.result;
      if (res.error) throw new AgentError(res.error.code, res.error.message, res.error.retryAfterSeconds !== undefined ? { retryAfterSeconds: res.error.retryAfterSeconds } : undefined);
      return sendInferReply(reply, res.reply!);
    });
  }

  // Everything else: forwarded whole, answered by the primary's app.
  app.all('/*', async (req, reply) => {
    const body = rawBody(req);
    const res = await link.http({ method: req.method, url: req.url, headers: req.headers, ...(body.length ? { body } : {}) });
    reply.code(res.status);
    for (const [k, v] of Object.entries(res.headers)) reply.header(k, v);
    return reply.send(Buffer.from(res.body.buffer, res.body.byteOffset, res.body.byteLength));
  });
  return app;
}
