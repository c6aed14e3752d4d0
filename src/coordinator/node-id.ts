/**
 * The node's identity: a random UUID created once and kept in `<stateDir>/node-id`, so a
 * restarted agent is the same node to the coordinator (its session id is new every process).
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ID_PATTERN } from './protocol.js';

export const NODE_ID_FILE = 'node-id';

/**
 * Read the node id from `<stateDir>/node-id`, creating the folder and the file (a random UUID)
 * on first use. The file is written beside and then linked into place, so a crash never leaves
 * a half-written id and two agents starting at once on one state dir end with the same id.
 * Throws when the file exists but holds no valid id (delete it to get a new identity).
 */
export async function loadOrCreateNodeId(stateDir: string): Promise<string> {
  const file = path.join(stateDir, NODE_ID_FILE);
  const existing = await readId(file);
  if (existing !== undefined) return existing;
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const id = randomUUID();
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  await fs.writeFile(tmp, `${id}\n`, { mode: 0o644 });
  try {
    await fs.link(tmp, file);
    return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readId(file);
    if (winner === undefined) throw new Error(`${file} vanished while it was being created`);
    return winner;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

async function readId(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const id = text.trim();
  if (!ID_PATTERN.test(id)) {
    throw new Error(`${file} does not hold a valid node id (${JSON.stringify(id.slice(0, 40))}); delete it to give this node a new identity`);
  }
  return id;
}
