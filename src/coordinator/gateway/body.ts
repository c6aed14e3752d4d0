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

/** Read up to `limit` bytes of `source`; the rest (if any) stays in the stream. */
export async function readBody(source: Readable, limit: number, maxBytes: number): Promise<GatewayBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  const iterator = source[Symbol.asyncIterator]();
  for (;;) {
    const next = (await iterator.next()) as IteratorResult<Buffer>;
    if (next.done) break;
    chunks.push(next.value);
    size += next.value.length;
    if (size > maxBytes) throw new BodyTooLarge(maxBytes);
    if (size > limit) {
      // Too large to keep for a retry: stream the prefix, then the rest, counting the limit.
      const rest = (async function* () {
        yield* chunks;
        let total = size;
        for (;;) {
          const n = (await iterator.next()) as IteratorResult<Buffer>;
          if (n.done) return;
          total += n.value.length;
          if (total > maxBytes) throw new BodyTooLarge(maxBytes);
          yield n.value;
        }
      })();
      return { kind: 'stream', stream: Readable.from(rest, { objectMode: false }) };
    }
  }
  if (size === 0) return { kind: 'none' };
  return { kind: 'buffered', bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) };
}

export class BodyTooLarge extends Error {
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
