/**
 * Commands to agents: validated (CommandSchema), sent with a fresh id, answered by the agent's
 * `command_result` (agent-messages.ts settles `node.pending`) or by a timeout, and recorded in
 * the audit trail either way (who, what, target, when, result, duration). A cordon or drain
 * takes the node out of routing as soon as it is sent; an ok result sets the node state at
 * once (the next heartbeat confirms it).
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { sendTo } from './agent-wire.js';
import type { CoordinatorStore } from './audit/store.js';
import type { FleetState } from './fleet-state.js';
import { CommandRefused, type CommandOutcome } from './fleet-types.js';
import { CommandSchema, formatIssues, type Command, type NodeState } from './protocol.js';

export interface CommandDeps {
  readonly fleet: FleetState;
  readonly store: CoordinatorStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** Default wait for a result. */
  readonly commandTimeoutMs: number;
  /** True once the coordinator is closing: no new commands go out. */
  readonly isClosed: () => boolean;
}

export type SendCommand = (nodeId: string, command: Command, opts?: { timeoutMs?: number; identity?: string }) => Promise<CommandOutcome>;

/** What an ok cordon/uncordon/drain means for routing at once (the heartbeat confirms it later). */
const STATE_AFTER: Partial<Record<Command['type'], NodeState>> = { cordon: 'cordoned', uncordon: 'ready', drain: 'draining' };

export function createCommandSender(deps: CommandDeps): SendCommand {
  const { fleet, store, clock, log, commandTimeoutMs } = deps;
  const healthOf = (n: Parameters<FleetState['healthOf']>[0]) => fleet.healthOf(n);
  const setNodeState: FleetState['setNodeState'] = (n, state, identity, reason) => fleet.setNodeState(n, state, identity, reason);
  const send = (conn: Parameters<typeof sendTo>[0], m: Parameters<typeof sendTo>[1]) => sendTo(conn, m, log);
  return (nodeId, command, opts = {}) => {
    const identity = opts.identity ?? 'api';
    const startedAt = Date.now();
    const startedMono = clock.now();
    const audit = (action: string, target: string | undefined, result: string, error?: string, id?: string) =>
      store.append({ kind: 'command', at: startedAt, nodeId, identity, action, target, result, error, durationMs: clock.now() - startedMono, commandId: id });
    const parsed = CommandSchema.safeParse(command);
    if (!parsed.success) return Promise.reject(new CommandRefused(400, `invalid command: ${formatIssues(parsed.error)}`));
    const what = parsed.data.type;
    const model = 'model' in parsed.data ? parsed.data.model : undefined;
    const node = fleet.nodes.get(nodeId);
    if (!node) {
      audit(what, model, 'refused', 'unknown node');
      return Promise.reject(new CommandRefused(404, `unknown node '${nodeId}'`));
    }
    const conn = node.conn;
    if (!conn || deps.isClosed()) {
      audit(what, model, 'refused', `not connected (state ${healthOf(node)})`);
      return Promise.reject(new CommandRefused(409, `node '${nodeId}' is not connected (state ${healthOf(node)}); commands need a connected agent`));
    }
    const timeoutMs = opts.timeoutMs ?? commandTimeoutMs;
    const id = randomUUID();
    return new Promise<CommandOutcome>((resolve) => {
      const cancel = clock.setTimer(timeoutMs, () => {
        node.pending.delete(id);
        log.warn({ nodeId, id, command: what, timeoutMs }, 'command timed out');
        audit(what, model, 'timed_out', `no result within ${timeoutMs} ms`, id);
        resolve({ id, ok: false, code: 'timeout', error: `no result from the agent within ${timeoutMs} ms`, timedOut: true });
      });
      const after = STATE_AFTER[what];
      // A cordon or drain takes the node out of routing as soon as it is sent, not at the next heartbeat.
      if (after && after !== 'ready') setNodeState(node, after, identity, `${what} sent`);
      node.pending.set(id, (outcome) => {
        cancel();
        audit(what, model, outcome.ok ? 'ok' : outcome.code ?? 'failed', outcome.error, id);
        if (outcome.ok && after) setNodeState(node, after, identity, `${what} ok`);
        resolve(outcome);
      });
      log.info({ nodeId, id, command: parsed.data }, 'sending command');
      send(conn, { type: 'command', id, command: parsed.data });
    });
  };
}
