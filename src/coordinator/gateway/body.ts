/**
 * Request bodies through the gateway: the first `retryBufferBytes` are read into memory so a
 * failed attempt can be sent again to another node; a body larger than that is streamed on
 * (prefix, then the rest straight from the client socket) and gets no retry, because its start
 * is gone once a node has read it. The gateway never holds more than that buffer per request.
 */
import { Readable } from 'node:stream';

export type GatewayBody =
  | { readonly kind: 'none' }
  /** Whole body in memory: may be sent any number of times. */
  | { readonly kind: 'buffered'; readonly bytes: Buffer }
  /** Too large to keep: may be sent once. */
  | { readonly kind: 'stream'; readonly stream: Readable };

/**
 * Read up to `limit` bytes of `source` and call `done` once: with the whole body, or (past
 * `limit`) with a stream of what was read followed by the rest of `source`, or with an error
 * (BodyTooLarge past `maxBytes`; the stream's error or an early close otherwise). Event-driven
 * on purpose: it runs for every gateway request, and an async iterator costs a promise per
 * chunk where a small body arrives in one 'data' event.
 */
export function readBody(source: Readable, limit: number, maxBytes: number, done: (err: Error | null, body?: GatewayBody) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const finish = (err: Error | null, body?: GatewayBody) => {
    if (settled) return;
    settled = true;
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('error', onError);
    source.off('close', onClose);
    done(err, body);
  };
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > maxBytes) {
      finish(new BodyTooLarge(maxBytes));
      source.resume(); // drain what the client still sends; the answer is a 413
    } else if (size > limit) {
      source.pause();
      finish(null, { kind: 'stream', stream: Readable.from(prefixThenRest(chunks, size, source, maxBytes), { objectMode: false }) });
    }
  };
  const onEnd = () => finish(null, size === 0 ? { kind: 'none' } : { kind: 'buffered', bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
  const onError = (err: Error) => finish(err);
  const onClose = () => finish(new Error('the request body ended early (the client went away)'));
  source.on('data', onData);
  source.once('end', onEnd);
  source.once('error', onError);
  source.once('close', onClose);
}

/** The chunks already read, then the rest of `source`, still counting against `maxBytes`. */
async function* prefixThenRest(prefix: Buffer[], read: number, source: Readable, maxBytes: number): AsyncGenerator<Buffer> {
  yield* prefix;
  let total = read;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw new BodyTooLarge(maxBytes);
    yield chunk;
  }
}

export class BodyTooLarge extends Error {
  /** The HTTP answer, read by fastify's error handling when the content-type parser fails with it. */
  readonly statusCode = 413;
  constructor(readonly maxBytes: number) {
    super(`the request body is larger than the gateway's limit of ${maxBytes} bytes`);
    this.name = 'BodyTooLarge';
  }
}

/**
 * The V2 `parameters.timeout` of a buffered JSON body (microseconds), without parsing bodies
 * that do not mention it: a cheap byte search first, JSON.parse only on a hit. For the binary
 * extension only the JSON header (Inference-Header-Content-Length bytes) is looked at.
 */
export function v2TimeoutParameter(body: GatewayBody, headerLength: number | undefined): unknown {
  if (body.kind !== 'buffered') return undefined;
  const json = headerLength !== undefined && headerLength > 0 && headerLength <= body.bytes.length ? body.bytes.subarray(0, headerLength) : body.bytes;
  if (json.indexOf('"timeout"') < 0) return undefined;
  try {
    const parsed = JSON.parse(json.toString('utf8')) as { parameters?: { timeout?: unknown } };
    return parsed?.parameters?.timeout;
  } catch {
    return undefined; // the node answers the malformed body with its own 400
  }
}
