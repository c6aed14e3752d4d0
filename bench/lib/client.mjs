// The one HTTP client of the benchmark: undici, used the same way against the agent and against
// the empty route. Requests go through `dispatch` with a minimal handler (no Readable stream
// per response: the cheapest way undici offers to send a request and read its whole answer),
// keep-alive connections, pipelining 1 (one request in flight per connection), so
// "concurrency N" = N connections, each a closed loop: send, wait for the whole reply, repeat.
import { Client, Pool } from 'undici';

const DISPATCHER_OPTIONS = {
  pipelining: 1,
  keepAliveTimeout: 120_000,
  keepAliveMaxTimeout: 120_000,
  headersTimeout: 30_000,
  bodyTimeout: 30_000,
  connectTimeout: 10_000,
};

/** One connection (latency loops) or a pool of `connections` (closed-loop load). */
export function dispatcher(origin, connections = 1) {
  return connections === 1 ? new Client(origin, DISPATCHER_OPTIONS) : new Pool(origin, { ...DISPATCHER_OPTIONS, connections });
}

export class HttpStatusError extends Error {
  constructor(status, body, path) {
    super(`HTTP ${status} from ${path}: ${body.slice(0, 500)}`);
    this.status = status;
  }
}

class Collect {
  constructor(resolve, reject, keepBody, path) {
    this.resolve = resolve;
    this.reject = reject;
    this.keepBody = keepBody;
    this.path = path;
    this.status = 0;
    this.headers = undefined;
    this.bytes = 0;
    this.chunks = undefined;
  }
  onRequestStart() {}
  onResponseStart(_controller, statusCode, headers) {
    this.status = statusCode;
    this.headers = headers;
    if (this.keepBody || statusCode !== 200) this.chunks = [];
  }
  onResponseData(_controller, chunk) {
    this.bytes += chunk.length;
    this.chunks?.push(chunk);
  }
  onResponseEnd() {
    const body = this.chunks ? Buffer.concat(this.chunks) : undefined;
    if (this.status !== 200) this.reject(new HttpStatusError(this.status, body.toString('utf8'), this.path));
    else this.resolve({ status: this.status, bytes: this.bytes, headers: this.headers, body });
  }
  onResponseError(_controller, err) {
    this.reject(err);
  }
}

/**
 * Send one prepared request ({ method, path, headers, body }) and wait for the whole answer.
 * Anything but 200 rejects (a benchmark that counts errors as throughput would be worthless).
 */
export function send(d, req, keepBody = false) {
  return new Promise((resolve, reject) => {
    d.dispatch(req, new Collect(resolve, reject, keepBody, req.path));
  });
}

/** Sequential requests on one connection: per-request latency in µs (process.hrtime.bigint). */
export async function latencyLoop(d, req, n) {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await send(d, req);
    out[i] = Number(process.hrtime.bigint() - t0) / 1e3;
  }
  return out;
}

/**
 * Closed-loop load: `concurrency` loops on a pool of as many connections, for warmupMs (not
 * recorded) then durationMs. Throughput = replies completed inside the window / window;
 * latencies are those of the replies completed inside the window. New requests stop at the end
 * of the window; the ones in flight then are awaited and not counted.
 */
export async function closedLoop(origin, req, { concurrency, warmupMs, durationMs }) {
  const d = dispatcher(origin, concurrency);
  const latUs = [];
  const start = process.hrtime.bigint();
  const windowStart = start + BigInt(Math.round(warmupMs * 1e6));
  const windowEnd = windowStart + BigInt(Math.round(durationMs * 1e6));
  let inWindow = 0;
  let firstError;
  const loop = async () => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= windowEnd || firstError) return;
      try {
        await send(d, req);
      } catch (err) {
        firstError ??= err;
        return;
      }
      const t1 = process.hrtime.bigint();
      if (t1 >= windowStart && t1 < windowEnd) {
        inWindow++;
        latUs.push(Number(t1 - t0) / 1e3);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, loop));
  } finally {
    await d.close().catch(() => d.destroy());
  }
  if (firstError) throw firstError;
  return { requests: inWindow, seconds: durationMs / 1000, rps: inWindow / (durationMs / 1000), latUs };
}
