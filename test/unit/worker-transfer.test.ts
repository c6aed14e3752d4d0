import { describe, expect, it } from 'vitest';
import { transferable } from '../../src/execution/worker-session.js';

describe('transferable (worker-thread session inputs)', () => {
  it('hands over a tensor that owns its whole buffer without copying it', () => {
    const data = new Float32Array([1, 2, 3]);
    const t = transferable(data);
    expect(t.data).toBe(data);
    expect(t.transfer).toBe(data.buffer);
  });

  it('copies a view into a larger buffer (a request body), leaving the original intact', () => {
    const body = Buffer.alloc(64, 1);
    const view = new Float32Array(body.buffer, body.byteOffset + 16, 4);
    const t = transferable(view);
    expect(t.data).not.toBe(view);
    expect(t.transfer).toBe((t.data as Float32Array).buffer);
    expect(Array.from(t.data as Float32Array)).toEqual(Array.from(view));
    // Node's shared pool (and the body) are never detached.
    expect(body.buffer.byteLength).toBeGreaterThan(0);
  });

  it('passes strings through (cloned, not transferred)', () => {
    const t = transferable(['a', 'b']);
    expect(t.transfer).toBeUndefined();
  });
});

describe('transferable, detached buffers', () => {
  it('fails loudly on an input already handed over (detached), instead of a run that never answers', () => {
    const data = new Float32Array(4);
    structuredClone(data.buffer, { transfer: [data.buffer] }); // detach it
    expect(data.byteLength).toBe(0);
    expect(() => transferable(data)).toThrow(/detached/);
  });
});
