/**
 * Where log lines go: stdout, without ever blocking the process on it.
 *
 * pino's default destination writes synchronously; when stdout is a pipe or socket that nobody
 * reads any more (the parent died, a log shipper hung), the write blocks (or retries EAGAIN)
 * forever and the event loop with it: SIGTERM is never handled. Here, when stdout is a pipe or
 * a socket, lines are written through a non-blocking libuv stream; above MAX_PENDING_BYTES of
 * unwritten output new lines are dropped and counted (the count is logged once the reader
 * catches up). Files and terminals keep pino's synchronous destination.
 */
import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import { pino } from 'pino';

export const MAX_PENDING_BYTES = 4 * 1024 * 1024;

export interface LogSink {
  write(line: string): boolean;
  /** Resolves when what was written has left the process, or after `timeoutMs`. */
  flush(timeoutMs: number): Promise<void>;
}

class NonBlockingSink implements LogSink {
  private dropped = 0;
  private broken = false;

  constructor(private readonly socket: Socket) {
    socket.on('error', () => {
      this.broken = true; // EPIPE: the reader is gone; logging must not take the agent down
    });
    socket.unref(); // logs never keep the process alive
  }

  write(line: string): boolean {
    if (this.broken) return true;
    if (this.socket.writableLength > MAX_PENDING_BYTES) {
      this.dropped++;
      return true;
    }
    if (this.dropped) {
      this.socket.write(`${JSON.stringify({ level: 40, time: Date.now(), msg: `dropped ${this.dropped} log lines: stdout was not being read` })}\n`);
      this.dropped = 0;
    }
    this.socket.write(line);
    return true;
  }

  flush(timeoutMs: number): Promise<void> {
    if (this.broken || this.socket.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.socket.write('', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

let shared: LogSink | undefined;
let nonBlocking = false;

/**
 * Called once by the CLI before any logger exists. Libraries and tests embedding the agent
 * keep pino's own destination: making fd 1 non-blocking affects every writer of that pipe.
 */
export function useNonBlockingStdout(): void {
  nonBlocking = true;
}

/** The process's log destination (one per process: every logger shares it). */
export function logSink(): LogSink {
  if (shared) return shared;
  let st: ReturnType<typeof fstatSync> | undefined;
  try {
    st = fstatSync(1);
  } catch {
    st = undefined;
  }
  if (nonBlocking && st && (st.isFIFO() || st.isSocket())) {
    shared = new NonBlockingSink(new Socket({ fd: 1, readable: false, writable: true }));
  } else {
    const dest = pino.destination({ dest: 1, sync: true });
    shared = { write: (line) => dest.write(line), flush: async () => undefined };
  }
  return shared;
}
