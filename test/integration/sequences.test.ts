/**
 * Sequence batching over real HTTP with real onnxruntime: NVIDIA's simple_sequence client's
 * values, the implicit-state accumulator (every control form), every error, idle expiry, unload,
 * and Silero VAD: 16 concurrent streams whose probabilities equal the model run directly in a
 * loop with its state carried by hand, with chunks of different streams merged in batches.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSequenceModels } from '../../scripts/sequence-models.mjs';
import { fetchSileroVad, sileroModelPath } from '../../scripts/fetch-silero-vad.mjs';
import { synthSpeech } from '../../scripts/synth-speech-wav.mjs';
import { AgentNodeController } from '../../src/node-controller.js';
import { binaryBody, getJson, postJson, readBinaryResponse, startAgent, type RunningAgent } from '../helpers/agent.js';

process.env.ORT_DISABLE_TELEMETRY = '1';

function intInput(v: number) {
  return { inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1], data: [v] }] };
}

async function seq(url: string, model: string, v: number, parameters: Record<string, unknown>) {
  return postJson(`${url}/v2/models/${model}/infer`, { ...intInput(v), parameters });
}

describe('sequence models (generated)', () => {
  let agent: RunningAgent;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-seq-'));
    await generateSequenceModels(dir, { idleUs: 300_000, maxCandidates: 3 });
    agent = await startAgent(dir);
  });
  afterAll(async () => agent?.close());

  it("NVIDIA's simple_sequence config loads and gives what simple_http_sequence_sync_infer_client.py checks", async () => {
    const values = [11, 7, 5, 3, 2, 0, 1];
    const send = async (id: number | string, first: number, sign: number) => {
      const all = [first, ...values.map((v) => v * sign)];
      const out: number[] = [];
      for (const [i, v] of all.entries()) {
        const r = await seq(agent.url, 'simple_sequence', v, { sequence_id: id, sequence_start: i === 0, sequence_end: i === all.length - 1 });
        expect(r.status).toBe(200);
        out.push(r.json.outputs[0].data[0]);
      }
      return out;
    };
    const [r0, r1, rs] = await Promise.all([send(1000, 0, 1), send(1001, 100, -1), send('4f1c2e7a-uuid-like', 20, -1)]);
    for (let i = 0; i < r0.length; i++) {
      expect(r0[i]).toBe(i === 0 ? 1 : values[i - 1]);
      expect(r1[i]).toBe(i === 0 ? 101 : 0 - values[i - 1]!);
      expect(rs[i]).toBe(i === 0 ? 21 : 0 - values[i - 1]!);
    }
  });

  it('implicit state: the accumulator returns the running sum since START; CORRID, END (bool) and READY (fp32) are fed', async () => {
    const values = [0, 11, 7, 5, 3, 2, 0, 1];
    let sum = 0;
    for (const [i, v] of values.entries()) {
      const r = await seq(agent.url, 'sequence_accumulator', v, { sequence_id: 77, sequence_start: i === 0, sequence_end: i === values.length - 1 });
      expect(r.status).toBe(200);
      sum += v;
      const out = new Map<string, unknown>(r.json.outputs.map((o: any) => [o.name, o.data[0]]));
      expect(out.get('OUTPUT')).toBe(sum);
      expect(out.get('CORRID_OUT')).toBe(77);
      expect(out.get('END_OUT')).toBe(i === values.length - 1);
      expect(out.get('READY_OUT')).toBe(1);
    }
    // a new START resets the state
    const again = await seq(agent.url, 'sequence_accumulator', 5, { sequence_id: 77, sequence_start: true });
    expect(again.json.outputs[0].data[0]).toBe(5);
    expect((await seq(agent.url, 'sequence_accumulator', 1, { sequence_id: 77, sequence_end: true })).json.outputs[0].data[0]).toBe(6);
  });

  it('binary requests: integer id through the binary extension', async () => {
    let last = 0;
    for (const [i, v] of [4, 5, 6].entries()) {
      const h = { inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1], parameters: { binary_data_size: 4 } }], outputs: [{ name: 'OUTPUT', parameters: { binary_data: true } }], parameters: { sequence_id: 9, sequence_start: i === 0, sequence_end: i === 2 } };
      const { body, headerLength } = binaryBody(h, [Int32Array.of(v)]);
      const res = await fetch(`${agent.url}/v2/models/sequence_accumulator/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body });
      expect(res.status).toBe(200);
      last = (await readBinaryResponse(res)).rest.readInt32LE(0);
    }
    expect(last).toBe(15);
  });

  it('every error has a reason: missing id, unknown sequence, second start, after end, string id for a numeric CORRID, batch of 2, bad flags', async () => {
    const m = 'sequence_accumulator';
    const missing = await postJson(`${agent.url}/v2/models/${m}/infer`, intInput(1));
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatch(/sequence model: every request needs the parameter 'sequence_id'/);
    const unknown = await seq(agent.url, m, 1, { sequence_id: 5555 });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toBe("sequence 5555 of model 'sequence_accumulator' is unknown (never started); send its first request with sequence_start: true");
    expect((await seq(agent.url, m, 1, { sequence_id: 6, sequence_start: true })).status).toBe(200);
    const twice = await seq(agent.url, m, 1, { sequence_id: 6, sequence_start: true });
    expect(twice.status).toBe(400);
    expect(twice.json.error).toMatch(/sequence 6 of model 'sequence_accumulator' is already live; end it/);
    expect((await seq(agent.url, m, 1, { sequence_id: 6, sequence_end: true })).status).toBe(200);
    const after = await seq(agent.url, m, 1, { sequence_id: 6 });
    expect(after.json.error).toMatch(/is ended \(its sequence_end request ran\)/);
    const str = await seq(agent.url, m, 1, { sequence_id: 'abc', sequence_start: true });
    expect(str.status).toBe(400);
    expect(str.json.error).toMatch(/takes integer sequence ids/);
    const two = await postJson(`${agent.url}/v2/models/${m}/infer`, { inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [2, 1], data: [1, 2] }], parameters: { sequence_id: 8, sequence_start: true } });
    expect(two.status).toBe(400);
    expect(two.json.error).toMatch(/carries one chunk \(batch size 1\), got 2 rows/);
    const flag = await seq(agent.url, m, 1, { sequence_id: 8, sequence_start: 'yes' });
    expect(flag.status).toBe(400);
    expect(flag.json.error).toMatch(/'sequence_start' must be true or false/);
    const neg = await seq(agent.url, m, 1, { sequence_id: -3, sequence_start: true });
    expect(neg.json.error).toMatch(/'sequence_id' must be a non-zero unsigned integer or a non-empty string/);
  });

  it('too many live sequences: 429 with Retry-After, naming max_candidate_sequences; a slot frees at sequence_end', async () => {
    const m = 'sequence_accumulator';
    for (const id of [101, 102, 103]) expect((await seq(agent.url, m, 1, { sequence_id: id, sequence_start: true })).status).toBe(200);
    const full = await seq(agent.url, m, 1, { sequence_id: 104, sequence_start: true });
    expect(full.status).toBe(429);
    expect(full.headers.get('retry-after')).toBe('1');
    expect(full.json.error).toMatch(/max_candidate_sequences \(3\) sequences are live/);
    expect((await seq(agent.url, m, 1, { sequence_id: 101, sequence_end: true })).status).toBe(200);
    expect((await seq(agent.url, m, 1, { sequence_id: 104, sequence_start: true })).status).toBe(200);
    for (const id of [102, 103, 104]) expect((await seq(agent.url, m, 1, { sequence_id: id, sequence_end: true })).status).toBe(200);
  });

  it('a sequence idle past max_sequence_idle_microseconds expires: its next request is told so; stats and metrics count it', async () => {
    const m = 'sequence_accumulator';
    expect((await seq(agent.url, m, 1, { sequence_id: 300, sequence_start: true })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 700)); // idle timeout is 300 ms in this repository
    const late = await seq(agent.url, m, 1, { sequence_id: 300 });
    expect(late.status).toBe(400);
    expect(late.json.error).toMatch(/sequence 300 of model 'sequence_accumulator' is expired \(idle for more than max_sequence_idle_microseconds 300000\)/);
    const stats = (await getJson(`${agent.url}/v2/models/${m}/stats`)).json.model_stats[0].sequence_stats;
    expect(stats.sequence_timeouts).toBeGreaterThanOrEqual(1);
    expect(stats.live_sequences).toBe(0);
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    expect(metrics).toMatch(/gpu_agent_sequence_timeouts_total\{model="sequence_accumulator",version="1"\} [1-9]/);
    expect(metrics).toMatch(/gpu_agent_sequences_live\{model="sequence_accumulator",version="1"\} 0/);
  });

  it('unloading a model ends its live sequences: the next request of each is told why', async () => {
    const m = 'simple_sequence';
    expect((await seq(agent.url, m, 1, { sequence_id: 1, sequence_start: true })).status).toBe(200);
    expect((await postJson(`${agent.url}/v2/repository/models/${m}/unload`, {})).status).toBe(200);
    const gone = await seq(agent.url, m, 1, { sequence_id: 1 });
    expect(gone.status).toBeGreaterThanOrEqual(400);
    expect(gone.json.error).toMatch(/simple_sequence/);
    expect((await postJson(`${agent.url}/v2/repository/models/${m}/load`, {})).status).toBe(200);
    const reloaded = await seq(agent.url, m, 1, { sequence_id: 1 });
    expect(reloaded.status).toBe(400);
    expect(reloaded.json.error).toMatch(/sequence 1 of model 'simple_sequence' is unknown \(never started\); send its first request with sequence_start: true/);
  });
});

describe('Silero VAD: 16 concurrent streams over HTTP', () => {
  let agent: RunningAgent;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-vad-'));
    await fetchSileroVad(dir);
    agent = await startAgent(dir);
  });
  afterAll(async () => agent?.close());

  it("each chunk's probability equals the model run directly with the state carried by hand; chunks of different streams batch together", async () => {
    const STREAMS = 16;
    const CHUNKS = 40;
    const signals = Array.from({ length: STREAMS }, (_, s) => synthSpeech(CHUNKS * 512 / 16000 + 0.1, 100 + s).samples);
    // Direct: one session, one stream at a time, h/c carried by hand.
    const session = await ort.InferenceSession.create(sileroModelPath());
    const direct: number[][] = [];
    for (const x of signals) {
      let h: Float32Array<ArrayBufferLike> = new Float32Array(128);
      let c: Float32Array<ArrayBufferLike> = new Float32Array(128);
      const probs: number[] = [];
      for (let k = 0; k < CHUNKS; k++) {
        const r = await session.run({
          input: new ort.Tensor('float32', x.slice(k * 512, (k + 1) * 512), [1, 512]),
          sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
          h: new ort.Tensor('float32', h, [2, 1, 64]),
          c: new ort.Tensor('float32', c, [2, 1, 64]),
        });
        h = r.hn!.data as Float32Array;
        c = r.cn!.data as Float32Array;
        probs.push((r.output!.data as Float32Array)[0]!);
      }
      direct.push(probs);
    }
    await session.release();
    // Through the agent: 16 streams at once, each its own sequence, chunks in order.
    const served = await Promise.all(signals.map(async (x, s) => {
      const probs: number[] = [];
      for (let k = 0; k < CHUNKS; k++) {
        const r = await postJson(`${agent.url}/v2/models/silero_vad/infer`, {
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 512], data: Array.from(x.subarray(k * 512, (k + 1) * 512)) }],
          parameters: { sequence_id: 500 + s, sequence_start: k === 0, sequence_end: k === CHUNKS - 1 },
        });
        expect(r.status).toBe(200);
        probs.push(r.json.outputs[0].data[0]);
      }
      return probs;
    }));
    for (let s = 0; s < STREAMS; s++) {
      for (let k = 0; k < CHUNKS; k++) expect(served[s]![k]).toBeCloseTo(direct[s]![k]!, 4);
    }
    // the signal is speech-like: some chunks are speech
    expect(direct.flat().some((p) => p > 0.5)).toBe(true);
    const stats = (await getJson(`${agent.url}/v2/models/silero_vad/stats`)).json.model_stats[0];
    expect(stats.sequence_stats.sequence_starts).toBe(STREAMS);
    expect(stats.sequence_stats.sequence_ends).toBe(STREAMS);
    expect(stats.sequence_stats.merged_batches).toBeGreaterThan(0);
    expect(stats.batch_stats.some((b: any) => b.batch_size > 1)).toBe(true);
    expect(stats.inference_count).toBe(STREAMS * CHUNKS);
  });

  it('the coordinator heartbeat carries live sequences per model', async () => {
    for (const id of [1, 2, 3]) {
      const r = await postJson(`${agent.url}/v2/models/silero_vad/infer`, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 512], data: new Array(512).fill(0) }], parameters: { sequence_id: id, sequence_start: true } });
      expect(r.status).toBe(200);
    }
    const beat = new AgentNodeController(agent.agent).heartbeat();
    expect(beat.models.find((m) => m.name === 'silero_vad')?.liveSequences).toBe(3);
  });

  it('the client sees only input and output; sr, h and c are the agent\'s', async () => {
    const meta = (await getJson(`${agent.url}/v2/models/silero_vad`)).json;
    expect(meta.inputs.map((i: any) => i.name)).toEqual(['input']);
    expect(meta.outputs.map((o: any) => o.name)).toEqual(['output']);
  });
});
