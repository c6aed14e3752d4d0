/**
 * fastify gives every request a child logger (`req.log`, bound to its request id). pino's
 * `child()` serialises the bindings (through the redaction of util/logger.ts) at once, and the
 * agent logs nothing per request at its default level: the profile showed that work on every
 * request for lines that are never written. This factory hands out a stand-in that creates the
 * real child only when a line at an enabled level is written (or something asks for the child
 * itself), so the lines that are written are exactly as before.
 */
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

type Method = (...args: unknown[]) => void;

class LazyChild {
  private real: Logger | undefined;

  constructor(private readonly parent: Logger, private readonly bindings: Bindings, private readonly opts: ChildLoggerOptions) {}

  private get logger(): Logger {
    return (this.real ??= this.parent.child(this.bindings, this.opts));
  }

  get level(): string {
    return this.real ? this.real.level : this.parent.level;
  }

  set level(l: string) {
    this.logger.level = l;
  }

  isLevelEnabled(level: string): boolean {
    return this.real ? this.real.isLevelEnabled(level) : this.parent.isLevelEnabled(level);
  }

  private write(level: Level, args: unknown[]): void {
    if (!this.isLevelEnabled(level)) return;
    (this.logger[level] as Method)(...args);
  }

  fatal(...args: unknown[]): void { this.write('fatal', args); }
  error(...args: unknown[]): void { this.write('error', args); }
  warn(...args: unknown[]): void { this.write('warn', args); }
  info(...args: unknown[]): void { this.write('info', args); }
  debug(...args: unknown[]): void { this.write('debug', args); }
  trace(...args: unknown[]): void { this.write('trace', args); }
  silent(): void {}

  child(bindings: Bindings, opts?: ChildLoggerOptions): Logger {
    return this.logger.child(bindings, opts);
  }
}

/** fastify's `childLoggerFactory`: a request logger whose pino child is made on first use. */
export function lazyChildLoggerFactory(logger: Logger, bindings: Bindings, opts: ChildLoggerOptions): Logger {
  // A route-level log level (opts.level) makes the child differ from its parent: make it now.
  if (opts && Object.keys(opts).length > 0) return logger.child(bindings, opts);
  return new LazyChild(logger, bindings, opts) as unknown as Logger;
}
