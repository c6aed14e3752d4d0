/**
 * Running nvidia-smi once, with a timeout, and turning every way it can fail into a sentence.
 *
 * `execFile` (no shell): the path comes from configuration and is never interpreted. The
 * timeout kills with SIGKILL: nvidia-smi is known to hang when the driver is wedged (see
 * microsoft/pai#842), and a hung query must never hold the agent.
 */
import { execFile } from 'node:child_process';

/** nvidia-smi's documented exit codes (man nvidia-smi, RETURN VALUE). */
const EXIT_CODES: Record<number, string> = {
  2: 'invalid argument or flag',
  3: 'the requested operation is not available on the target device',
  4: 'insufficient permissions',
  6: 'the query was unsuccessful',
  8: 'external power cables are not attached',
  9: 'the NVIDIA driver is not loaded',
  10: 'the NVIDIA kernel module detected an interrupt issue with a GPU',
  12: 'the NVML shared library could not be found or loaded',
  13: 'the local NVML does not implement this function',
  14: 'the infoROM is corrupted',
  15: 'a GPU has fallen off the bus or is otherwise inaccessible',
  255: 'other error or internal driver error',
};

export function describeExitCode(code: number): string {
  return EXIT_CODES[code] ?? 'unknown error';
}

export type SmiResult = { ok: true; stdout: string; stderr: string } | { ok: false; reason: string; stdout: string; stderr: string };

export interface RunOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Output larger than this is an error; `-q -x` on 8 GPUs is a few hundred KiB. */
  maxBuffer?: number;
}

/** The first non-empty line of a program's output, trimmed to a sensible length. */
export function firstLine(s: string): string {
  const line = s.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** A sentence for a spawn error (ENOENT, EACCES, ...), naming the path. */
export function describeSpawnError(path: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return `nvidia-smi not found at '${path}' (no NVIDIA driver?)`;
  if (err.code === 'EACCES') return `nvidia-smi at '${path}' is not executable (EACCES)`;
  return `nvidia-smi at '${path}' could not be started: ${err.code ?? err.message}`;
}

/** Runs `path args...` once. Never rejects. */
export function runNvidiaSmi(path: string, args: readonly string[], opts: RunOptions): Promise<SmiResult> {
  const what = `nvidia-smi ${args.join(' ')}`;
  return new Promise((resolve) => {
    try {
      execFile(
        path,
        args as string[],
        {
          timeout: opts.timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: opts.maxBuffer ?? 32 * 1024 * 1024,
          env: opts.env ?? process.env,
          encoding: 'utf8',
          windowsHide: true,
        },
        (error, stdout, stderr) => {
          const out = String(stdout ?? '');
          const errOut = String(stderr ?? '');
          if (!error) return resolve({ ok: true, stdout: out, stderr: errOut });
          const e = error as NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null; code?: unknown };
          let reason: string;
          if (typeof e.code === 'string' && e.code !== 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
            reason = describeSpawnError(path, e);
          } else if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
            reason = `${what} (at '${path}') wrote more than ${opts.maxBuffer ?? 32 * 1024 * 1024} bytes`;
          } else if (e.killed || e.signal) {
            reason = e.killed
              ? `${what} (at '${path}') timed out after ${opts.timeoutMs} ms`
              : `${what} (at '${path}') was killed by ${e.signal}`;
          } else if (typeof e.code === 'number') {
            const said = firstLine(out) || firstLine(errOut);
            reason = `${what} (at '${path}') exited with code ${e.code} (${describeExitCode(e.code)})${said ? `: ${said}` : ''}`;
          } else {
            reason = `${what} (at '${path}') failed: ${e.message}`;
          }
          resolve({ ok: false, reason, stdout: out, stderr: errOut });
        },
      );
    } catch (err) {
      // execFile throws synchronously for some argument errors (e.g. a NUL byte in the path).
      resolve({ ok: false, reason: `nvidia-smi at '${path}' could not be started: ${(err as Error).message}`, stdout: '', stderr: '' });
    }
  });
}
