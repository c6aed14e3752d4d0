/**
 * Graceful drain and shutdown under load: readiness turns false at once, new inference gets
 * 503 + Retry-After, everything accepted completes; after the grace period, what is still
 * queued fails with a clear error. Also through SIGTERM on the real CLI.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { getJson, makeRepository, postJson, startAgent } from '../helpers/agent.js';
import { spawnCliAgent } from '../helpers/cli-agent.js';

let repo: string;
const request = (i: number) => ({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [i, i + 1, i + 2, i + 3] }] });

function addModel(name: string, delayUs: number) {
  mkdirSync(path.join(repo, name, '1'), { recursive: true });
  cpSync(path.join(repo, 'identity_fp32', '1', 'model.onnx'), path.join(repo, name, '1', 'model.onnx'));
  writeFileSync(path.join(repo, name, 'config.pbtxt'), `max_batch_size: 32\ndynamic_batching { preferred_batch_size: [ 32 ] max_queue_delay_microseconds: ${delayUs} }\n` +
    // Triton's policy: these tests need requests held in the queue for the whole delay.
    'parameters { key: "batching_policy" value: { string_value: "triton" } }\n');
}

async function queueDepth(url: string, model: string): Promise<number> {
  return (await getJson(`${url}/v2/models/${model}/stats`)).json.model_stats[0].queue_depth;
}

async function waitFor(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  repo = await makeRepository();
  addModel('slowish', 400_000); // requests wait 0.4 s for a batch
  addModel('stuck', 5_000_000); // requests wait 5 s
});

describe('drain and graceful shutdown', () => {
  it('finishes every accepted request and refuses new ones while draining', async () => {
    const { agent, url } = await startAgent(repo, { loadModels: 'slowish' });
    const accepted = Array.from({ length: 12 }, (_, i) => postJson(`${url}/v2/models/slowish/infer`, request(i)));
    await waitFor(async () => (await queueDepth(url, 'slowish')) === 12, 'the requests to queue');
    const closing = agent.close();
    const health = await getJson(`${url}/v2/health/ready`);
    expect(health).toMatchObject({ status: 400, json: { ready: false, state: 'draining', reason: 'shutting down' } });
    const refused = await postJson(`${url}/v2/models/slowish/infer`, request(99));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.json.error).toMatch(/not taking new requests \(shutting down\)/);
    const results = await Promise.all(accepted);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.json.outputs[0].data).toEqual([i, i + 1, i + 2, i + 3]);
    });
    await closing;
  });

  it('fails what is still queued once the grace period is over, with a clear error', async () => {
    const { agent, url } = await startAgent(repo, { loadModels: 'stuck', shutdownGraceMs: 200 });
    const queued = Array.from({ length: 3 }, (_, i) => postJson(`${url}/v2/models/stuck/infer`, request(i)));
    await waitFor(async () => (await queueDepth(url, 'stuck')) === 3, 'the requests to queue');
    await agent.close();
    for (const r of await Promise.all(queued)) {
      expect(r.status).toBe(503);
      expect(r.json.error).toMatch(/shut down before this request ran \(grace period of 200 ms over\)/);
    }
  });

  it('cordon reports not-ready but keeps serving; drain then uncordon takes work again', async () => {
    const { agent, url } = await startAgent(repo, { loadModels: 'identity_fp32' });
    agent.cordon();
    expect((await getJson(`${url}/v2/health/ready`)).json).toMatchObject({ ready: false, state: 'cordoned' });
    expect((await postJson(`${url}/v2/models/identity_fp32/infer`, request(1))).status).toBe(200);
    await agent.drain();
    expect((await postJson(`${url}/v2/models/identity_fp32/infer`, request(1))).status).toBe(503);
    agent.uncordon();
    expect((await getJson(`${url}/v2/health/ready`)).status).toBe(200);
    expect((await postJson(`${url}/v2/models/identity_fp32/infer`, request(1))).status).toBe(200);
    await agent.close();
  });

  it('SIGTERM on the CLI drains under load: no accepted request is lost', async () => {
    const { child, url, out, exited } = await spawnCliAgent(['--models', repo, '--port', '0', '--providers', 'cpu', '--load-models', 'slowish'], 15_000);
    await waitFor(async () => (await getJson(`${url}/v2/models/slowish/ready`)).status === 200, 'the model');
    const accepted = Array.from({ length: 20 }, (_, i) => postJson(`${url}/v2/models/slowish/infer`, request(i)));
    await waitFor(async () => (await queueDepth(url, 'slowish')) === 20, 'the requests to queue');
    child.kill('SIGTERM');
    const results = await Promise.all(accepted);
    results.forEach((r, i) => expect(r.json.outputs[0].data).toEqual([i, i + 1, i + 2, i + 3]));
    expect(await exited).toBe(0);
    expect(out()).toMatch(/"msg":"stopped"/);
  });
});
