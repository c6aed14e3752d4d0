/**
 * Writing to one agent connection: a message, a close with a code, and a refusal (an `error`
 * message that explains, then the close). Failures to send are logged at debug and never throw:
 * a connection that is going away must not break the coordinator.
 */
import { messageOf } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { AgentConn } from './node-record.js';
import { CloseCode, truncateUtf8, type CoordinatorMessage } from './protocol.js';

export function sendTo(conn: AgentConn, message: CoordinatorMessage, log: Logger): void {
  try {
    conn.ws.send(JSON.stringify(message), (err) => {
      if (err) log.debug({ err: err.message, type: message.type }, 'send to agent failed');
    });
  } catch (err) {
    log.debug({ err: messageOf(err), type: message.type }, 'send to agent failed');
  }
}

/** Close with `code` and `reason` (truncated to the 123 bytes a close frame allows). */
export function closeConn(conn: AgentConn, code: number, reason: string): void {
  try {
    conn.ws.close(code, truncateUtf8(reason, 123));
  } catch {
    conn.ws.terminate();
  }
}

/** Explain in an `error` message, then close with 4002 (or the given code). */
export function refuseConn(conn: AgentConn, code: number, errorCode: string, detail: string, log: Logger): void {
  log.warn({ remote: conn.remote, nodeId: conn.node?.nodeId, code, err: detail }, 'closing agent connection');
  sendTo(conn, { type: 'error', code: errorCode, message: detail.slice(0, 4000) }, log);
  closeConn(conn, code, code === CloseCode.PROTOCOL_ERROR ? `protocol error: ${detail}` : detail);
}
