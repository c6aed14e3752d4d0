/**
 * Counters of one model agree across a reload (Prometheus counters may reset only when their
 * series goes away): the request counters and the batch-size histogram, scraped over HTTP.
 */
import { describe, expect, it } from 'vitest';
import { makeRepository, postJson, startAgent } from '../helpers/agent.js';

const req = { inputs: [{ name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(1) }, { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(1) }] };

async function scrape(url: string): Promise<{ success?: number; exec?: number; batches?: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  return {
    success: value(/^nv_inference_request_success\{model="add_sub",version="1"\} (\d+)$/m),
    exec: value(/^nv_inference_exec_count\{model="add_sub",version="1"\} (\d+)$/m),
    batches: value(/^gpu_agent_batch_size_count\{model="add_sub",version="1"\} (\d+)$/m),
  };
}

describe('metrics series across reloads and unloads', () => {
  it('a reload keeps counting; an unload removes every series of the version together', async () => {
    const { url, close } = await startAgent(await makeRepository(), { loadModels: 'add_sub' });
    const infer = async (n: number) => {
      for (let i = 0; i < n; i++) expect((await postJson(`${url}/v2/models/add_sub/infer`, req)).status).toBe(200);
    };
    await infer(5);
    expect(await scrape(url)).toEqual({ success: 5, exec: 5, batches: 5 });
    expect((await postJson(`${url}/v2/repository/models/add_sub/load`, {})).status).toBe(200);
    await infer(3);
    expect(await scrape(url)).toEqual({ success: 8, exec: 8, batches: 8 });
    expect((await postJson(`${url}/v2/repository/models/add_sub/unload`, {})).status).toBe(200);
    expect(await scrape(url)).toEqual({ success: undefined, exec: undefined, batches: undefined });
    expect((await postJson(`${url}/v2/repository/models/add_sub/load`, {})).status).toBe(200);
    await infer(2);
    expect(await scrape(url)).toEqual({ success: 2, exec: 2, batches: 2 });
    await close();
  });
});
