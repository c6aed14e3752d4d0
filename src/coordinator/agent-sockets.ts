/**
 * The agents' WebSocket endpoint (`ws://<host>:<port>/agents`, on the HTTP server's upgrade):
 * one AgentConn per connection, its token check, ping/pong liveness, the register deadline, and
 * closing them all at shutdown. What each message means is agent-messages.ts.
 *
 * Enforcement (codes in protocol.ts CloseCode): a wrong or missing token is accepted at the
 * upgrade and closed at once with 4001 ('invalid token' / 'missing token'); no `register`
 * within `registerTimeoutMs` gets an `error` message and close 4002; an agent that stops
 * answering pings is terminated. Paths other than /agents get a plain 404 on the upgrade.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { messageOf } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { closeConn, refuseConn } from './agent-wire.js';
import { tokenMatches } from './auth.js';
import type { FleetState } from './fleet-state.js';
import { MAX_PAYLOAD, type AgentConn } from './node-record.js';
import { AGENTS_PATH, CloseCode, ErrorCodes } from './protocol.js';
import { schedulePing } from './ping-loop.js';

export interface AgentSocketsDeps {
  readonly token: string;
  readonly fleet: FleetState;
  readonly clock: Clock;
  readonly log: Logger;
  readonly pingIntervalMs: number;
  readonly registerTimeoutMs: number;
  readonly onMessage: (conn: AgentConn, data: WebSocket.RawData, isBinary: boolean) => void;
}

export interface AgentSockets {
  /** The HTTP server's `upgrade` listener. */
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Close every connection with 1001 (terminate what has not closed within 1 s); refuse new ones. */
  closeAll(): Promise<void>;
}

export function createAgentSockets(deps: AgentSocketsDeps): AgentSockets {
  const { clock, log, fleet } = deps;
  const conns = new Set<AgentConn>();
  let closed = false;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: false });

  const stopConnTimers = (conn: AgentConn) => {
    conn.cancelPing?.();
    conn.cancelRegister?.();
    conn.cancelPing = conn.cancelRegister = undefined;
  };

  const keepPinging = (conn: AgentConn) =>
    schedulePing(conn, clock, deps.pingIntervalMs, () => log.warn({ remote: conn.remote, nodeId: conn.node?.nodeId }, 'agent stopped answering pings; terminating its connection'));

  const onConnection = (ws: WebSocket, req: IncomingMessage) => {
    let markClosed!: () => void;
    const conn: AgentConn = {
      ws,
      remote: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`,
      node: undefined,
      awaitingPong: false,
      cancelPing: undefined,
      cancelRegister: undefined,
      closed: new Promise<void>((resolve) => (markClosed = resolve)),
    };
    conns.add(conn);
    ws.on('error', (err) => log.debug({ remote: conn.remote, err: err.message }, 'agent WebSocket error'));
    ws.on('close', (code, reason) => {
      conns.delete(conn);
      stopConnTimers(conn);
      markClosed();
      const node = conn.node;
      if (node && node.conn === conn) {
        node.conn = undefined;
        fleet.onDirty(node.nodeId);
        log.info({ nodeId: node.nodeId, code, reason: reason.toString('utf8') }, 'agent disconnected');
      }
    });
    if (closed) return closeConn(conn, CloseCode.GOING_AWAY, 'coordinator shutting down');
    if (!tokenMatches(req.headers.authorization, deps.token)) {
      const reason = req.headers.authorization ? 'invalid token' : 'missing token';
      log.warn({ remote: conn.remote }, `agent refused: ${reason}`);
      return closeConn(conn, CloseCode.INVALID_TOKEN, reason);
    }
    ws.on('message', (data, isBinary) => {
      try {
        deps.onMessage(conn, data, isBinary);
      } catch (err) {
        log.error({ err: messageOf(err) }, 'coordinator: unexpected error handling an agent message');
      }
    });
    ws.on('pong', () => {
      conn.awaitingPong = false;
    });
    keepPinging(conn);
    conn.cancelRegister = clock.setTimer(deps.registerTimeoutMs, () => {
      if (!conn.node) refuseConn(conn, CloseCode.PROTOCOL_ERROR, ErrorCodes.UNEXPECTED, `no register message within ${deps.registerTimeoutMs} ms`, log);
    });
  };

  return {
    onUpgrade: (req, socket, head) => {
      socket.on('error', () => undefined);
      let pathname: string;
      try {
        pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      } catch {
        pathname = '';
      }
      if (pathname !== AGENTS_PATH) {
        socket.end(`HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nagents connect to ${AGENTS_PATH}\n`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
    },
    closeAll: async () => {
      closed = true;
      const open = [...conns];
      for (const conn of open) {
        stopConnTimers(conn);
        closeConn(conn, CloseCode.GOING_AWAY, 'coordinator shutting down');
      }
      await Promise.race([Promise.all(open.map((c) => c.closed)), new Promise<void>((r) => clock.setTimer(1_000, r))]);
      for (const conn of conns) conn.ws.terminate();
      wss.close();
    },
  };
}
