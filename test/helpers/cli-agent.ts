/**
 * The agent as a real process: `gpu-agent serve <args>` from dist/ (or through `command`, e.g.
 * the launcher), resolved once its
 * "gpu-agent listening" line names its URL. Its stdout is kept (`out()`, `lines()`, `logs()`)
 * for the log lines a test checks; stderr goes to the test's unless `stderr: 'capture'`. Kill
 * it yourself (SIGTERM to drain) and await `exited`.
 *
 * Contract: the promise rejects, with what the agent printed, if the agent exits before its
 * listening line or prints none within `timeoutMs` (then it is SIGKILLed); it never leaves a
 * test waiting on an agent that is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli.js');

export interface CliAgent {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything read so far: stdout, with stderr interleaved when captured. */
  out(): string;
  /** stderr alone, read so far (empty unless `stderr: 'capture'`). */
  err(): string;
  /** The complete stdout lines read so far. */
  lines(): string[];
  /** The stdout lines read so far that are JSON (the agent's log entries), parsed. */
  logs(): Record<string, unknown>[];
  /** The exit code (null after a signal). */
  readonly exited: Promise<number | null>;
}

export interface CliAgentOptions {
  /** How long to wait for the listening line. Default 20 s. */
  readonly timeoutMs?: number;
  /** 'inherit' (default): the test's stderr. 'capture': kept in `out()` and in the error of a failed start. */
  readonly stderr?: 'inherit' | 'capture';
  /** The whole environment of the agent. Default: this process's, with ORT_DISABLE_TELEMETRY=1. */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** A command the agent runs under, e.g. `['setpriv', '--reuid', 'nobody', ...]` (node and the CLI follow it). */
  readonly prefix?: readonly string[];
  /**
   * What starts the agent instead of `node dist/src/cli.js serve` (the args follow it), e.g.
   * the default launch `['sh', 'scripts/gpu-agent.sh', 'serve']`.
   */
  readonly command?: readonly string[];
  /**
   * Stop reading stdout once listening (the pipe fills up and the agent's writes back up): for
   * the test that the agent still exits when nobody reads its output. `out()` then stops growing.
   */
  readonly stopReadingAfterListening?: boolean;
}

const LISTENING = /"url":"(http:[^"]+)".*"msg":"gpu-agent listening"/;

export async function spawnCliAgent(args: readonly string[], options: number | CliAgentOptions = {}): Promise<CliAgent> {
  const o: CliAgentOptions = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = o.timeoutMs ?? 20_000;
  const argv = [...(o.prefix ?? []), ...(o.command ?? [process.execPath, CLI, 'serve']), ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', o.stderr === 'capture' ? 'pipe' : 'inherit'],
    env: o.env ?? { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
    ...(o.cwd ? { cwd: o.cwd } : {}),
  });
  let out = '';
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
    stderr += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line within ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    let listening = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      stdout += d.toString();
      if (listening) return;
      const m = LISTENING.exec(stdout);
      if (!m) return;
      listening = true;
      clearTimeout(t);
      if (o.stopReadingAfterListening) {
        child.stdout!.off('data', onData);
        child.stdout!.pause(); // from now on nobody reads the agent's stdout
      }
      resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      if (listening) return;
      clearTimeout(t);
      reject(new Error(`the agent exited (${code}) before listening: ${out}`));
    });
  });
  const lines = () => stdout.split('\n').slice(0, -1);
  const logs = () => lines().flatMap((l) => {
    try {
      const entry: unknown = JSON.parse(l);
      return typeof entry === 'object' && entry !== null ? [entry as Record<string, unknown>] : [];
    } catch {
      return []; // not a log line
    }
  });
  return { child, url, out: () => out, err: () => stderr, lines, logs, exited };
}
