/**
 * One long-running child process whose stdout is read line by line as it comes, restarted with
 * exponential backoff when it dies, killed when it stops talking (stall watchdog), and stopped
 * for good by `close()`. Used for nvidia-smi's `-lms` loops: one process that samples on its
 * own timer costs a fraction of spawning nvidia-smi (and initializing NVML) every interval.
 *
 * If the agent itself dies without `close()`, the child does not linger: its stdout pipe loses
 * its reader, and its next write (at most one interval later) gets SIGPIPE/EPIPE.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { describeExitCode, describeSpawnError } from './nvidia-smi.js';

export interface SupervisedChildOptions {
  /** For logs and reasons, e.g. "gpu sampler". */
  name: string;
  path: string;
  /** Evaluated at every (re)start, so a caller may change the arguments between runs. */
  args: () => string[];
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  clock: Clock;
  /** Every complete stdout line; return false when it was not understood (kept for the reason). */
  onLine: (line: string) => boolean;
  /**
   * Called when the child ended on its own, with its last output. Return 'now' to restart at
   * once (e.g. after changing the arguments), 'backoff' for the usual delay, 'stop' to give up.
   */
  onExit?: (info: { code: number | null; signal: NodeJS.Signals | null; output: string }) => 'now' | 'backoff' | 'stop';
  backoff?: { initialMs: number; maxMs: number };
  /** Kill and restart a child that wrote nothing for this long (0 = never). */
  stallMs?: number;
}

const MAX_PARTIAL_LINE = 64 * 1024;
const OUTPUT_TAIL = 2000;

export class SupervisedChild {
  private child: ChildProcess | undefined;
  private stopped = true;
  private failures = 0;
  private cancelRestart: (() => void) | undefined;
  private cancelWatchdog: (() => void) | undefined;
  private lastActivity = 0;
  private startedAt = 0;
  private lastLoggedReason: string | undefined;
  private outputTail = '';
  private exitWaiters: (() => void)[] = [];
  /** Why the child is not running (or last failed); undefined while healthy. */
  lastError: string | undefined;
  /** Number of times the child was (re)spawned. */
  spawns = 0;

  constructor(private readonly opts: SupervisedChildOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.pid !== undefined;
  }

  /** Monotonic time (clock.now) the current child was spawned, or 0. */
  get runningSince(): number {
    return this.running ? this.startedAt : 0;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.spawnChild();
    this.armWatchdog();
  }

  private spawnChild(): void {
    if (this.stopped) return;
    const { path, name, logger } = this.opts;
    const args = this.opts.args();
    let child: ChildProcess;
    try {
      child = spawn(path, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: this.opts.env ?? process.env,
        windowsHide: true,
      });
    } catch (err) {
      this.ended(undefined, `${name}: nvidia-smi at '${path}' could not be started: ${(err as Error).message}`, null, null);
      return;
    }
    this.spawns++;
    this.child = child;
    this.startedAt = this.lastActivity = this.opts.clock.now();
    this.outputTail = '';
    let partial = '';
    let done = false;
    const finish = (reason: string | undefined, code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      if (partial.trim()) this.handleLine(partial);
      this.ended(child, reason, code, signal);
    };

    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.lastActivity = this.opts.clock.now();
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl).replace(/\r$/, '');
        partial = partial.slice(nl + 1);
        if (line.trim()) this.handleLine(line);
      }
      if (partial.length > MAX_PARTIAL_LINE) partial = ''; // garbage without newlines
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.appendTail(chunk);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Spawn failures (ENOENT, EACCES) come here and no 'exit' follows; other errors (a failed
      // kill) do not end the child.
      if (child.pid === undefined) finish(`${name}: ${describeSpawnError(path, err)}`, null, null);
      else logger.debug({ err: err.message, child: name }, 'telemetry child error');
    });
    // 'close' (not 'exit'): all output has been read by then.
    child.on('close', (code, signal) => finish(undefined, code, signal));
    logger.debug({ child: name, pid: child.pid, path, args }, 'telemetry child started');
  }

  private handleLine(line: string): void {
    let understood = false;
    try {
      understood = this.opts.onLine(line);
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message, child: this.opts.name }, 'telemetry line handler failed');
    }
    if (understood) {
      this.failures = 0;
      this.lastError = undefined;
      this.lastLoggedReason = undefined;
    } else {
      this.appendTail(`${line}\n`);
    }
  }

  private appendTail(s: string): void {
    this.outputTail = (this.outputTail + s).slice(-OUTPUT_TAIL);
  }

  private ended(child: ChildProcess | undefined, reason: string | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (child && this.child === child) this.child = undefined;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    for (const w of waiters) w();
    if (this.stopped) return;

    const { name, path, logger } = this.opts;
    const output = this.outputTail;
    const said = output.split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0];
    if (!reason) {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}${code ? ` (${describeExitCode(code)})` : ''}`;
      reason = `${name}: nvidia-smi at '${path}' ${how}${said ? `: ${said.slice(0, 200)}` : ''}`;
    }
    this.lastError = reason;
    let decision: 'now' | 'backoff' | 'stop' = 'backoff';
    if (this.opts.onExit) {
      try {
        decision = this.opts.onExit({ code, signal, output });
      } catch {
        decision = 'backoff';
      }
    }
    if (decision === 'stop') {
      logger.warn({ child: name, reason }, 'telemetry child ended; not restarting');
      return;
    }
    // (A run that produced understood output already reset `failures` in handleLine.)
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    const delay = decision === 'now' ? 0 : Math.min(maxMs, initialMs * 2 ** this.failures);
    if (decision !== 'now') this.failures = Math.min(this.failures + 1, 30);
    this.lastError = `${reason}; restarting in ${delay} ms`;
    // The same failure over and over is logged once at warn, then at debug.
    if (reason !== this.lastLoggedReason) logger.warn({ child: name, reason, restartInMs: delay }, 'telemetry child ended; restarting');
    else logger.debug({ child: name, reason, restartInMs: delay }, 'telemetry child ended again; restarting');
    this.lastLoggedReason = reason;
    this.cancelRestart?.();
    this.cancelRestart = this.opts.clock.setTimer(delay, () => {
      this.cancelRestart = undefined;
      this.spawnChild();
    });
  }

  private armWatchdog(): void {
    const stallMs = this.opts.stallMs ?? 0;
    if (stallMs <= 0 || this.stopped) return;
    const every = Math.max(50, Math.min(stallMs / 2, 5000));
    this.cancelWatchdog = this.opts.clock.setTimer(every, () => {
      this.cancelWatchdog = undefined;
      const child = this.child;
      if (child && this.opts.clock.now() - this.lastActivity > stallMs) {
        this.opts.logger.warn({ child: this.opts.name, pid: child.pid, stallMs }, 'telemetry child stalled; killing it');
        this.appendTail(`(no output for ${stallMs} ms)\n`);
        child.kill('SIGKILL');
      }
      this.armWatchdog();
    });
  }

  /** Stops the child for good: SIGTERM, then SIGKILL after `graceMs`. Resolves once it is gone. */
  async close(graceMs = 2000): Promise<void> {
    this.stopped = true;
    this.cancelRestart?.();
    this.cancelRestart = undefined;
    this.cancelWatchdog?.();
    this.cancelWatchdog = undefined;
    const child = this.child;
    if (!child || child.pid === undefined) return;
    const gone = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const escalated = await Promise.race([
      gone.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (escalated) {
      child.kill('SIGKILL');
      let t2: NodeJS.Timeout | undefined;
      await Promise.race([gone, new Promise<void>((resolve) => (t2 = setTimeout(resolve, graceMs)))]);
      clearTimeout(t2);
    }
  }
}
