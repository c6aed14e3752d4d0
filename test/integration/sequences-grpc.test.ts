/**
 * Sequence parameters over gRPC (real @grpc/grpc-js client, real agent, real onnxruntime):
 * ModelInfer with `sequence_id` as InferParameter int64_param, uint64_param or string_param,
 * `sequence_start`/`sequence_end` as bool_param, against the generated sequence models; the
 * values equal the HTTP path's. Errors carry their reason: a missing sequence_id is
 * INVALID_ARGUMENT, too many live sequences RESOURCE_EXHAUSTED.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSequenceModels } from '../../scripts/sequence-models.mjs';
import { postJson, startAgent, type RunningAgent } from '../helpers/agent.js';
import { buf, call, callError, freePort, grpc, grpcClient } from '../helpers/grpc.js';

let agent: RunningAgent;
let client: any;

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-seq-grpc-'));
  await generateSequenceModels(dir, { idleUs: 600_000_000, maxCandidates: 3 });
  agent = await startAgent(dir, { grpcPort: await freePort(), host: '127.0.0.1' });
  client = grpcClient(agent.agent.grpcAddress!);
}, 120_000);

afterAll(async () => {
  client?.close();
  await agent?.close();
});

type Param = { int64_param: string | number } | { uint64_param: string } | { string_param: string } | { bool_param: boolean };

function grpcChunk(model: string, v: number, parameters: Record<string, Param>) {
  return call(client, 'ModelInfer', {
    model_name: model,
    inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1] }],
    raw_input_contents: [buf(Int32Array.of(v))],
    parameters,
  });
}

/** The response's outputs by name, decoded from raw contents. */
function outputsOf(r: any): Map<string, number | bigint | boolean> {
  const out = new Map<string, number | bigint | boolean>();
  r.outputs.forEach((o: any, i: number) => {
    const b: Buffer = r.raw_output_contents[i];
    const v = o.datatype === 'INT32' ? b.readInt32LE(0) : o.datatype === 'UINT64' ? b.readBigUInt64LE(0) : o.datatype === 'BOOL' ? b[0] === 1 : o.datatype === 'FP32' ? b.readFloatLE(0) : NaN;
    out.set(o.name, v);
  });
  return out;
}

const flags = (i: number, n: number) => ({ sequence_start: { bool_param: i === 0 }, sequence_end: { bool_param: i === n - 1 } });
const values = [0, 11, 7, 5, 3, 2, 0, 1];

async function overHttp(model: string, id: number | string) {
  const outs: Record<string, unknown>[] = [];
  for (const [i, v] of values.entries()) {
    const r = await postJson(`${agent.url}/v2/models/${model}/infer`, {
      inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1], data: [v] }],
      parameters: { sequence_id: id, sequence_start: i === 0, sequence_end: i === values.length - 1 },
    });
    expect(r.status).toBe(200);
    outs.push(Object.fromEntries(r.json.outputs.map((o: any) => [o.name, o.data[0]])));
  }
  return outs;
}

describe('sequence parameters over gRPC', () => {
  it('sequence_id as int64_param (string and number forms) and uint64_param: the accumulator gives the HTTP values', async () => {
    const http = await overHttp('sequence_accumulator', 41);
    for (const id of [{ int64_param: '42' }, { int64_param: 43 }, { uint64_param: '44' }] as Param[]) {
      const n = Number(Object.values(id)[0]);
      let sum = 0;
      for (const [i, v] of values.entries()) {
        const out = outputsOf(await grpcChunk('sequence_accumulator', v, { sequence_id: id, ...flags(i, values.length) }));
        sum += v;
        expect(out.get('OUTPUT')).toBe(sum);
        expect(out.get('OUTPUT')).toBe(http[i]!.OUTPUT);
        expect(out.get('CORRID_OUT')).toBe(BigInt(n));
        expect(out.get('END_OUT')).toBe(http[i]!.END_OUT);
        expect(out.get('READY_OUT')).toBe(http[i]!.READY_OUT);
      }
    }
  });

  it('sequence_id as string_param: simple_sequence gives the HTTP values; the accumulator (numeric CORRID) refuses it with the reason', async () => {
    const http = await overHttp('simple_sequence', 'stream-a');
    for (const [i, v] of values.entries()) {
      const out = outputsOf(await grpcChunk('simple_sequence', v, { sequence_id: { string_param: 'stream-b' }, ...flags(i, values.length) }));
      expect(out.get('OUTPUT')).toBe(http[i]!.OUTPUT);
      expect(out.get('OUTPUT')).toBe(i === 0 ? v + 1 : v);
    }
    const e = await callError(client, 'ModelInfer', {
      model_name: 'sequence_accumulator', inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1] }], raw_input_contents: [buf(Int32Array.of(1))],
      parameters: { sequence_id: { string_param: 'abc' }, sequence_start: { bool_param: true } },
    });
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/takes integer sequence ids/);
  });

  it('a gRPC chunk continues a sequence started over HTTP (one sequence space per model)', async () => {
    const started = await postJson(`${agent.url}/v2/models/sequence_accumulator/infer`, {
      inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1], data: [30] }], parameters: { sequence_id: 60, sequence_start: true },
    });
    expect(started.status).toBe(200);
    const out = outputsOf(await grpcChunk('sequence_accumulator', 12, { sequence_id: { int64_param: '60' }, sequence_end: { bool_param: true } }));
    expect(out.get('OUTPUT')).toBe(42);
  });

  it('errors: missing sequence_id, a flag without an id, an id beyond 2^53, unknown sequence → INVALID_ARGUMENT with the reason', async () => {
    const missing = await callError(client, 'ModelInfer', { model_name: 'sequence_accumulator', inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1] }], raw_input_contents: [buf(Int32Array.of(1))] });
    expect(missing.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(missing.details).toMatch(/model 'sequence_accumulator' is a sequence model: every request needs the parameter 'sequence_id'/);
    const flagOnly = await grpcChunk('sequence_accumulator', 1, { sequence_start: { bool_param: true } }).catch((e) => e);
    expect(flagOnly.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(flagOnly.details).toMatch(/'sequence_start'\/'sequence_end' need a 'sequence_id'/);
    const huge = await grpcChunk('sequence_accumulator', 1, { sequence_id: { uint64_param: '18446744073709551615' }, sequence_start: { bool_param: true } }).catch((e) => e);
    expect(huge.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(huge.details).toMatch(/request parameter 'sequence_id' is 18446744073709551615, beyond what the agent handles exactly/);
    const unknown = await grpcChunk('sequence_accumulator', 1, { sequence_id: { int64_param: '777' } }).catch((e) => e);
    expect(unknown.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(unknown.details).toBe("sequence 777 of model 'sequence_accumulator' is unknown (never started); send its first request with sequence_start: true");
    const notBool = await grpcChunk('sequence_accumulator', 1, { sequence_id: { int64_param: '778' }, sequence_start: { string_param: 'true' } }).catch((e) => e);
    expect(notBool.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(notBool.details).toMatch(/'sequence_start' must be true or false/);
  });

  it('too many live sequences → RESOURCE_EXHAUSTED naming max_candidate_sequences; a slot frees at sequence_end', async () => {
    for (const id of ['201', '202', '203']) await grpcChunk('sequence_accumulator', 1, { sequence_id: { int64_param: id }, sequence_start: { bool_param: true } });
    const full = await grpcChunk('sequence_accumulator', 1, { sequence_id: { int64_param: '204' }, sequence_start: { bool_param: true } }).catch((e) => e);
    expect(full.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(full.details).toMatch(/cannot start sequence 204: max_candidate_sequences \(3\) sequences are live; retry after a sequence ends/);
    await grpcChunk('sequence_accumulator', 1, { sequence_id: { int64_param: '201' }, sequence_end: { bool_param: true } });
    expect(outputsOf(await grpcChunk('sequence_accumulator', 9, { sequence_id: { int64_param: '204' }, sequence_start: { bool_param: true } })).get('OUTPUT')).toBe(9);
    for (const id of ['202', '203', '204']) await grpcChunk('sequence_accumulator', 0, { sequence_id: { int64_param: id }, sequence_end: { bool_param: true } });
  });
});
