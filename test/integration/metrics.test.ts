/**
 * /metrics scraped over HTTP and parsed: Triton's metric names and labels, the batch-size
 * histogram, build info, the auth rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRepository, parseMetrics, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

let agent: RunningAgent;
const TOKEN = 'metrics-token-1';
const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  agent = await startAgent(await makeRepository(), { loadModels: 'add_sub,identity_fp32', apiToken: TOKEN });
});

afterAll(() => agent?.close());

describe('/metrics', () => {
  it('needs the token like the API', async () => {
    expect((await fetch(`${agent.url}/metrics`)).status).toBe(401);
  });

  it('exposes Triton-named counters, the batch histogram and build info', async () => {
    const row = Array.from({ length: 16 }, (_, i) => i);
    for (let i = 0; i < 3; i++) {
      const r = await postJson(`${agent.url}/v2/models/add_sub/infer`, {
        inputs: ['INPUT0', 'INPUT1'].map((name) => ({ name, shape: [2, 16], datatype: 'FP32', data: [...row, ...row] })),
      }, auth);
      expect(r.status).toBe(200);
    }
    await postJson(`${agent.url}/v2/models/add_sub/infer`, { inputs: [] }, auth); // fails validation: not counted as a model failure
    const res = await fetch(`${agent.url}/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const m = parseMetrics(await res.text());
    const l = '{model="add_sub",version="1"}';
    expect(m.get(`nv_inference_request_success${l}`)).toBe(3);
    expect(m.get(`nv_inference_count${l}`)).toBe(6);
    expect(m.get(`nv_inference_exec_count${l}`)).toBe(3);
    expect(m.get(`nv_inference_request_failure{model="add_sub",version="1",reason="REJECTED"}`)).toBe(0);
    expect(m.get(`nv_inference_compute_infer_duration_us${l}`)).toBeGreaterThan(0);
    expect(m.get(`nv_inference_pending_request_count${l}`)).toBe(0);
    expect(m.get(`gpu_agent_batch_size_bucket{le="1",model="add_sub",version="1"}`)).toBe(0);
    expect(m.get(`gpu_agent_batch_size_bucket{le="2",model="add_sub",version="1"}`)).toBe(3);
    expect(m.get(`gpu_agent_batch_size_count${l}`)).toBe(3);
    expect(m.get(`gpu_agent_model_memory_bytes{model="add_sub",version="1",device="host"}`)).toBeGreaterThan(0);
    expect(m.get(`gpu_agent_model_load_duration_seconds${l}`)).toBeGreaterThan(0);
    expect([...m.keys()].some((k) => k.startsWith('gpu_agent_build_info{version="0.1.0"'))).toBe(true);
    expect(m.get('gpu_agent_memory_budget_bytes{device="host"}')).toBeGreaterThan(0);
    // identity_fp32 is loaded but unused: present with zeros.
    expect(m.get('nv_inference_request_success{model="identity_fp32",version="1"}')).toBe(0);
  });
});
