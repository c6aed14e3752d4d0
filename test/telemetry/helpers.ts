import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/nvidia-smi');
export const FAKE_SMI = path.join(FIXTURES, 'fake-nvidia-smi');
export const silentLogger = pino({ level: 'silent' });

export function fixture(scenario: string, file: string): string {
  return readFileSync(path.join(FIXTURES, scenario, file), 'utf8');
}

/** The environment for the fake: the scenario and any FAKE_NVIDIA_SMI_* settings. */
export function fakeEnv(vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('FAKE_NVIDIA_SMI_')) delete env[k];
  return { ...env, ...vars };
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Live child processes of this process running the fake nvidia-smi (from /proc). */
export function fakeChildren(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) !== process.pid || rest[0] === 'Z') continue;
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('fake-nvidia-smi')) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
