/**
 * The link's incoming side as a pure function: one WebSocket frame from the coordinator becomes
 * either a decoded message to dispatch, or the answer the agent owes for a frame it cannot use.
 *
 * Contract: a bad frame never goes unanswered and never stops the link. A malformed `command`
 * that still carries a valid id is answered with its own `command_result` (code
 * invalid_command), so that whoever sent it learns why at once; any other bad frame (binary,
 * not JSON, unknown type, invalid fields) gets a protocol `error`, with `ref` naming the
 * message id when it has a usable one.
 */
import type WebSocket from 'ws';
import { CommandResultCode, redactPaths } from './command-policy.js';
import { MAX_ERROR_CHARS } from './link-commands.js';
import { CommandIdSchema, decodeCoordinatorMessage, ErrorCodes, type AgentMessage, type CoordinatorMessage } from './protocol.js';

export type InboundFrame =
  | { readonly ok: true; readonly message: CoordinatorMessage }
  | {
      readonly ok: false;
      /** The warning to log, with its fields when there are any. */
      readonly warning: string;
      readonly fields?: Readonly<Record<string, unknown>>;
      readonly reply: AgentMessage;
      /**
       * True for a command's own result: it goes through the outbox like every result (and is
       * buffered if the connection is lost meanwhile). False: a protocol error for this socket only.
       */
      readonly isCommandResult: boolean;
    };

/** Decode one frame (never throws). */
export function readFrame(data: WebSocket.RawData, isBinary: boolean): InboundFrame {
  if (isBinary) {
    return {
      ok: false,
      warning: 'binary frame from the coordinator ignored',
      reply: { type: 'error', code: ErrorCodes.BAD_JSON, message: 'binary frames are not part of the protocol; send JSON text frames' },
      isCommandResult: false,
    };
  }
  const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8');
  const decoded = decodeCoordinatorMessage(text);
  if (decoded.ok) return { ok: true, message: decoded.message };
  const warning = 'malformed message from the coordinator';
  const fields = { code: decoded.code, err: decoded.message };
  if (decoded.type === 'command' && decoded.id !== undefined && CommandIdSchema.safeParse(decoded.id).success) {
    return {
      ok: false,
      warning,
      fields,
      reply: { type: 'command_result', id: decoded.id, ok: false, code: CommandResultCode.INVALID_COMMAND, error: redactPaths(`refused: ${decoded.message}`).slice(0, MAX_ERROR_CHARS) },
      isCommandResult: true,
    };
  }
  return {
    ok: false,
    warning,
    fields,
    reply: { type: 'error', code: decoded.code, message: decoded.message.slice(0, MAX_ERROR_CHARS), ...(decoded.id && decoded.id.length <= 128 ? { ref: decoded.id } : {}) },
    isCommandResult: false,
  };
}
