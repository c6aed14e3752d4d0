/**
 * The agent as a real process: `gpu-agent serve <args>` from dist/, resolved once its
 * "gpu-agent listening" line names its URL. Its stdout is kept (`out()`) for the log lines a
 * test checks; stderr goes to the test's. Kill it yourself (SIGTERM to drain) and await `exited`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli.js');

export interface CliAgent {
  readonly child: ChildProcess;
  readonly url: string;
  out(): string;
  readonly exited: Promise<number | null>;
}

export async function spawnCliAgent(args: readonly string[], timeoutMs = 20_000): Promise<CliAgent> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line within ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    const onData = () => {
      const m = /"url":"(http:[^"]+)".*"msg":"gpu-agent listening"/.exec(out);
      if (!m) return;
      clearTimeout(t);
      child.stdout!.off('data', onData);
      resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
  });
  return { child, url, out: () => out, exited };
}
