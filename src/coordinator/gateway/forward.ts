/**
 * One attempt: send the request to one node with undici (kept-alive connections per origin)
 * and hand back the node's answer with its body still unread, so the caller can either stream
 * it to the client or drop it and retry elsewhere.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { BodyTooLarge, type GatewayBody } from './body.js';
import type { AttemptOutcome } from './policy.js';

/** Headers never forwarded to a node: hop-by-hop ones, and the client's own credentials. */
const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'authorization', 'expect']);
/** Headers never passed back to the client. */
export const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authenticate']);

export function createDispatcher(): Dispatcher {
  return new Agent({ keepAliveTimeout: 30_000, connections: 128, connect: { timeout: 2_000 } });
}

export type Attempt =
  | { readonly outcome: AttemptOutcome & { kind: 'response' }; readonly response: Dispatcher.ResponseData; readonly elapsedMs: number }
  | { readonly outcome: Exclude<AttemptOutcome, { kind: 'response' }>; readonly error: string; readonly elapsedMs: number };

export interface ForwardRequest {
  readonly method: 'GET' | 'POST';
  /** Path and query, e.g. /v2/models/m/infer. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: GatewayBody;
  /** ms left until the request's deadline. */
  readonly timeoutMs: number;
  /** Sent to the node instead of the client's token (the agent's --api-token), when set. */
  readonly nodeToken?: string;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export async function forward(dispatcher: Dispatcher, baseUrl: string, req: ForwardRequest, now: () => number): Promise<Attempt> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || DROP_REQUEST.has(k)) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  if (req.nodeToken) headers.authorization = `Bearer ${req.nodeToken}`;
  const body = req.body.kind === 'buffered' ? req.body.bytes : req.body.kind === 'stream' ? req.body.stream : null;
  if (req.body.kind === 'buffered') headers['content-length'] = String(req.body.bytes.length);
  const started = now();
  const timeout = Math.max(1, Math.ceil(req.timeoutMs));
  try {
    // origin + path as strings: no URL object per request (undici joins them itself).
    const response = await dispatcher.request({
      origin: baseUrl,
      path: req.path,
      method: req.method,
      headers,
      body,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    return { outcome: { kind: 'response', status: response.statusCode }, response, elapsedMs: now() - started };
  } catch (err) {
    const e = err as { code?: string; message?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code;
    const elapsedMs = now() - started;
    const tooLarge = err instanceof BodyTooLarge ? err : (err as { cause?: unknown }).cause instanceof BodyTooLarge ? (err as { cause: BodyTooLarge }).cause : undefined;
    if (tooLarge) return { outcome: { kind: 'body_too_large' }, error: tooLarge.message, elapsedMs };
    if (code && TIMEOUT_CODES.has(code)) return { outcome: { kind: 'timeout' }, error: 'the node did not answer within the deadline', elapsedMs };
    return { outcome: { kind: 'connection_error', ...(code ? { code } : {}) }, error: code ?? e.message ?? 'connection failed', elapsedMs };
  }
}
