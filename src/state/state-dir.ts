/**
 * Where the agent keeps its state (the node id), when --state-dir is not given. In order:
 * 1. `$STATE_DIRECTORY`: systemd's `StateDirectory=gpu-agent` (the installed unit) sets it;
 * 2. `/var/lib/gpu-agent`: the installed service's home and the Docker image's volume;
 * 3. the XDG state directory of the user: `$XDG_STATE_HOME/gpu-agent`, else
 *    `~/.local/state/gpu-agent`.
 * The first one that exists and is writable, or can be created, is used. Never the working
 * directory: a service's (`/opt/gpu-agent`, `ProtectSystem=strict`) is read-only.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../config/load.js';

export const SYSTEM_STATE_DIR = '/var/lib/gpu-agent';

/** A configuration error: the CLI prints it on one line and exits 2. */
export class StateDirError extends ConfigError {}

export function stateDirCandidates(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string[] {
  const out: string[] = [];
  // systemd may pass several, colon-separated, for several StateDirectory= entries.
  if (env.STATE_DIRECTORY) out.push(env.STATE_DIRECTORY.split(':')[0]!);
  out.push(SYSTEM_STATE_DIR);
  if (env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME)) out.push(path.join(env.XDG_STATE_HOME, 'gpu-agent'));
  if (home) out.push(path.join(home, '.local', 'state', 'gpu-agent'));
  return out;
}

function usable(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** The given --state-dir (created if needed), or the first usable default; throws naming the flag. */
export function resolveStateDir(given: string | undefined, env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
  if (given !== undefined) {
    const why = usable(given);
    if (why) throw new StateDirError(`--state-dir ${given} is not writable (${why}); choose a writable folder with --state-dir (env GPU_AGENT_STATE_DIR)`);
    return path.resolve(given);
  }
  const tried: string[] = [];
  for (const dir of stateDirCandidates(env, home)) {
    const why = usable(dir);
    if (!why) return dir;
    tried.push(`${dir} (${why})`);
  }
  throw new StateDirError(`no writable state directory for the node id: tried ${tried.join(', ')}; set one with --state-dir (env GPU_AGENT_STATE_DIR)`);
}
