/**
 * The protocol schemas, the documentation examples, and the generated JSON Schema file.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AgentMessageSchema,
  CommandSchema,
  CoordinatorMessageSchema,
  decodeAgentMessage,
  decodeCoordinatorMessage,
  HeartbeatMessageSchema,
  MODEL_NAME_PATTERN,
  protocolJsonSchema,
  PROTOCOL_VERSION,
  truncateUtf8,
} from '../../src/coordinator/protocol.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const markdown = readFileSync(path.join(ROOT, 'docs/coordinator-protocol.md'), 'utf8');
const examples = [...markdown.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);

describe('model names', () => {
  it('accepts repository names and refuses paths', () => {
    for (const ok of ['add_sub', 'mlp', 'text_direction', 'Model-1.2', 'a', '9', 'x'.repeat(128), 'a..b']) {
      expect(MODEL_NAME_PATTERN.test(ok), ok).toBe(true);
      expect(CommandSchema.safeParse({ type: 'load_model', model: ok }).success, ok).toBe(true);
    }
    for (const bad of ['../x', '/etc/passwd', 'a/b', 'a\\b', '.hidden', '..', '', ' x', 'x y', 'x'.repeat(129), 'é', '-x', '_x', 'a\n']) {
      expect(MODEL_NAME_PATTERN.test(bad), JSON.stringify(bad)).toBe(false);
      expect(CommandSchema.safeParse({ type: 'unload_model', model: bad }).success, bad).toBe(false);
    }
  });
});

describe('schemas', () => {
  it('has one discriminated union per direction', () => {
    expect(PROTOCOL_VERSION).toBe(1);
    expect(Object.keys(AgentMessageSchema.def.options.map((o) => o.shape.type.value)).length).toBe(5);
    expect(AgentMessageSchema.def.options.map((o) => o.shape.type.value).sort()).toEqual(['command_result', 'error', 'event', 'heartbeat', 'register']);
    expect(CoordinatorMessageSchema.def.options.map((o) => o.shape.type.value).sort()).toEqual(['command', 'error', 'registered']);
    expect(CommandSchema.def.options.map((o) => o.shape.type.value).sort()).toEqual(['cordon', 'drain', 'load_model', 'ping', 'rollback_model', 'uncordon', 'unload_model']);
  });

  it('requires error exactly when a command_result is not ok', () => {
    const r = (o: object) => AgentMessageSchema.safeParse({ type: 'command_result', id: 'x', ...o }).success;
    expect(r({ ok: true })).toBe(true);
    expect(r({ ok: false, error: 'why' })).toBe(true);
    expect(r({ ok: false })).toBe(false);
    expect(r({ ok: true, error: 'why' })).toBe(false);
  });

  it('ignores unknown fields but passes telemetry extras through', () => {
    const hb = HeartbeatMessageSchema.parse({
      type: 'heartbeat', seq: 1, at: 0, nodeState: 'ready', extra: true,
      telemetry: { gpus: [{ index: 0, smClockMHz: 1980 }], host: { cpuPercent: 3 } },
      models: [],
    });
    expect(hb).not.toHaveProperty('extra');
    expect(hb.telemetry).toEqual({ gpus: [{ index: 0, smClockMHz: 1980 }], host: { cpuPercent: 3 } });
  });

  it('decodes without throwing, saying what is wrong', () => {
    expect(decodeAgentMessage('{')).toMatchObject({ ok: false, code: 'bad_json' });
    expect(decodeAgentMessage('null')).toMatchObject({ ok: false, code: 'invalid_message' });
    expect(decodeAgentMessage('{"id":"a"}')).toMatchObject({ ok: false, code: 'invalid_message', id: 'a' });
    expect(decodeAgentMessage('{"type":"command"}')).toMatchObject({ ok: false, code: 'unknown_type', type: 'command' });
    expect(decodeCoordinatorMessage('{"type":"heartbeat"}')).toMatchObject({ ok: false, code: 'unknown_type' });
    const bad = decodeCoordinatorMessage(JSON.stringify({ type: 'command', id: 'c', command: { type: 'load_model', model: '../x' } }));
    expect(bad).toMatchObject({ ok: false, code: 'invalid_message', type: 'command', id: 'c' });
    expect(!bad.ok && bad.message).toMatch(/^invalid 'command' message: command\.model: must be a model name/);
    expect(decodeCoordinatorMessage(JSON.stringify({ type: 'command', id: 'c', command: { type: 'ping' } }))).toEqual({
      ok: true,
      message: { type: 'command', id: 'c', command: { type: 'ping' } },
    });
  });

  it('truncates close reasons to a byte budget', () => {
    expect(truncateUtf8('short', 123)).toBe('short');
    for (const s of ['x'.repeat(500), 'é'.repeat(200), '😀'.repeat(100)]) {
      const t = truncateUtf8(s, 123);
      expect(Buffer.byteLength(t)).toBeLessThanOrEqual(123);
      expect(t.endsWith('…')).toBe(true);
    }
  });
});

describe('docs/coordinator-protocol.md', () => {
  it('has only valid messages in its JSON examples, covering every message, command and event', () => {
    expect(examples.length).toBeGreaterThan(10);
    const agentTypes = new Set(['register', 'heartbeat', 'event', 'command_result']);
    for (const ex of examples) {
      const schema = agentTypes.has(String(ex.type)) ? AgentMessageSchema : CoordinatorMessageSchema;
      const parsed = schema.safeParse(ex);
      expect(parsed.success, `${JSON.stringify(ex)}: ${parsed.error?.message}`).toBe(true);
      if (ex.type === 'error') expect(AgentMessageSchema.safeParse(ex).success).toBe(true);
    }
    const types = new Set(examples.map((e) => e.type));
    for (const t of ['register', 'heartbeat', 'event', 'command_result', 'error', 'registered', 'command']) expect(types, t).toContain(t);
    const commands = new Set(examples.filter((e) => e.type === 'command').map((e) => (e.command as { type: string }).type));
    expect([...commands].sort()).toEqual(['cordon', 'drain', 'load_model', 'ping', 'rollback_model', 'uncordon', 'unload_model']);
    const kinds = new Set(examples.filter((e) => e.type === 'event').map((e) => (e.event as { kind: string }).kind));
    expect([...kinds].sort()).toEqual(['gpu_error', 'model_load_failed', 'model_state', 'node_state']);
    expect(examples.some((e) => e.type === 'command_result' && e.ok === false)).toBe(true);
  });
});

describe('docs/coordinator-protocol.schema.json', () => {
  const file = JSON.parse(readFileSync(path.join(ROOT, 'docs/coordinator-protocol.schema.json'), 'utf8'));

  it('is up to date with the zod schemas (regenerate: npm run build && node scripts/gen-protocol-docs.mjs)', () => {
    expect(file).toEqual(JSON.parse(JSON.stringify(protocolJsonSchema())));
  });

  it('validates the same examples as zod (checked with ajv when available)', async () => {
    let Ajv2020: any;
    try {
      const mod: any = await import('ajv/dist/2020.js' as string);
      Ajv2020 = mod.default ?? mod.Ajv2020;
    } catch {
      return; // ajv is fastify's dependency, not ours; without it this check is skipped
    }
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(file);
    for (const ex of examples) expect(validate(ex), `${JSON.stringify(ex)}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    const invalid = [
      { type: 'command', id: 'c', command: { type: 'load_model', model: '../x' } },
      { type: 'command_result', id: 'c', ok: false },
      { type: 'command_result', id: 'c', ok: true, error: 'x' },
      { type: 'heartbeat', seq: 0, at: 0, nodeState: 'ready', telemetry: null, models: [] },
      { type: 'nope' },
    ];
    for (const ex of invalid) expect(validate(ex), JSON.stringify(ex)).toBe(false);
  });
});
