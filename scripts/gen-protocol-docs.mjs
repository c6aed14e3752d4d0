#!/usr/bin/env node
/**
 * Writes docs/coordinator-protocol.schema.json from the zod schemas of the coordinator protocol
 * (src/coordinator/protocol.ts, compiled: run `npm run build` first).
 *
 *   node scripts/gen-protocol-docs.mjs           write the file
 *   node scripts/gen-protocol-docs.mjs --check   exit 1 if the file is missing or out of date
 *
 * docs/coordinator-protocol.md is written by hand; test/coordinator/protocol.test.ts checks that
 * each of its JSON examples is a valid message and that the schema file is up to date.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'dist/src/coordinator/protocol.js');
const target = path.join(root, 'docs/coordinator-protocol.schema.json');

if (!existsSync(compiled)) {
  console.error(`gen-protocol-docs: ${path.relative(root, compiled)} not found; run \`npm run build\` first`);
  process.exit(2);
}
const { protocolJsonSchema } = await import(pathToFileURL(compiled).href);
const text = `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`;

if (process.argv.includes('--check')) {
  const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (current !== text) {
    console.error(`gen-protocol-docs: ${path.relative(root, target)} is out of date; run node scripts/gen-protocol-docs.mjs`);
    process.exit(1);
  }
  console.log(`${path.relative(root, target)} is up to date`);
} else {
  writeFileSync(target, text);
  console.log(`wrote ${path.relative(root, target)}`);
}
