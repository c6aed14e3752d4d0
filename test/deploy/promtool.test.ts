/**
 * The Prometheus side with the real promtool (Debian package `prometheus`, in
 * scripts/test-deps.sh): the rule file passes `promtool check rules` and its unit tests
 * (`promtool test rules`: every alert fires on synthetic series and stays silent on a healthy
 * node); `promtool check metrics` finds no problem in the agent's own gpu_agent_* metrics on a
 * real scrape (Triton's nv_* names stay as Triton spells them); and the metrics the router reads
 * follow the agent's state from one scrape to the next.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { generateComputeModel } from '../../scripts/generate-models.mjs';
import { makeRepository, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';
import { DEPLOY, hasProgram, waitUntil } from './helpers.js';

const RULES = path.join(DEPLOY, 'prometheus/rules');
const FAKE_SMI = path.resolve(import.meta.dirname, '../fixtures/nvidia-smi/fake-nvidia-smi');
const PROMTOOL = hasProgram('promtool');
if (!PROMTOOL) console.warn('test/deploy/promtool: skipped, promtool is not installed (Debian package prometheus; scripts/test-deps.sh installs it)');

function addSlowModel(repo: string): void {
  mkdirSync(path.join(repo, 'slowish', '1'), { recursive: true });
  cpSync(path.join(repo, 'identity_fp32', '1', 'model.onnx'), path.join(repo, 'slowish', '1', 'model.onnx'));
  writeFileSync(path.join(repo, 'slowish', 'config.pbtxt'), 'max_batch_size: 32\ndynamic_batching { preferred_batch_size: [ 32 ] max_queue_delay_microseconds: 2000000 }\nparameters { key: "batching_policy" value: { string_value: "triton" } }\n');
}

function promtool(args: string[], input?: string) {
  const r = spawnSync('promtool', args, { cwd: RULES, input, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!PROMTOOL)('promtool on the rules and a real scrape', () => {
  let agent: RunningAgent;
  beforeAll(async () => {
    const repo = await makeRepository();
    addSlowModel(repo);
    await generateComputeModel(repo, 'mlp_heavy', 1024, 24, 4);
    // GPU telemetry from the fake nvidia-smi (one H100 fixture), so the GPU gauges have samples too.
    agent = await startAgent(repo, { loadModels: 'simple,slowish,mlp_heavy', publicMetrics: true, nvidiaSmiPath: FAKE_SMI });
  });
  afterAll(() => agent?.close());

  it('promtool check rules', () => {
    const r = promtool(['check', 'rules', 'gpu-agent.rules.yaml']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS: 13 rules found/);
  });

  it('promtool test rules: every alert fires on its synthetic series and a healthy node stays silent', () => {
    const r = promtool(['test', 'rules', 'gpu-agent.rules.test.yaml']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it('promtool test rules fails when an alert does not fire as expected (the unit tests can fail)', () => {
    // The same tests against a rule file whose temperature threshold is raised past the series.
    const broken = spawnSync('sh', ['-c', 'd=$(mktemp -d) && sed "s/gpu_agent_gpu_temperature_celsius > 85/gpu_agent_gpu_temperature_celsius > 95/" gpu-agent.rules.yaml > $d/gpu-agent.rules.yaml && cp gpu-agent.rules.test.yaml $d/ && cd $d && promtool test rules gpu-agent.rules.test.yaml'], { cwd: RULES, encoding: 'utf8' });
    expect(broken.status).not.toBe(0);
    expect(`${broken.stdout}${broken.stderr}`).toMatch(/GpuAgentGpuTemperatureHigh/);
  });

  it('promtool check metrics: no problem in the gpu_agent_* metrics of a real scrape', async () => {
    // Traffic first so every family has samples: successes, an error reply, a latency histogram.
    const simple = { inputs: [
      { name: 'INPUT0', shape: [1, 16], datatype: 'INT32', data: Array.from({ length: 16 }, () => 1) },
      { name: 'INPUT1', shape: [1, 16], datatype: 'INT32', data: Array.from({ length: 16 }, () => 2) },
    ] };
    for (let i = 0; i < 5; i++) expect((await postJson(`${agent.url}/v2/models/simple/infer`, simple)).status).toBe(200);
    expect((await postJson(`${agent.url}/v2/models/nope/infer`, simple)).status).toBeGreaterThanOrEqual(400);
    const text = await (await fetch(`${agent.url}/metrics`)).text();
    expect(text).toMatch(/^gpu_agent_gpu_ecc_uncorrected_errors\{gpu_uuid="GPU-[^"]+"\} 0$/m);
    expect(text).toMatch(/^gpu_agent_gpu_temperature_celsius\{gpu_uuid="GPU-[^"]+"\} \d+/m);
    for (const family of ['gpu_agent_request_duration_seconds_bucket', 'gpu_agent_http_errors_total', 'gpu_agent_pending_requests', 'gpu_agent_running_requests', 'gpu_agent_model_state', 'gpu_agent_model_info', 'gpu_agent_node_state']) {
      expect(text).toContain(`\n${family}`);
    }
    const r = promtool(['check', 'metrics'], text);
    const problems = r.out.split('\n').filter((l) => l.trim());
    const ours = problems.filter((l) => l.startsWith('gpu_agent_'));
    expect(ours).toEqual([]);
    // What remains is Triton's own naming (kept so Triton dashboards work).
    for (const l of problems) expect(l).toMatch(/^nv_/);
  });

  it('the router metrics follow the node from one scrape to the next', async () => {
    const scrape = async () => {
      const text = await (await fetch(`${agent.url}/metrics`)).text();
      const get = (n: string) => Number(new RegExp(`^${n} (\\S+)$`, 'm').exec(text)?.[1]);
      return { pending: get('gpu_agent_pending_requests'), running: get('gpu_agent_running_requests') };
    };
    expect(await scrape()).toEqual({ pending: 0, running: 0 });
    // slowish waits 2 s for a batch of 32: six requests sit in its queue.
    const fp32 = (i: number) => ({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [i, i, i, i] }] });
    const queued = Array.from({ length: 6 }, (_, i) => postJson(`${agent.url}/v2/models/slowish/infer`, fp32(i)));
    await waitUntil(async () => (await (await fetch(`${agent.url}/v2/models/slowish/stats`)).json() as { model_stats: { queue_depth: number }[] }).model_stats[0]!.queue_depth === 6, 'six queued');
    expect((await scrape()).pending).toBe(6); // the first scrape after they queued
    expect((await Promise.all(queued)).every((r) => r.status === 200)).toBe(true);
    expect(await scrape()).toEqual({ pending: 0, running: 0 });
    // A heavy model keeps a batch running long enough for a scrape to see it.
    const meta = (await (await fetch(`${agent.url}/v2/models/mlp_heavy`)).json()) as { inputs: { name: string; shape: number[] }[] };
    const width = meta.inputs[0]!.shape.at(-1)!;
    const heavy = { inputs: [{ name: meta.inputs[0]!.name, shape: [1, width], datatype: 'FP32', data: Array.from({ length: width }, () => 0.5) }] };
    const flood = Array.from({ length: 64 }, () => postJson(`${agent.url}/v2/models/mlp_heavy/infer`, heavy));
    await waitUntil(async () => (await scrape()).running > 0, 'a scrape with running requests', 30_000);
    expect((await Promise.all(flood)).every((r) => r.status === 200)).toBe(true);
    expect(await scrape()).toEqual({ pending: 0, running: 0 });
  });
});
