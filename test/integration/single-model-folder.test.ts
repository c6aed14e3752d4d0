/**
 * A real agent started on a single-model folder (KServe's /mnt/models/model.onnx) serves it
 * under --model-name and answers V2 inference; on a folder with several loose .onnx files the
 * start fails with the configuration error that names them.
 */
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

const MLP = path.resolve(import.meta.dirname, '../../models/mlp/1/model.onnx');
let running: RunningAgent | undefined;
afterAll(() => running?.close());

function mnt(files: string[]): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'kserve-mnt-')), 'models');
  mkdirSync(dir);
  for (const f of files) copyFileSync(MLP, path.join(dir, f));
  return dir;
}

describe('agent on a single-model folder', () => {
  it('serves <dir>/model.onnx as --model-name and answers V2 infer', async () => {
    running = await startAgent(mnt(['model.onnx']), { modelName: 'mlp', loadModels: '*' });
    const index = await postJson(`${running.url}/v2/repository/index`, {});
    expect(index.json.map((m: { name: string; state: string }) => [m.name, m.state])).toEqual([['mlp', 'READY']]);
    const meta = await getJson(`${running.url}/v2/models/mlp`);
    expect(meta.status).toBe(200);
    const input = meta.json.inputs[0];
    const shape = input.shape.map((d: number) => (d < 0 ? 2 : d));
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    const res = await postJson(`${running.url}/v2/models/mlp/infer`, { inputs: [{ name: input.name, shape, datatype: input.datatype, data: Array.from({ length: count }, (_, i) => (i % 7) / 7) }] });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.model_name).toBe('mlp');
    expect(res.json.outputs[0].shape[0]).toBe(shape[0]);
    expect(res.json.outputs[0].data.every((v: number) => Number.isFinite(v))).toBe(true);
    expect((await getJson(`${running.url}/v2/models/models`)).status).toBe(404);
  }, 60_000);

  it('several loose .onnx files stop the start with the error naming them', async () => {
    await expect(startAgent(mnt(['a.onnx', 'b.onnx']), { modelName: 'mlp' })).rejects.toThrow(/several \.onnx files \(a\.onnx, b\.onnx\)/);
  }, 30_000);
});
