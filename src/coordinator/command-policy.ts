/**
 * How the agent treats coordinator commands, as pure parts the link composes:
 * - {@link admitCommand}: which commands each node state accepts, and what a command that
 *   conflicts with one in progress gets (the table in docs/coordinator-protocol.md);
 * - {@link CommandDedup}: a command id seen again within the window gets the first result again
 *   instead of running twice (at-least-once delivery after a reconnect stays safe);
 * - {@link resultCodeOf}: the stable machine-readable `code` of a result from the error thrown;
 * - {@link redactPaths}: no absolute server path leaves the agent in a message.
 * Commands otherwise run concurrently (a ping is answered while a load runs).
 */
import type { Clock } from '../util/clock.js';
import { CommandResultCode, type Command, type CommandResultCodeValue, type NodeState } from './protocol.js';

export { CommandResultCode, type CommandResultCodeValue };

/** A command that the agent is running now. */
export interface RunningCommand {
  readonly id: string;
  readonly command: Command;
}

/** Why `command` may not run now, or undefined to run it. */
export function admitCommand(command: Command, nodeState: NodeState, running: readonly RunningCommand[]): { code: CommandResultCodeValue; error: string } | undefined {
  if (command.type === 'load_model' && nodeState === 'draining') {
    return { code: CommandResultCode.NODE_DRAINING, error: `the node is draining; load_model '${command.model}' is refused until uncordon` };
  }
  if (command.type === 'load_model' || command.type === 'unload_model') {
    const other = command.type === 'load_model' ? 'unload_model' : 'load_model';
    const clash = running.find((r) => r.command.type === other && 'model' in r.command && r.command.model === command.model);
    if (clash) return { code: CommandResultCode.CONFLICT, error: `${other} '${command.model}' (command ${clash.id}) is in progress; retry once it has answered` };
  }
  return undefined;
}

/**
 * The code for an error thrown by the controller (AgentError codes, by name). The command
 * itself already validated, so INVALID_ARGUMENT from a load (a bad model file) is `failed`.
 */
export function resultCodeOf(err: unknown): CommandResultCodeValue {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'NOT_FOUND':
      return CommandResultCode.NOT_FOUND;
    case 'FAILED_PRECONDITION':
      return CommandResultCode.FAILED_PRECONDITION;
    case 'UNAVAILABLE':
      return CommandResultCode.UNAVAILABLE;
    default:
      return CommandResultCode.FAILED;
  }
}

/**
 * Absolute file paths (`/srv/models/x`, `C:\models\x`) become `<path>`. URLs keep theirs: a
 * path right after `:` or another `/` is not touched.
 */
export function redactPaths(message: string): string {
  return message
    .replace(/(^|[\s'"(=])(\/(?:[^\s'"():,]+\/)*[^\s'"():,]*)/g, (m, pre: string, p: string) => (p.length > 1 && p.indexOf('/', 1) > 0 ? `${pre}<path>` : m))
    .replace(/(^|[\s'"(=])[A-Za-z]:\\[^\s'"()]*/g, '$1<path>');
}

export interface FinishedResult {
  readonly ok: boolean;
  readonly code: CommandResultCodeValue;
  readonly error?: string;
}

/**
 * Results of finished commands by id, for `windowMs` (default 10 min) and at most `max`
 * entries (oldest dropped first). A coordinator that resends an id within the window gets the
 * first result again; after it, the id runs as a new command.
 */
export class CommandDedup {
  private readonly done = new Map<string, { result: FinishedResult; at: number }>();

  constructor(private readonly clock: Clock, readonly windowMs = 600_000, private readonly max = 1_000) {}

  get(id: string): FinishedResult | undefined {
    this.expire();
    return this.done.get(id)?.result;
  }

  remember(id: string, result: FinishedResult): void {
    this.done.delete(id);
    this.done.set(id, { result, at: this.clock.now() });
    this.expire();
  }

  private expire(): void {
    const cutoff = this.clock.now() - this.windowMs;
    for (const [id, e] of this.done) {
      if (e.at > cutoff && this.done.size <= this.max) break; // Map keeps insertion order: oldest first
      this.done.delete(id);
    }
  }
}
