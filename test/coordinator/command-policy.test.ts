/** The command table, deduplication window (fake clock), result codes and path redaction. */
import { describe, expect, it } from 'vitest';
import { admitCommand, CommandDedup, redactPaths, resultCodeOf } from '../../src/coordinator/command-policy.js';
import { AgentError } from '../../src/errors.js';
import { FakeClock } from '../../src/util/clock.js';

describe('admitCommand', () => {
  it('refuses load_model while draining and runs everything else in every state', () => {
    expect(admitCommand({ type: 'load_model', model: 'm' }, 'draining', [])).toMatchObject({ code: 'node_draining' });
    for (const state of ['ready', 'cordoned'] as const) expect(admitCommand({ type: 'load_model', model: 'm' }, state, [])).toBeUndefined();
    for (const state of ['ready', 'cordoned', 'draining'] as const) {
      for (const c of [{ type: 'unload_model', model: 'm' }, { type: 'cordon' }, { type: 'uncordon' }, { type: 'drain' }, { type: 'ping' }] as const) {
        expect(admitCommand(c, state, [])).toBeUndefined();
      }
    }
  });

  it('refuses load and unload of one model while the other runs; the same kind or another model runs', () => {
    const loading = [{ id: 'a', command: { type: 'load_model', model: 'm' } as const }];
    expect(admitCommand({ type: 'unload_model', model: 'm' }, 'ready', loading)).toMatchObject({ code: 'conflict', error: expect.stringMatching(/command a/) });
    expect(admitCommand({ type: 'load_model', model: 'm' }, 'ready', loading)).toBeUndefined();
    expect(admitCommand({ type: 'unload_model', model: 'other' }, 'ready', loading)).toBeUndefined();
    expect(admitCommand({ type: 'load_model', model: 'm' }, 'ready', [{ id: 'b', command: { type: 'unload_model', model: 'm' } }])).toMatchObject({ code: 'conflict' });
  });
});

describe('CommandDedup', () => {
  it('remembers a result for the window, then forgets it', () => {
    const clock = new FakeClock();
    const d = new CommandDedup(clock, 1_000);
    d.remember('x', { ok: true, code: 'ok' });
    clock.advance(999);
    expect(d.get('x')).toEqual({ ok: true, code: 'ok' });
    clock.advance(1);
    expect(d.get('x')).toBeUndefined();
  });

  it('keeps at most max entries, dropping the oldest', () => {
    const d = new CommandDedup(new FakeClock(), 60_000, 2);
    d.remember('a', { ok: true, code: 'ok' });
    d.remember('b', { ok: true, code: 'ok' });
    d.remember('c', { ok: false, code: 'failed', error: 'x' });
    expect(d.get('a')).toBeUndefined();
    expect(d.get('b')).toBeDefined();
    expect(d.get('c')).toMatchObject({ code: 'failed' });
  });
});

describe('resultCodeOf and redactPaths', () => {
  it('maps agent error codes to result codes', () => {
    expect(resultCodeOf(new AgentError('NOT_FOUND', 'x'))).toBe('not_found');
    expect(resultCodeOf(new AgentError('FAILED_PRECONDITION', 'x'))).toBe('failed_precondition');
    expect(resultCodeOf(new AgentError('UNAVAILABLE', 'x'))).toBe('unavailable');
    expect(resultCodeOf(new AgentError('INVALID_ARGUMENT', 'x'))).toBe('failed');
    expect(resultCodeOf(new Error('x'))).toBe('failed');
  });

  it('replaces absolute paths, keeps URLs and model names', () => {
    expect(redactPaths("model 'nope' is not in the model repository /srv/models")).toBe("model 'nope' is not in the model repository <path>");
    expect(redactPaths('could not create a session for /tmp/r/corrupt/1/model.onnx: bad')).toBe('could not create a session for <path>: bad');
    expect(redactPaths('C:\\models\\x failed')).toBe('<path> failed');
    expect(redactPaths('see http://10.0.0.5:8000/v2/models/a and model a/b')).toBe('see http://10.0.0.5:8000/v2/models/a and model a/b');
  });
});
