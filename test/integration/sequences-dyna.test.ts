/**
 * NVIDIA's simple_dyna_sequence example with real onnxruntime over real HTTP and gRPC: the
 * generated models (scripts/sequence-models.mjs) under NVIDIA's config give exactly what the
 * `--dyna` run of simple_http_sequence_sync_infer_client.py checks: two integer sequences
 * (1000, 1001) on simple_dyna_sequence and the string sequence "1002" on
 * simple_string_dyna_sequence (TYPE_STRING CORRID, accumulating), all three at once.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSequenceModels } from '../../scripts/sequence-models.mjs';
import { getJson, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';
import { buf, call, freePort, grpcClient } from '../helpers/grpc.js';

let agent: RunningAgent;
let client: any;
beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-dyna-'));
  await generateSequenceModels(dir);
  agent = await startAgent(dir, { grpcPort: await freePort(), host: '127.0.0.1', loadModels: 'simple_dyna_sequence,simple_string_dyna_sequence' });
  client = grpcClient(agent.agent.grpcAddress!);
}, 120_000);
afterAll(async () => {
  client?.close();
  await agent?.close();
});

const values = [11, 7, 5, 3, 2, 0, 1];

async function httpSend(model: string, id: number | string, all: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const [i, v] of all.entries()) {
    const r = await postJson(`${agent.url}/v2/models/${model}/infer`, {
      inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1], data: [v] }],
      outputs: [{ name: 'OUTPUT' }],
      parameters: { sequence_id: id, sequence_start: i === 0, sequence_end: i === all.length - 1 },
    });
    expect(r.status).toBe(200);
    out.push(r.json.outputs[0].data[0]);
  }
  return out;
}

async function grpcSend(model: string, id: number | string, all: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const [i, v] of all.entries()) {
    const r = await call(client, 'ModelInfer', {
      model_name: model,
      inputs: [{ name: 'INPUT', datatype: 'INT32', shape: [1, 1] }],
      raw_input_contents: [buf(Int32Array.of(v))],
      parameters: {
        sequence_id: typeof id === 'number' ? { int64_param: String(id) } : { string_param: id },
        sequence_start: { bool_param: i === 0 },
        sequence_end: { bool_param: i === all.length - 1 },
      },
    });
    out.push((r.raw_output_contents[0] as Buffer).readInt32LE(0));
  }
  return out;
}

/** The client's checks, as it computes them with --dyna. */
function expectClientValues(int0: number[], int1: number[], str0: number[], ids: [number, number, string]) {
  expect(int0).toHaveLength(values.length + 1);
  for (let i = 0; i < int0.length; i++) {
    let e0 = i === 0 ? 1 : values[i - 1]!;
    let e1 = i === 0 ? 101 : 0 - values[i - 1]!;
    let es = i === 0 ? 20 : str0[i - 1]! - values[i - 1]!;
    if (i !== 0 && values[i - 1] === 1) {
      e0 += ids[0];
      e1 += ids[1];
      es += Number(ids[2]);
    }
    expect([int0[i], int1[i], str0[i]]).toEqual([e0, e1, es]);
  }
}

describe("NVIDIA's simple_dyna_sequence", () => {
  it('both configs load (CORRID uint64 and string), with their 2 instances; clients see INPUT alone', async () => {
    const cfg = (await getJson(`${agent.url}/v2/models/simple_dyna_sequence/config`)).json;
    expect(cfg).toMatchObject({ name: 'simple_dyna_sequence', max_batch_size: 8, instance_group: [{ kind: 'KIND_CPU', count: 2 }] });
    // the controls are the agent's to feed: clients see INPUT alone
    expect(cfg.input.map((i: any) => i.name)).toEqual(['INPUT']);
    // ... and the effective config shows the sequence batcher as read (Triton's GET config does)
    expect(cfg.sequence_batching.control_input.map((c: any) => c.name)).toEqual(expect.arrayContaining(['START', 'END', 'READY', 'CORRID']));
    expect(cfg.sequence_batching.oldest).toMatchObject({ max_candidate_sequences: 1024 });
    const meta = (await getJson(`${agent.url}/v2/models/simple_dyna_sequence`)).json;
    expect(meta.inputs.map((i: any) => i.name)).toEqual(['INPUT']);
    expect((await getJson(`${agent.url}/v2/models/simple_string_dyna_sequence/ready`)).status).toBe(200);
  });

  it('over HTTP: the three sequences at once give what simple_http_sequence_sync_infer_client.py --dyna checks', async () => {
    const [int0, int1, str0] = await Promise.all([
      httpSend('simple_dyna_sequence', 1000, [0, ...values]),
      httpSend('simple_dyna_sequence', 1001, [100, ...values.map((v) => -v)]),
      httpSend('simple_string_dyna_sequence', '1002', [20, ...values.map((v) => -v)]),
    ]);
    expectClientValues(int0, int1, str0, [1000, 1001, '1002']);
  });

  it('over gRPC (the client offset 1: ids 1002, 1003 and "1002") the same checks hold', async () => {
    const [int0, int1, str0] = await Promise.all([
      grpcSend('simple_dyna_sequence', 1002, [0, ...values]),
      grpcSend('simple_dyna_sequence', 1003, [100, ...values.map((v) => -v)]),
      grpcSend('simple_string_dyna_sequence', '1002', [20, ...values.map((v) => -v)]),
    ]);
    expectClientValues(int0, int1, str0, [1002, 1003, '1002']);
  });
});
