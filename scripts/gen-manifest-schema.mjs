#!/usr/bin/env node
/**
 * Writes docs/model-manifest.schema.json (next to the coordinator protocol's schema) from the
 * zod schema in src/sources/manifest.ts (compiled: run `npm run build` first).
 *
 *   node scripts/gen-manifest-schema.mjs           write the file
 *   node scripts/gen-manifest-schema.mjs --check   exit 1 if it is missing or out of date
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'dist/src/sources/manifest.js');
const target = path.join(root, 'docs/model-manifest.schema.json');
if (!existsSync(compiled)) {
  console.error(`gen-manifest-schema: ${path.relative(root, compiled)} not found; run \`npm run build\` first`);
  process.exit(2);
}
const { manifestJsonSchema } = await import(pathToFileURL(compiled).href);
const text = `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`;
if (process.argv.includes('--check')) {
  if ((existsSync(target) ? readFileSync(target, 'utf8') : '') !== text) {
    console.error(`gen-manifest-schema: ${path.relative(root, target)} is out of date; run node scripts/gen-manifest-schema.mjs`);
    process.exit(1);
  }
  console.log(`${path.relative(root, target)} is up to date`);
} else {
  writeFileSync(target, text);
  console.log(`wrote ${path.relative(root, target)}`);
}
