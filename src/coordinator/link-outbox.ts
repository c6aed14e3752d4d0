/**
 * The link's outgoing side: every agent message is checked against the protocol, then sent on
 * the registered socket or, while there is none, kept in a bounded drop-oldest buffer that the
 * next registration flushes.
 *
 * Contracts:
 * - An invalid outgoing message is a bug in the agent: it is dropped with an error log, never
 *   sent and never thrown.
 * - A send that fails (socket closing) is logged at debug and forgotten: the close handler
 *   reconnects, and the coordinator learns the node's state again from `register`.
 * - A full buffer drops its oldest message; the first drop after each registration warns once.
 */
import WebSocket from 'ws';
import { messageOf } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { DropOldestBuffer } from './drop-oldest-buffer.js';
import { AgentMessageSchema, formatIssues, type AgentMessage } from './protocol.js';

export class Outbox {
  private readonly buffer: DropOldestBuffer<AgentMessage>;
  private dropWarned = false;

  constructor(private readonly log: Logger, capacity: number) {
    this.buffer = new DropOldestBuffer(capacity);
  }

  /** Messages waiting for a registration. */
  get size(): number {
    return this.buffer.size;
  }

  /** Messages dropped (oldest first) since the link started. */
  get dropped(): number {
    return this.buffer.dropped;
  }

  /**
   * Send `message` on `registered` (the socket of a registered connection, or undefined when
   * there is none) if it is open, else buffer it. Invalid messages are dropped with an error log.
   */
  enqueue(message: AgentMessage, registered: WebSocket | undefined): void {
    const parsed = AgentMessageSchema.safeParse(message);
    if (!parsed.success) {
      this.log.error({ type: message.type, err: formatIssues(parsed.error) }, 'dropping an invalid outgoing message');
      return;
    }
    if (registered && registered.readyState === WebSocket.OPEN) {
      this.send(registered, parsed.data);
      return;
    }
    if (this.buffer.push(parsed.data) !== undefined && !this.dropWarned) {
      this.dropWarned = true;
      this.log.warn({ capacity: this.buffer.capacity }, 'coordinator unreachable and the buffer is full: dropping the oldest messages');
    }
  }

  /** Send at once, unchecked and unbuffered (register, protocol errors, the backlog). */
  send(ws: WebSocket, message: AgentMessage): void {
    try {
      ws.send(JSON.stringify(message), (err) => {
        if (err) this.log.debug({ err: err.message, type: message.type }, 'send to the coordinator failed');
      });
    } catch (err) {
      this.log.debug({ err: messageOf(err), type: message.type }, 'send to the coordinator failed');
    }
  }

  /** Empty the buffer for a new registration (oldest first) and re-arm the drop warning. */
  takeBacklog(): AgentMessage[] {
    this.dropWarned = false;
    return this.buffer.takeAll();
  }

  /** Forget everything buffered (the link is closing). */
  clear(): void {
    this.buffer.takeAll();
  }
}
