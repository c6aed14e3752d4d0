/** Character dictionaries (PaddleOCR's ppocr_keys_v1.txt) and label files: one entry per line. */
import { readFile } from 'node:fs/promises';

/**
 * Entries of a one-per-line file. Line ends are \n or \r\n; a final newline does not add an
 * empty entry. Other whitespace is kept: a dictionary may contain a space character.
 */
export function parseDictionary(text: string): string[] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lines = body.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Read a dictionary or labels file (UTF-8). Errors name the file. */
export async function loadDictionary(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read dictionary '${file}': ${(err as Error).message}`, { cause: err });
  }
  const entries = parseDictionary(text);
  if (entries.length === 0) throw new Error(`dictionary '${file}' is empty; it needs one entry per line`);
  return entries;
}
