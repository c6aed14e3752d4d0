/**
 * Connection limits and timeouts of the HTTP server, from the config:
 * - `--request-timeout-ms`: the whole request (headers and body) must arrive within it, else
 *   408 and the connection is closed (a 64 MiB body needs ~2 Mbit/s to fit the default 300 s);
 * - `--headers-timeout-ms`: the request line and headers must arrive within it (slowloris), 408;
 * - `--keep-alive-timeout-ms`: an idle keep-alive connection is closed after it (sent to clients
 *   as `Keep-Alive: timeout=N`, so they stop reusing it before);
 * - `--max-connections`: see connection-cap.ts (a connection over it gets 503 and is closed).
 * Node checks the first two every CHECK_INTERVAL_MS, so they fire up to that late.
 */
import type { ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import type { AgentConfig } from '../config/schema.js';
import type { Logger } from '../util/logger.js';

export const CHECK_INTERVAL_MS = 1000;

type Timeouts = Pick<AgentConfig, 'requestTimeoutMs' | 'headersTimeoutMs' | 'keepAliveTimeoutMs'>;

/** What a client gets for a request that timed out or could not be parsed: the agent's `{"error"}` form. */
function clientErrorHandler(this: { log: Logger }, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, text, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request (headers and body) did not arrive within the server\'s time limit (--request-timeout-ms, --headers-timeout-ms); the connection is closed']
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
    : [400, 'Bad Request', `malformed HTTP request: ${err.message}`];
  const body = JSON.stringify({ error: message });
  this.log.debug({ code: err.code, status }, 'client error');
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** Fastify options (`http` goes to http.createServer). */
export function timeoutOptions(config: Timeouts): Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout' | 'clientErrorHandler'> & { http: ServerOptions } {
  return {
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: { headersTimeout: config.headersTimeoutMs, connectionsCheckingInterval: CHECK_INTERVAL_MS },
    clientErrorHandler: clientErrorHandler as unknown as FastifyServerOptions['clientErrorHandler'],
  };
}

// The connection cap lives in connection-cap.ts (503 on the raw socket); server.ts imports it from here.
export { limitConnections } from './connection-cap.js';
