/**
 * One ranged GET over node:http(s), following redirects by hand so that credentials are only
 * sent where they belong: the Authorization header (and any signed header) goes to the first
 * host only, never to the host a redirect points at (Hugging Face redirects to a CDN with a
 * pre-signed URL). node:http rather than fetch: it streams Buffers without Web-stream overhead,
 * which keeps a pull close to `curl -o` throughput.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { PullError, isTransientNetworkError } from '../errors.js';
import { redactUri } from '../redact.js';

export interface OpenedBody {
  /** 200: the whole resource from byte 0; 206: from `offset`. */
  readonly status: 200 | 206;
  readonly offset: number;
  /** Size of the whole resource, when the server said. */
  readonly totalBytes: number | undefined;
  readonly etag: string | undefined;
  /** Headers of the first response (before redirects): Hugging Face puts X-Linked-Etag there. */
  readonly firstHeaders: IncomingMessage['headers'];
  readonly body: IncomingMessage;
}

export interface GetOptions {
  readonly headers?: Record<string, string>;
  readonly offset: number;
  /** Exclusive end of a byte range (parallel ranges); undefined = to the end of the file. */
  readonly end?: number | undefined;
  /** Sent as If-Range with the Range: a changed resource comes back whole (200). */
  readonly ifRange?: string | undefined;
  readonly allowHttp: boolean;
  readonly signal: AbortSignal;
  readonly maxRedirects?: number;
  /** No response headers within this time is a stall. */
  readonly connectTimeoutMs?: number;
  /** Send credentials to the first URL only, even when a redirect stays on its host (Hugging Face). */
  readonly credentialsFirstHopOnly?: boolean;
}

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

function checkScheme(url: URL, allowHttp: boolean): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:') {
    if (allowHttp) return;
    throw new PullError(`refusing plain http:// for ${redactUri(url.href)}: bytes and credentials would travel unencrypted; use https:// or start with --allow-http`, 'refused', false);
  }
  throw new PullError(`unsupported URL scheme ${url.protocol} in ${redactUri(url.href)}`, 'refused', false);
}

function request(url: URL, headers: Record<string, string>, signal: AbortSignal, timeoutMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.request(url, { method: 'GET', headers, agent: url.protocol === 'https:' ? agents.https : agents.http, signal }, resolve);
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no response within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

function parseContentRange(v: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = v ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(v.trim()) : null;
  return m ? { start: Number(m[1]), total: m[2] === '*' ? undefined : Number(m[2]) } : undefined;
}

/** GET `url` from byte `offset`; rejects with a PullError that names the (redacted) URL. */
export async function openHttp(start: URL, opts: GetOptions): Promise<OpenedBody> {
  let url = start;
  let headers: Record<string, string> = { ...opts.headers, 'user-agent': 'gpu-node-agent', 'accept-encoding': 'identity' };
  // A signed request (S3) brings its own Range/If-Range, part of the signature.
  if ((opts.offset > 0 || opts.end !== undefined) && headers.range === undefined) {
    headers.range = `bytes=${opts.offset}-${opts.end !== undefined ? opts.end - 1 : ''}`;
    if (opts.ifRange) headers['if-range'] = opts.ifRange;
  }
  let firstHeaders: IncomingMessage['headers'] | undefined;
  for (let hop = 0; ; hop++) {
    checkScheme(url, opts.allowHttp);
    let res: IncomingMessage;
    try {
      res = await request(url, headers, opts.signal, opts.connectTimeoutMs ?? 30_000);
    } catch (err) {
      if (opts.signal.aborted) throw new PullError('the download was cancelled', 'aborted', false);
      const code = (err as { code?: string }).code;
      throw new PullError(`cannot reach ${redactUri(url.href)}: ${code ?? (err as Error).message}`, code === 'ETIMEDOUT' ? 'stall' : 'network', isTransientNetworkError(err) || code === undefined);
    }
    firstHeaders ??= res.headers;
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
      res.resume();
      if (hop >= (opts.maxRedirects ?? 5)) throw new PullError(`too many redirects from ${redactUri(start.href)}`, 'http', false);
      const next = new URL(res.headers.location, url);
      // Credentials are for the origin that asked for them; a redirect target gets none.
      if (next.host !== url.host || opts.credentialsFirstHopOnly) {
        const { authorization: _a, ...rest } = headers;
        headers = Object.fromEntries(Object.entries(rest).filter(([k]) => !k.startsWith('x-amz-')));
      }
      url = next;
      continue;
    }
    if (status === 200 || status === 206) {
      const cr = parseContentRange(res.headers['content-range']);
      if (status === 206 && (!cr || cr.start !== opts.offset)) {
        res.destroy();
        throw new PullError(`${redactUri(url.href)} answered a range from byte ${cr?.start ?? '?'} when asked for byte ${opts.offset}`, 'http', false);
      }
      const length = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
      const totalBytes = status === 206 ? cr?.total : length;
      const etag = typeof res.headers.etag === 'string' ? res.headers.etag : undefined;
      return { status, offset: status === 206 ? opts.offset : 0, totalBytes, etag, firstHeaders, body: res };
    }
    res.resume();
    const retryable = status >= 500 || status === 429 || status === 408;
    const hint = status === 401 || status === 403 ? ' (check the credentials: HF_TOKEN, AWS_* or the URL)' : status === 404 ? ' (no such file)' : '';
    throw new PullError(`${redactUri(url.href)} answered HTTP ${status}${hint}`, 'http', retryable);
  }
}
