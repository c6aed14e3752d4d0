/**
 * The package root: the first folder up from this file with a package.json. The same folder
 * whether this runs as the .ts source (vitest) or built (dist/src/), and in the bundle and the
 * image, which ship package.json. Undefined only in a broken install; callers say what then.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

function find(): string | undefined {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT: string | undefined = find();
