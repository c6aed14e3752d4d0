/**
 * `--model-control-mode poll`: the repository is scanned every --repository-poll-secs, as
 * Triton's poll mode does. A model folder that appears is loaded, one whose files changed
 * (any file's size or modification time, config included) is reloaded, one that disappears
 * is unloaded. A reload that fails keeps the old version serving (the manager's rule for
 * reloads) and is tried again only when the folder changes again.
 *
 * `diffRepository` is the pure part (tested alone); the poller only lists, diffs and acts.
 * One scan at a time: a slow load never overlaps the next scan.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../errors.js';
import type { ModelRepository } from './repository.js';

/** model name → fingerprint of its folder. */
export type RepositorySnapshot = ReadonlyMap<string, string>;

export interface RepositoryDiff {
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly removed: readonly string[];
}

export function diffRepository(before: RepositorySnapshot, after: RepositorySnapshot): RepositoryDiff {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [name, fp] of after) {
    const old = before.get(name);
    if (old === undefined) added.push(name);
    else if (old !== fp) changed.push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) removed.push(name);
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}

/** Sizes and modification times of every file under `dir` (3 levels: version folders and their contents). */
async function fingerprint(dir: string, depth = 3): Promise<string> {
  const parts: string[] = [];
  const walk = async (d: string, rel: string, left: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        parts.push(`${rel}${e.name}/`);
        if (left > 0) await walk(p, `${rel}${e.name}/`, left - 1);
      } else {
        const st = await stat(p).catch(() => undefined);
        if (st) parts.push(`${rel}${e.name}:${st.size}:${st.mtimeMs}`);
      }
    }
  };
  await walk(dir, '', depth);
  return parts.join('|');
}

export async function snapshotRepository(repository: ModelRepository): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of await repository.list()) out.set(m.name, await fingerprint(m.dir));
  return out;
}

export interface PollerDeps {
  readonly repository: ModelRepository;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly everyMs: number;
  readonly load: (name: string) => Promise<void>;
  readonly unload: (name: string) => Promise<void>;
}

export class RepositoryPoller {
  private seen: RepositorySnapshot = new Map();
  private cancel: (() => void) | undefined;
  private scanning: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly deps: PollerDeps) {}

  /** Take the repository as it is now as the starting point (after the startup loads). */
  async start(): Promise<void> {
    this.seen = await snapshotRepository(this.deps.repository);
    this.schedule();
  }

  /** One scan: load what appeared or changed, unload what went. Resolves when done. */
  scan(): Promise<void> {
    this.scanning = this.scanning.then(() => this.doScan());
    return this.scanning;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cancel?.();
    await this.scanning;
  }

  private schedule(): void {
    if (this.closed) return;
    this.cancel = this.deps.clock.setTimer(this.deps.everyMs, () => {
      void this.scan().finally(() => this.schedule());
    });
  }

  private async doScan(): Promise<void> {
    if (this.closed) return;
    const { logger } = this.deps;
    let now: Map<string, string>;
    try {
      now = await snapshotRepository(this.deps.repository);
    } catch (err) {
      logger.error({ err: messageOf(err) }, 'repository poll failed');
      return;
    }
    const diff = diffRepository(this.seen, now);
    this.seen = now;
    for (const name of [...diff.added, ...diff.changed]) {
      const what = diff.added.includes(name) ? 'new' : 'changed';
      logger.info({ model: name }, `repository poll: ${what} model folder; loading`);
      // A failed reload keeps the old version serving; the failure is in the index.
      await this.deps.load(name).catch((err: unknown) => logger.error({ model: name, err: messageOf(err) }, `repository poll: ${what} model failed to load`));
    }
    for (const name of diff.removed) {
      logger.info({ model: name }, 'repository poll: model folder removed; unloading');
      await this.deps.unload(name).catch((err: unknown) => logger.error({ model: name, err: messageOf(err) }, 'repository poll: unload failed'));
    }
  }
}
