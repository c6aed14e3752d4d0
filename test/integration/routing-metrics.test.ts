/**
 * The metrics routers and alert rules read (src/metrics/routing.ts), scraped over HTTP from a
 * real agent: model state per version (a corrupt model file and a model with a broken config
 * are UNAVAILABLE), the loaded-models info gauge, max_queue_size, the node state through cordon
 * and uncordon, error replies by status (429 from a full queue, 503 while draining), the latency
 * histogram, and --public-metrics.
 */
import { mkdirSync, cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRepository, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

const TOKEN = 'routing-metrics-token';
const auth = { authorization: `Bearer ${TOKEN}` };
let agent: RunningAgent;

async function scrape(): Promise<string> {
  const res = await fetch(`${agent.url}/metrics`, { headers: auth });
  expect(res.status).toBe(200);
  return res.text();
}
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};
const fp32 = (i: number) => ({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [i, i, i, i] }] });

beforeAll(async () => {
  const repo = await makeRepository();
  // tiny: a queue of 2 behind a 1 s batch delay, so the third request gets 429 QUEUE_FULL.
  mkdirSync(path.join(repo, 'tiny', '1'), { recursive: true });
  cpSync(path.join(repo, 'identity_fp32', '1', 'model.onnx'), path.join(repo, 'tiny', '1', 'model.onnx'));
  writeFileSync(path.join(repo, 'tiny', 'config.pbtxt'), 'max_batch_size: 32\ndynamic_batching { preferred_batch_size: [ 32 ] max_queue_delay_microseconds: 1000000 default_queue_policy { max_queue_size: 2 } }\nparameters { key: "batching_policy" value: { string_value: "triton" } }\n');
  mkdirSync(path.join(repo, 'badconfig', '1'), { recursive: true });
  cpSync(path.join(repo, 'identity_fp32', '1', 'model.onnx'), path.join(repo, 'badconfig', '1', 'model.onnx'));
  writeFileSync(path.join(repo, 'badconfig', 'config.pbtxt'), 'max_batch_size: "many"\n');
  agent = await startAgent(repo, { loadModels: 'simple,tiny,corrupt,badconfig', apiToken: TOKEN });
});
afterAll(() => agent?.close());

describe('router and alerting metrics', () => {
  it('model state per version, the loaded-models info gauge and max_queue_size', async () => {
    const text = await scrape();
    expect(value(text, 'gpu_agent_model_state{model="simple",version="1",state="READY"}')).toBe(1);
    expect(value(text, 'gpu_agent_model_state{model="simple",version="1",state="UNAVAILABLE"}')).toBe(0);
    expect(value(text, 'gpu_agent_model_state{model="corrupt",version="1",state="UNAVAILABLE"}')).toBe(1);
    expect(value(text, 'gpu_agent_model_state{model="badconfig",version="",state="UNAVAILABLE"}')).toBe(1);
    expect(value(text, 'gpu_agent_model_info{model="simple",version="1",provider="cpu",device="host"}')).toBe(1);
    expect(text).not.toMatch(/^gpu_agent_model_info\{model="corrupt"/m);
    expect(value(text, 'gpu_agent_model_max_queue_size{model="tiny",version="1"}')).toBe(2);
    expect(value(text, 'gpu_agent_model_max_queue_size{model="simple",version="1"}')).toBe(0);
    expect(value(text, 'gpu_agent_node_state{state="ready"}')).toBe(1);
  });

  it('counts error replies by status and observes successful requests in the latency histogram', async () => {
    const before = value(await scrape(), 'gpu_agent_http_errors_total{code="429"}') ?? 0;
    const queued = [postJson(`${agent.url}/v2/models/tiny/infer`, fp32(1), auth), postJson(`${agent.url}/v2/models/tiny/infer`, fp32(2), auth)];
    let text = '';
    for (let i = 0; i < 100 && value(text, 'gpu_agent_pending_requests') !== 2; i++) text = await scrape();
    expect(value(text, 'gpu_agent_pending_requests')).toBe(2);
    const refused = await postJson(`${agent.url}/v2/models/tiny/infer`, fp32(3), auth);
    expect(refused.status).toBe(429);
    expect((await Promise.all(queued)).map((r) => r.status)).toEqual([200, 200]);
    text = await scrape();
    expect(value(text, 'gpu_agent_http_errors_total{code="429"}')).toBe(before + 1);
    expect(value(text, 'gpu_agent_request_duration_seconds_count{model="tiny",version="1"}')).toBe(2);
    // Both waited for the 1 s batch delay: nothing under 0.5 s, both under 2.5 s.
    expect(value(text, 'gpu_agent_request_duration_seconds_bucket{le="0.5",model="tiny",version="1"}')).toBe(0);
    expect(value(text, 'gpu_agent_request_duration_seconds_bucket{le="2.5",model="tiny",version="1"}')).toBe(2);
    expect(value(text, 'gpu_agent_pending_requests')).toBe(0);
    expect(value(text, 'gpu_agent_running_requests')).toBe(0);
  });

  it('follows the node state through cordon, uncordon and drain (503s counted)', async () => {
    agent.agent.cordon();
    let text = await scrape();
    expect(value(text, 'gpu_agent_node_state{state="cordoned"}')).toBe(1);
    expect(value(text, 'gpu_agent_node_state{state="ready"}')).toBe(0);
    agent.agent.uncordon();
    expect(value(await scrape(), 'gpu_agent_node_state{state="ready"}')).toBe(1);
    const before = value(await scrape(), 'gpu_agent_http_errors_total{code="503"}') ?? 0;
    await agent.agent.drain();
    text = await scrape();
    expect(value(text, 'gpu_agent_node_state{state="draining"}')).toBe(1);
    expect((await postJson(`${agent.url}/v2/models/simple/infer`, fp32(1), auth)).status).toBe(503);
    expect(value(await scrape(), 'gpu_agent_http_errors_total{code="503"}')).toBe(before + 1);
    agent.agent.uncordon();
  });

  it('asks for the token on /metrics unless --public-metrics', async () => {
    expect((await fetch(`${agent.url}/metrics`)).status).toBe(401);
    const open = await startAgent(agent.agent.config.models, { loadModels: '', lazyLoad: false, apiToken: TOKEN, publicMetrics: true });
    try {
      expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${open.url}/v2/models`)).status).toBe(401); // only /metrics opens
    } finally {
      await open.close();
    }
  });
});
