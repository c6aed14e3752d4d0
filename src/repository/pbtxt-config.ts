/**
 * config.pbtxt → the JSON ModelConfig that model-config.ts validates. The text format has
 * no schema, so this file knows which ModelConfig fields are repeated and which are maps;
 * validation errors are then reported with the line of the field in the .pbtxt file.
 */
import type { z } from 'zod';
import { fieldLine, isPbMessage, parsePbtxt, type PbMessage, type PbValue } from './pbtxt.js';
import { formatConfigIssues, ModelConfigSchema, type ModelConfig } from './model-config.js';

/** Fields of ModelConfig (and its nested messages) that are `repeated` in model_config.proto. */
const REPEATED = new Set(['input', 'output', 'dims', 'preferred_batch_size', 'instance_group', 'gpus', 'versions', 'mean', 'std', 'pad_color', 'center', 'background']);
/** `map<string, ...>` fields, written as `parameters { key: "k" value: { ... } }` entries. */
const MAPS = new Set(['parameters']);

function convertValue(v: PbValue): unknown {
  if (typeof v !== 'object') return v;
  if (!isPbMessage(v)) return v.enum;
  return convertMessage(v);
}

function convertMessage(msg: PbMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, values] of Object.entries(msg)) {
    if (MAPS.has(field)) {
      const map: Record<string, unknown> = {};
      values.forEach((entry, i) => {
        if (typeof entry !== 'object' || !isPbMessage(entry) || entry.key?.length !== 1 || entry.value?.length !== 1) {
          throw new Error(`line ${fieldLine(msg, field, i) ?? '?'}: field '${field}' entries are written { key: "..." value: { string_value: "..." } }`);
        }
        map[String(convertValue(entry.key[0]!))] = convertValue(entry.value[0]!);
      });
      out[field] = map;
    } else if (REPEATED.has(field)) {
      out[field] = values.map(convertValue);
    } else {
      if (values.length > 1) {
        throw new Error(
          `field '${field}' is given ${values.length} times (lines ${values.map((_, i) => fieldLine(msg, field, i)).join(', ')}); it takes one value`,
        );
      }
      out[field] = convertValue(values[0]!);
    }
  }
  return out;
}

/** The line in the .pbtxt source of a validation issue's path, as far as it can be followed. */
function lineOfPath(root: PbMessage, path: readonly PropertyKey[]): number | undefined {
  let msg: PbMessage = root;
  let line: number | undefined;
  for (let i = 0; i < path.length; i++) {
    const field = String(path[i]);
    const next = path[i + 1];
    if (MAPS.has(field) && typeof next === 'string') {
      // A map key: the line of the entry with that key, then into its value.
      const entries = msg[field] ?? [];
      const k = entries.findIndex((e) => typeof e === 'object' && isPbMessage(e) && e.key?.[0] === next);
      line = fieldLine(msg, field, Math.max(k, 0)) ?? line;
      const entry = k < 0 ? undefined : (entries[k] as PbMessage);
      if (entry && i + 2 < path.length) line = fieldLine(entry, 'value') ?? line;
      const value = entry?.value?.[0];
      if (!value || typeof value !== 'object' || !isPbMessage(value)) break;
      msg = value;
      i++;
      continue;
    }
    const index = typeof next === 'number' && REPEATED.has(field) ? next : 0;
    line = fieldLine(msg, field, index) ?? line;
    const value = msg[field]?.[index];
    if (!value || typeof value !== 'object' || !isPbMessage(value)) break;
    msg = value;
    if (typeof next === 'number') i++;
  }
  return line;
}

/** Parse and validate a config.pbtxt; errors name the file, the line, the field and the fix. */
export function parsePbtxtConfig(file: string, text: string): ModelConfig {
  let root: PbMessage;
  let json: Record<string, unknown>;
  try {
    root = parsePbtxt(text);
    json = convertMessage(root);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const r = ModelConfigSchema.safeParse(json);
  if (r.success) return r.data;
  const issues = r.error.issues.map((issue) => {
    // An unknown field is reported on the message that holds it: point at the field itself.
    const path = issue.code === 'unrecognized_keys' && issue.keys.length ? [...issue.path, issue.keys[0]!] : issue.path;
    const line = lineOfPath(root, path);
    const where = line === undefined ? file : `${file} line ${line}`;
    return formatConfigIssues(where, { issues: [issue] } as z.ZodError);
  });
  throw new Error(issues.join('; '));
}
