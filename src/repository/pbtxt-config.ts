/**
 * config.pbtxt → the JSON ModelConfig that model-config.ts validates. The conversion is
 * driven by the schema of Triton's ModelConfig message (triton-schema.ts): repeated fields
 * become lists, `map<...>` fields become objects, enum names and scalar types are checked
 * against the field's declared type. Fields Triton has but the agent does not implement are
 * refused by name afterwards (unsupported.ts); validation errors carry the line in the file.
 */
import type { z } from 'zod';
import { fieldLine, isPbMessage, parsePbtxt, type PbMessage, type PbValue } from './pbtxt.js';
import { formatConfigIssues, ModelConfigSchema, type ModelConfig } from './model-config.js';
import { ENUMS, MESSAGES, ONEOFS, type FieldDesc, type FieldType, type ScalarType } from './triton-schema.js';
import { checkUnsupported } from './unsupported.js';

/** Inside the agent's own free-form extensions (preprocess, postprocess, ocr): list-valued fields. */
const EXTENSION_LISTS = new Set(['mean', 'std', 'pad_color', 'center', 'background']);

class ConvertError extends Error {}

function where(msg: PbMessage, field: string, i = 0): string {
  const line = fieldLine(msg, field, i);
  return line === undefined ? '' : `line ${line}: `;
}

function describeValue(v: PbValue): string {
  if (typeof v === 'object') return isPbMessage(v) ? 'a message { ... }' : `'${v.enum}'`;
  return JSON.stringify(v);
}

const INT_RANGES: Partial<Record<ScalarType, [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  int64: [-(2 ** 63), 2 ** 63],
  uint64: [0, 2 ** 64],
};

function scalarValue(v: PbValue, type: ScalarType, field: string, at: string): unknown {
  const bad = (want: string): never => {
    throw new ConvertError(`${at}field '${field}' takes ${want}, found ${describeValue(v)}`);
  };
  switch (type) {
    case 'string':
      return typeof v === 'string' ? v : bad('a quoted string');
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (v === 0 || v === 1) return v === 1;
      return bad('true or false');
    case 'float':
    case 'double':
      if (typeof v === 'number') return v;
      if (typeof v === 'object' && !isPbMessage(v) && /^-?(inf|infinity|nan)$/i.test(v.enum)) {
        return v.enum.toLowerCase().includes('nan') ? NaN : v.enum.startsWith('-') ? -Infinity : Infinity;
      }
      return bad('a number');
    default: {
      const [min, max] = INT_RANGES[type]!;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`an integer (${type})`);
      return v;
    }
  }
}

function enumValue(v: PbValue, enumName: string, field: string, at: string): string {
  const names = ENUMS[enumName]!;
  if (typeof v === 'object' && !isPbMessage(v)) return v.enum; // an unknown name is named by validation
  if (typeof v === 'number') {
    const name = Object.entries(names).find(([, n]) => n === v)?.[0];
    if (name) return name;
  }
  throw new ConvertError(`${at}field '${field}' takes one of ${Object.keys(names).join(', ')}, found ${describeValue(v)}`);
}

function typedValue(v: PbValue, type: FieldType, field: string, at: string): unknown {
  switch (type.kind) {
    case 'scalar':
      return scalarValue(v, type.scalar, field, at);
    case 'enum':
      return enumValue(v, type.enum, field, at);
    case 'message':
      if (typeof v !== 'object' || !isPbMessage(v)) throw new ConvertError(`${at}field '${field}' is a message: write ${field} { ... }, found ${describeValue(v)}`);
      return convertMessage(v, type.message);
    case 'extension':
      return freeValue(v);
    case 'map':
      throw new ConvertError(`${at}field '${field}' is a map (this is a bug)`);
  }
}

/** A map field: `f { key: K value: V }` entries (or `f [ {...}, {...} ]`) → an object. */
function mapValue(msg: PbMessage, field: string, key: ScalarType, value: FieldType): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  (msg[field] ?? []).forEach((entry, i) => {
    const at = where(msg, field, i);
    const shape = value.kind !== 'message' ? '"..."' : value.message === 'ModelParameter' ? '{ string_value: "..." }' : '{ ... }';
    if (typeof entry !== 'object' || !isPbMessage(entry) || entry.key?.length !== 1 || entry.value?.length !== 1
      || Object.keys(entry).some((k) => k !== 'key' && k !== 'value')) {
      throw new ConvertError(`${at}field '${field}' entries are written { key: ${key === 'string' ? '"..."' : 'N'} value: ${shape} }`);
    }
    const k = String(scalarValue(entry.key[0]!, key, `${field}.key`, at));
    if (k in out) throw new ConvertError(`${at}field '${field}' has the key '${k}' twice`);
    out[k] = typedValue(entry.value[0]!, value, `${field}[${k}]`, at);
  });
  return { ...out };
}

function convertMessage(msg: PbMessage, type: string): Record<string, unknown> {
  const fields = MESSAGES[type]!;
  const out: Record<string, unknown> = {};
  for (const [field, values] of Object.entries(msg)) {
    const desc: FieldDesc | undefined = fields[field];
    if (!desc) {
      // Not a field of Triton's message: kept as given, so validation names it with its line.
      out[field] = values.length === 1 ? freeValue(values[0]!) : values.map((v) => freeValue(v));
      continue;
    }
    if (desc.type.kind === 'map') {
      out[field] = mapValue(msg, field, desc.type.key, desc.type.value);
    } else if (desc.repeated) {
      out[field] = values.map((v, i) => typedValue(v, desc.type, field, where(msg, field, i)));
    } else {
      if (values.length > 1) {
        throw new ConvertError(
          `field '${field}' is given ${values.length} times (lines ${values.map((_, i) => fieldLine(msg, field, i)).join(', ')}); it takes one value`,
        );
      }
      out[field] = typedValue(values[0]!, desc.type, field, where(msg, field));
    }
  }
  for (const group of ONEOFS[type] ?? []) {
    const set = group.filter((f) => f in out);
    if (set.length > 1) {
      throw new ConvertError(`${where(msg, set[1]!)}fields ${set.map((f) => `'${f}'`).join(' and ')} of ${type} are alternatives (one of ${group.join(', ')}); keep one`);
    }
  }
  return out;
}

/** Schema-less conversion, for the agent's extensions and for fields Triton does not have. */
function freeValue(v: PbValue): unknown {
  if (typeof v !== 'object') return v;
  if (!isPbMessage(v)) return v.enum;
  const out: Record<string, unknown> = {};
  for (const [f, values] of Object.entries(v)) {
    if (EXTENSION_LISTS.has(f)) out[f] = values.map((x) => freeValue(x));
    else if (values.length > 1) {
      throw new ConvertError(`field '${f}' is given ${values.length} times (lines ${values.map((_, i) => fieldLine(v, f, i)).join(', ')}); it takes one value`);
    } else out[f] = freeValue(values[0]!);
  }
  return out;
}

/** The line in the .pbtxt source of a validation issue's path, as far as it can be followed. */
export function lineOfPath(root: PbMessage, path: readonly PropertyKey[]): number | undefined {
  let msg: PbMessage = root;
  let type: string | undefined = 'ModelConfig';
  let line: number | undefined;
  for (let i = 0; i < path.length; i++) {
    const field = String(path[i]);
    const next = path[i + 1];
    const desc: FieldDesc | undefined = type ? MESSAGES[type]?.[field] : undefined;
    if (desc?.type.kind === 'map' && next !== undefined) {
      // A map key: the line of the entry with that key, then into its value.
      const entries = msg[field] ?? [];
      const k = entries.findIndex((e) => typeof e === 'object' && isPbMessage(e) && String(e.key?.[0]) === String(next));
      line = fieldLine(msg, field, Math.max(k, 0)) ?? line;
      const entry = k < 0 ? undefined : (entries[k] as PbMessage);
      if (entry && i + 2 < path.length) line = fieldLine(entry, 'value') ?? line;
      const value = entry?.value?.[0];
      if (!value || typeof value !== 'object' || !isPbMessage(value)) break;
      msg = value;
      type = desc.type.value.kind === 'message' ? desc.type.value.message : undefined;
      i++;
      continue;
    }
    const index = typeof next === 'number' && (desc?.repeated ?? false) ? next : 0;
    line = fieldLine(msg, field, index) ?? line;
    const value = msg[field]?.[index];
    if (!value || typeof value !== 'object' || !isPbMessage(value)) break;
    msg = value;
    type = desc?.type.kind === 'message' ? desc.type.message : undefined;
    if (typeof next === 'number') i++;
  }
  return line;
}

/** config.pbtxt text → Triton's JSON form, checked against the ModelConfig schema only (no agent rules). */
export function pbtxtToJson(text: string): { root: PbMessage; json: Record<string, unknown> } {
  const root = parsePbtxt(text);
  return { root, json: convertMessage(root, 'ModelConfig') };
}

/** Parse and validate a config.pbtxt; errors name the file, the line, the field and the fix. */
export function parsePbtxtConfig(file: string, text: string): ModelConfig {
  let root: PbMessage;
  let json: Record<string, unknown>;
  try {
    ({ root, json } = pbtxtToJson(text));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  checkUnsupported(json, (path) => {
    const line = lineOfPath(root, path);
    return line === undefined ? file : `${file} line ${line}`;
  });
  const r = ModelConfigSchema.safeParse(json);
  if (r.success) return r.data;
  const issues = r.error.issues.map((issue) => {
    // An unknown field is reported on the message that holds it: point at the field itself.
    const path = issue.code === 'unrecognized_keys' && issue.keys.length ? [...issue.path, issue.keys[0]!] : issue.path;
    const line = lineOfPath(root, path);
    const at = line === undefined ? file : `${file} line ${line}`;
    return formatConfigIssues(at, { issues: [issue] } as z.ZodError);
  });
  throw new Error(issues.join('; '));
}
