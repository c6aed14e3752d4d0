/**
 * The onnxruntime threading and batching-policy settings: global flags, per-model parameters
 * (Triton's `parameters` map), what reaches onnxruntime's session options, and the sub-ms timer.
 */
import { describe, expect, it } from 'vitest';
import { sessionDefaults } from '../../src/agent.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { autoIntraOpThreads, ortOptions, type TensorSignature } from '../../src/execution/ort-session.js';
import { parseModelConfig } from '../../src/repository/model-config.js';
import { completeModelSpec, sessionSettingsFor } from '../../src/sessions/model-spec.js';
import { systemClock } from '../../src/util/clock.js';

const config = ConfigSchema.parse({ providers: 'cpu' });
const defaults = sessionDefaults(config);
const sig: { inputs: TensorSignature[]; outputs: TensorSignature[] } = {
  inputs: [{ name: 'x', datatype: 'FP32', ortType: 'float32', shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32', ortType: 'float32', shape: [-1, 4] }],
};
const params = (p: Record<string, string>) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, { string_value: v }]));

describe('onnxruntime threading settings', () => {
  it('defaults: spinning off, intra-op threads auto (cores - 1, at least 1), work-conserving batching', () => {
    expect(config.intraOpSpinning).toBe(false);
    expect(config.batchingPolicy).toBe('work_conserving');
    expect(autoIntraOpThreads(1)).toBe(1);
    expect(autoIntraOpThreads(2)).toBe(1);
    expect(autoIntraOpThreads(16)).toBe(15);
    const o = ortOptions(defaults, ['cpu']);
    expect(o.intraOpNumThreads).toBe(autoIntraOpThreads());
    expect(o.extra).toEqual({ session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } });
  });

  it('the global flag and the per-model parameter turn spinning on; explicit threads win', () => {
    const on = sessionDefaults(ConfigSchema.parse({ providers: 'cpu', intraOpSpinning: 'true', intraOpThreads: 3 }));
    expect(ortOptions(on, ['cpu'])).toMatchObject({ intraOpNumThreads: 3, extra: { session: { intra_op: { allow_spinning: '1' } } } });
    const cfg = parseModelConfig('m', { parameters: params({ 'session.intra_op.allow_spinning': '1', intra_op_thread_count: '2' }) });
    const s = sessionSettingsFor(cfg, defaults, 'm/config.pbtxt');
    expect(s.allowSpinning).toBe(true);
    expect(s.intraOpThreads).toBe(2);
  });

  it('a bad spinning value names the parameter and the fix', () => {
    const cfg = parseModelConfig('m', { parameters: params({ 'session.intra_op.allow_spinning': 'yes' }) });
    expect(() => sessionSettingsFor(cfg, defaults, 'm/config.pbtxt')).toThrow(/parameter 'session.intra_op.allow_spinning' must be "1" or "0", got 'yes'/);
  });
});

describe('batching policy settings', () => {
  const spec = (p: Record<string, string>, batchingPolicy?: 'work_conserving' | 'triton') =>
    completeModelSpec('m', 1, parseModelConfig('m', { max_batch_size: 8, dynamic_batching: { max_queue_delay_microseconds: 500 }, parameters: params(p) }), sig,
      defaults, { session: defaults, defaultMaxBatchSize: 16, ...(batchingPolicy ? { batchingPolicy } : {}) }, 'm/config.pbtxt');

  it('takes the agent default, and a model parameter overrides it', () => {
    expect(spec({}).batching).toMatchObject({ policy: 'work_conserving', maxQueueDelayMs: 0.5 });
    expect(spec({}, 'triton').batching.policy).toBe('triton');
    expect(spec({ batching_policy: 'triton' }).batching.policy).toBe('triton');
    expect(spec({ batching_policy: 'work_conserving' }, 'triton').batching.policy).toBe('work_conserving');
  });

  it('refuses an unknown policy with the choices', () => {
    expect(() => spec({ batching_policy: 'eager' })).toThrow(/parameter 'batching_policy' must be "work_conserving" or "triton", got 'eager'/);
  });
});

describe('systemClock sub-millisecond timers', () => {
  it('fire (on an event-loop turn, not a 1 ms timer) and can be cancelled', async () => {
    const fired: string[] = [];
    systemClock.setTimer(0.2, () => fired.push('sub-ms'));
    const cancel = systemClock.setTimer(0.2, () => fired.push('cancelled'));
    cancel();
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).toEqual(['sub-ms']);
  });
});
