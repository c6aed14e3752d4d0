/**
 * The link's command runner: executes the coordinator's `command` messages through the
 * agent's {@link NodeController} and answers each with one `command_result`.
 *
 * Contracts:
 * - A repeated id gets the first result again (within the dedup window) or, while the first is
 *   still running, no second answer (the one result answers both).
 * - A command the node state or a running command excludes is refused with its code
 *   (command-policy.ts); everything else runs concurrently with other commands.
 * - Errors thrown by the controller become the result's `error` (server paths redacted, at most
 *   {@link MAX_ERROR_CHARS} characters) and `code` ({@link resultCodeOf}); `run()` itself never
 *   rejects for a controller failure.
 * - Node-state commands (cordon, uncordon, drain) send a heartbeat before their result, so the
 *   coordinator sees the new state first. An uncordon ends every pending drain: those answer
 *   `cancelled`, not ok (the node was never empty).
 */
import { messageOf } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import {
  admitCommand, CommandDedup, CommandResultCode, redactPaths, resultCodeOf, type FinishedResult, type RunningCommand,
} from './command-policy.js';
import type { NodeController } from './link-types.js';
import { COMMAND_DEDUP_WINDOW_MS, type AgentMessage, type Command, type CommandMessage } from './protocol.js';

/** Longest `error` text the link puts in a message to the coordinator. */
export const MAX_ERROR_CHARS = 4000;

const noop = () => undefined;

/** Thrown into a pending drain when uncordon ends it. */
class DrainCancelled extends Error {
  constructor(message: string, readonly drainId: string) {
    super(message);
    this.name = 'DrainCancelled';
  }
}

export interface CommandRunnerDeps {
  readonly controller: NodeController;
  readonly log: Logger;
  readonly clock: Clock;
  /** Send a message now or buffer it while disconnected (the link's outbox). */
  readonly enqueue: (message: AgentMessage) => void;
  /** Report the node's state now; resolves once the heartbeat is sent or buffered. */
  readonly sendHeartbeat: () => Promise<void>;
}

export class CommandRunner {
  private readonly inflight = new Set<string>();
  private readonly running = new Map<string, RunningCommand>();
  private readonly pendingDrains = new Map<string, (e: DrainCancelled) => void>();
  private readonly dedup: CommandDedup;

  constructor(private readonly deps: CommandRunnerDeps) {
    this.dedup = new CommandDedup(deps.clock, COMMAND_DEDUP_WINDOW_MS);
  }

  /** Run one command and answer it (see the contracts above). */
  async run(m: CommandMessage): Promise<void> {
    const { log, controller } = this.deps;
    const { id, command } = m;
    if (this.inflight.has(id)) {
      log.warn({ id, command: command.type }, 'command already in progress; duplicate ignored (the one result answers both)');
      return;
    }
    const seen = this.dedup.get(id);
    if (seen) {
      log.info({ id, command: command.type }, 'command id seen before; answering its first result again');
      this.deps.enqueue({ type: 'command_result', id, ...seen });
      return;
    }
    const fields = { id, command: command.type, ...('model' in command ? { model: command.model } : {}) };
    const refusal = admitCommand(command, controller.state?.() ?? 'ready', [...this.running.values()]);
    if (refusal) {
      log.warn({ ...fields, code: refusal.code, err: refusal.error }, 'coordinator command refused');
      this.finish(id, { ok: false, code: refusal.code, error: refusal.error });
      return;
    }
    this.inflight.add(id);
    this.running.set(id, { id, command });
    log.info(fields, 'coordinator command');
    let result: FinishedResult = { ok: true, code: CommandResultCode.OK };
    try {
      await this.execute(command, id);
    } catch (err) {
      const code = err instanceof DrainCancelled ? CommandResultCode.CANCELLED : resultCodeOf(err);
      result = { ok: false, code, error: redactPaths(messageOf(err) || 'failed').slice(0, MAX_ERROR_CHARS) };
    } finally {
      this.inflight.delete(id);
      this.running.delete(id);
    }
    if (result.ok) log.info(fields, 'coordinator command done');
    else log.warn({ ...fields, code: result.code, err: result.error }, 'coordinator command failed');
    this.finish(id, result);
  }

  private finish(id: string, result: FinishedResult): void {
    this.dedup.remember(id, result);
    this.deps.enqueue({ type: 'command_result', id, ...result });
  }

  /** Node-state commands send a heartbeat before their result, so the coordinator sees the new state first. */
  private async execute(command: Command, id: string): Promise<void> {
    const ctl = this.deps.controller;
    const heartbeat = this.deps.sendHeartbeat;
    switch (command.type) {
      case 'load_model':
        return ctl.loadModel(command.model, command.source);
      case 'rollback_model':
        if (!ctl.rollbackModel) throw new Error('this agent cannot roll back models');
        return ctl.rollbackModel(command.model, command.version);
      case 'unload_model':
        return ctl.unloadModel(command.model);
      case 'cordon':
        await ctl.cordon();
        return heartbeat();
      case 'uncordon':
        await ctl.uncordon();
        // A pending drain ends here: it answers cancelled, not ok (the node was never empty).
        for (const [drainId, cancel] of this.pendingDrains) cancel(new DrainCancelled(`the drain was ended by uncordon (command ${id}) before the node was empty`, drainId));
        return heartbeat();
      case 'drain': {
        const drained = Promise.resolve(ctl.drain());
        drained.catch(noop); // awaited below; keeps an early rejection from being "unhandled"
        let cancel!: (e: DrainCancelled) => void;
        const cancelled = new Promise<never>((_, reject) => (cancel = reject));
        cancelled.catch(noop);
        this.pendingDrains.set(id, cancel);
        try {
          await heartbeat();
          await Promise.race([drained, cancelled]);
        } finally {
          this.pendingDrains.delete(id);
        }
        return heartbeat();
      }
      case 'ping':
        return;
      default: {
        const unknown: never = command;
        throw new Error(`unknown command '${(unknown as { type: string }).type}'`);
      }
    }
  }
}
