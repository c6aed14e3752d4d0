/**
 * `--max-connections`: at most that many HTTP connections are served at once. A connection over
 * the cap is not handed to the HTTP server at all; it gets one real HTTP answer on the raw socket,
 *
 *   503, `Retry-After: 1`, `Connection: close`, `{"error": "...--max-connections N..."}`
 *
 * and is then closed. Contracts:
 * - Connections under the cap, and their requests, never notice the ones refused.
 * - The answer goes out once the first bytes of the request arrive (the client is then reading),
 *   or after REFUSAL_WAIT_MS when it sends nothing, or at once when it half-closes.
 * - After the answer, what the client still sends (a request body) is read and discarded until
 *   it closes, for LINGER_MS at most: closing with unread data would reset the connection, and
 *   the client could lose the answer to that reset.
 * - At most MAX_REFUSING sockets are being answered at once; beyond that a connection is
 *   destroyed unanswered (a flood must not cost more than the cap saves).
 * - Refusals are logged once a second at most, with how many since the last line.
 *
 * Why not `net.Server.maxConnections`: Node destroys such a socket as it is accepted, so the
 * client sees a reset with no answer and cannot tell overload from a crash.
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from '../util/logger.js';

export const REFUSAL_WAIT_MS = 1000;
export const LINGER_MS = 2000;
export const MAX_REFUSING = 256;
export const RETRY_AFTER_S = 1;

/** The whole HTTP/1.1 answer written to a connection over the cap. */
export function refusalResponse(max: number): string {
  const body = JSON.stringify({
    error: `too many connections: this node serves at most ${max} concurrent HTTP connections (--max-connections ${max}); this one is closed, retry on a new connection after ${RETRY_AFTER_S} s`,
  });
  return 'HTTP/1.1 503 Service Unavailable\r\n'
    + `Retry-After: ${RETRY_AFTER_S}\r\n`
    + 'Connection: close\r\n'
    + 'Content-Type: application/json; charset=utf-8\r\n'
    + `Content-Length: ${Buffer.byteLength(body)}\r\n`
    + '\r\n'
    + body;
}

export interface ConnectionCap {
  /** Connections handed to the HTTP server and not closed yet. */
  readonly open: number;
  /** Connections over the cap being answered and closed right now. */
  readonly refusing: number;
}

/**
 * Put the cap in front of the HTTP server's own connection handling. Call it once, right after
 * the server is created and before other 'connection' listeners are added: the listeners present
 * now (Node's HTTP parser) only see connections under the cap; listeners added later see all.
 */
export function limitConnections(server: Server, max: number, logger: Logger): ConnectionCap {
  const serve = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  let open = 0;
  let refusing = 0;
  let refusedSinceLog = 0;
  let lastLog = 0;

  const logRefusal = (socket: Socket, answered: boolean) => {
    refusedSinceLog++;
    const now = Date.now();
    if (now - lastLog < 1000) return;
    logger.warn({ maxConnections: max, refused: refusedSinceLog, answered, remote: socket.remoteAddress }, 'connection refused: --max-connections reached (503)');
    lastLog = now;
    refusedSinceLog = 0;
  };

  const refuse = (socket: Socket) => {
    socket.on('error', () => undefined); // a reset by the client ends it; nothing to report
    if (refusing >= MAX_REFUSING) {
      logRefusal(socket, false);
      socket.destroy();
      return;
    }
    refusing++;
    logRefusal(socket, true);
    let answered = false;
    let linger: NodeJS.Timeout | undefined;
    const answer = () => {
      if (answered) return;
      answered = true;
      clearTimeout(wait);
      if (!socket.destroyed && socket.writable) socket.end(refusalResponse(max));
      else socket.destroy();
      linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    };
    const wait = setTimeout(answer, REFUSAL_WAIT_MS).unref();
    socket.on('data', answer); // the request's first bytes; later ones are read and dropped
    socket.once('end', answer);
    socket.once('close', () => {
      refusing--;
      clearTimeout(wait);
      clearTimeout(linger);
    });
  };

  server.on('connection', (socket: Socket) => {
    if (open >= max) return refuse(socket);
    open++;
    socket.once('close', () => open--);
    for (const listener of serve) listener.call(server, socket);
  });

  return {
    get open() { return open; },
    get refusing() { return refusing; },
  };
}
