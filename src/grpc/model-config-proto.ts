/**
 * proto/model_config.proto is generated from the one description of Triton's ModelConfig
 * message in this project (repository/triton-schema.ts, which the config.pbtxt reader uses),
 * so the gRPC ModelConfig answer and the config reader cannot disagree about a field.
 * `node scripts/gen-model-config-proto.mjs` rewrites the file; a unit test checks it is current.
 * The agent's own extension fields (preprocess, postprocess, ocr) have no number and are left out.
 */
import { ENUMS, MESSAGES, ONEOFS, type FieldDesc, type FieldType } from '../repository/triton-schema.js';

interface Scope {
  readonly name: string;
  readonly messages: Map<string, Scope>;
  readonly enums: string[];
  fullName: string;
}

function scopeTree(): Scope {
  const root: Scope = { name: '', messages: new Map(), enums: [], fullName: '' };
  const at = (path: string[]): Scope => {
    let s = root;
    for (let i = 0; i < path.length; i++) {
      let next = s.messages.get(path[i]!);
      if (!next) s.messages.set(path[i]!, (next = { name: path[i]!, messages: new Map(), enums: [], fullName: path.slice(0, i + 1).join('.') }));
      s = next;
    }
    return s;
  };
  for (const name of Object.keys(MESSAGES)) at(name.split('.'));
  for (const name of Object.keys(ENUMS)) {
    const parts = name.split('.');
    at(parts.slice(0, -1)).enums.push(name);
  }
  return root;
}

function typeName(t: FieldType): string {
  switch (t.kind) {
    case 'scalar': return t.scalar;
    case 'enum': return t.enum;
    case 'message': return t.message;
    default: throw new Error('no proto type for an extension field');
  }
}

function fieldLine(name: string, f: FieldDesc): string {
  if (f.type.kind === 'map') return `map<${f.type.key}, ${typeName(f.type.value)}> ${name} = ${f.number};`;
  return `${f.repeated ? 'repeated ' : ''}${typeName(f.type)} ${name} = ${f.number};`;
}

function emit(scope: Scope, indent: string, out: string[]): void {
  for (const e of scope.enums) {
    out.push(`${indent}enum ${e.split('.').pop()} {`);
    for (const [k, v] of Object.entries(ENUMS[e]!)) out.push(`${indent}  ${k} = ${v};`);
    out.push(`${indent}}`);
  }
  for (const child of scope.messages.values()) {
    out.push(`${indent}message ${child.name} {`);
    emit(child, indent + '  ', out);
    const fields = Object.entries(MESSAGES[child.fullName] ?? {}).filter(([, f]) => f.type.kind !== 'extension');
    const inOneof = new Set((ONEOFS[child.fullName] ?? []).flat());
    for (const [name, f] of fields) if (!inOneof.has(name)) out.push(`${indent}  ${fieldLine(name, f)}`);
    (ONEOFS[child.fullName] ?? []).forEach((group, i) => {
      out.push(`${indent}  oneof ${child.fullName.split('.').pop()!.replace(/[A-Z]/g, (c, j: number) => (j ? '_' : '') + c.toLowerCase())}_choice${i ? i : ''} {`);
      for (const name of group) out.push(`${indent}    ${fieldLine(name, MESSAGES[child.fullName]![name]!)}`);
      out.push(`${indent}  }`);
    });
    out.push(`${indent}}`);
  }
}

/** The text of proto/model_config.proto. */
export function modelConfigProto(): string {
  const out = [
    '// Triton\'s ModelConfig message (model_config.proto, package inference): names, numbers and',
    '// types as published. GENERATED from src/repository/triton-schema.ts by',
    '// scripts/gen-model-config-proto.mjs; do not edit by hand.',
    '',
    'syntax = "proto3";',
    '',
    'package inference;',
    '',
  ];
  emit(scopeTree(), '', out);
  return out.join('\n') + '\n';
}
