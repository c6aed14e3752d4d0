/**
 * The containers as the manifests define them, run here as real processes: the image's
 * ENTRYPOINT (Dockerfile.cuda; /opt/gpu-agent is this checkout) with the manifest's args and
 * the environment resolved from its ConfigMaps, Secrets and downward-API fields. Volume
 * mounts become temp folders (hostPath /var/lib/gpu-agent, KServe's /mnt/models), and the
 * ports are remapped to free ones, as a Service maps them; nothing else is changed.
 *
 * - the reference coordinator from its Deployment; the agent from the DaemonSet registers with
 *   it through the Service address (resolved to 127.0.0.1 here) and answers its probes;
 * - Kubernetes' termination sequence: the preStop command (the manifest's own `sleep`) runs
 *   while clients keep sending, then SIGTERM with requests queued: every request succeeds and
 *   the agent exits 0 within the termination grace period;
 * - the KServe runtime's container, its args rendered as KServe renders them ({{.Name}} = the
 *   example InferenceService's name), on /mnt/models folders shaped like the storage
 *   initializer leaves them — a single model (/mnt/models/model.onnx) and a repository:
 *   probes, the model READY, V2 inference over HTTP, gRPC ServerReady, the fixed model set.
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBundledModels, generateIdentityModels } from '../../scripts/generate-models.mjs';
import { bearer, call, grpcClient } from '../helpers/grpc.js';
import {
  DEPLOY, find, freePort, imageEntrypoint, kustomize, parseAll, podSpec, resolveEnv, ROOT, run, waitUntil, type Obj, type Proc,
} from './helpers.js';

const objs = kustomize(path.join(DEPLOY, 'kubernetes/overlays/example'));
const daemonSet = find(objs, 'DaemonSet', 'gpu-agent');
const coordinatorDeployment = find(objs, 'Deployment', 'gpu-agent-coordinator');
const { entrypoint, workdir } = imageEntrypoint();
const procs: Proc[] = [];

/** ENTRYPOINT + args with the image's install folder mapped to this checkout. */
function commandOf(container: Obj): string[] {
  const cmd = [...(container.command ?? entrypoint), ...(container.args ?? [])] as string[];
  return cmd.map((a) => (a.startsWith(workdir) ? path.join(ROOT, path.relative(workdir, a)) : a));
}

/** Rewrite paths under each mount to the temp folder that stands for the volume. */
function mapMounts(env: Record<string, string>, mounts: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const m = Object.keys(mounts).find((mp) => v === mp || v.startsWith(`${mp}/`));
    out[k] = m ? path.join(mounts[m]!, path.relative(m, v)) : v;
  }
  return out;
}

function start(cmd: string[], env: Record<string, string>): Proc {
  const p = run(cmd, env);
  procs.push(p);
  return p;
}

async function status(url: string, init?: RequestInit): Promise<number> {
  return (await fetch(url, init)).status;
}

/** Wait for a probe the way the kubelet runs it: period × failureThreshold. */
async function probe(base: string, p: Obj): Promise<void> {
  const budget = (p.periodSeconds ?? 10) * (p.failureThreshold ?? 3) * 1000;
  await waitUntil(async () => (await status(`${base}${p.httpGet.path}`)) === 200, `${p.httpGet.path} within ${budget} ms`, Math.min(budget, 60_000));
}

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

describe('the DaemonSet and the coordinator Deployment, run as the manifests say', () => {
  const agentC = podSpec(daemonSet).containers[0] as Obj;
  const coordC = podSpec(coordinatorDeployment).containers[0] as Obj;
  let hostData: string;
  let agentUrl: string;
  let coordUrl: string;
  let agent: Proc;
  let token: string;
  let coordToken: string;
  let grpcPort: number;

  beforeAll(async () => {
    // The hostPath volume /var/lib/gpu-agent with a model cache in it.
    hostData = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-hostpath-'));
    const gen = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-gen-'));
    await generateBundledModels(gen);
    await generateIdentityModels(gen);
    const models = path.join(hostData, 'models');
    mkdirSync(path.join(models, 'slowish', '1'), { recursive: true });
    cpSync(path.join(gen, 'identity_fp32', '1', 'model.onnx'), path.join(models, 'slowish', '1', 'model.onnx'));
    // Requests wait up to 0.4 s for a batch of 32: queued work exists when SIGTERM comes.
    writeFileSync(path.join(models, 'slowish', 'config.pbtxt'), 'max_batch_size: 32\ndynamic_batching { preferred_batch_size: [ 32 ] max_queue_delay_microseconds: 400000 }\nparameters { key: "batching_policy" value: { string_value: "triton" } }\n');
    mkdirSync(path.join(hostData, 'state'));

    // The coordinator: its Service port 9000 maps to a free port here.
    const coordPort = await freePort();
    const cmd = commandOf(coordC).map((a, i, all) => (all[i - 1] === '--port' ? String(coordPort) : a));
    // Its PVC (coordinator.db: audit trail and node registry) is a fresh temp folder.
    const coordMounts = Object.fromEntries(((coordC.volumeMounts ?? []) as Obj[]).map((m) => [m.mountPath, mkdtempSync(path.join(os.tmpdir(), 'gpu-coordinator-pvc-'))]));
    const coordEnv = mapMounts(resolveEnv(coordC, objs, {}), coordMounts);
    coordToken = coordEnv.GPU_AGENT_COORDINATOR_TOKEN!;
    start(cmd, coordEnv);
    coordUrl = `http://127.0.0.1:${coordPort}`;
    await probe(coordUrl, coordC.readinessProbe);

    // The agent: env as resolved; the Service DNS name of the coordinator resolves to it.
    const mounts = Object.fromEntries((agentC.volumeMounts as Obj[]).map((m) => [m.mountPath, m.name === 'agent-data' ? hostData : mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-tmp-'))]));
    const env = mapMounts(resolveEnv(agentC, objs, { 'status.podIP': '127.0.0.1', 'spec.nodeName': 'gpu-node-7' }), mounts);
    token = env.GPU_AGENT_API_TOKEN!;
    const port = await freePort();
    grpcPort = await freePort();
    const coordinatorUrl = new URL(env.GPU_AGENT_COORDINATOR_URL!);
    coordinatorUrl.host = `127.0.0.1:${coordPort}`;
    agent = start(commandOf(agentC), { ...env, GPU_AGENT_PORT: String(port), GPU_AGENT_GRPC_PORT: String(grpcPort), GPU_AGENT_COORDINATOR_URL: coordinatorUrl.href });
    agentUrl = `http://127.0.0.1:${port}`;
  }, 120_000);

  it('answers the startup, readiness and liveness probes', async () => {
    await probe(agentUrl, agentC.startupProbe);
    await probe(agentUrl, agentC.readinessProbe);
    await probe(agentUrl, agentC.livenessProbe);
    // Node readiness does not wait for model loads (docs/kubernetes.md "Probes"); the model follows.
    await waitUntil(async () => (await status(`${agentUrl}/v2/models/slowish/ready`, { headers: { authorization: `Bearer ${token}` } })) === 200, 'slowish READY');
    // The token from the Secret guards the API; probes need none.
    expect(await status(`${agentUrl}/v2/models`)).toBe(401);
    // The `grpc` port (GPU_AGENT_GRPC_PORT, 8001 in the manifest) answers GRPCInferenceService.
    expect(Number(resolveEnv(agentC, objs, { 'status.podIP': '127.0.0.1', 'spec.nodeName': 'gpu-node-7' }).GPU_AGENT_GRPC_PORT)).toBe((agentC.ports as Obj[]).find((p) => p.name === 'grpc')!.containerPort);
    const client = grpcClient(`127.0.0.1:${grpcPort}`);
    try {
      expect(await call(client, 'ServerReady', {}, bearer(token))).toEqual({ ready: true });
    } finally {
      client.close();
    }
  }, 90_000);

  it('registered with the coordinator through the Service, with the pod labels and its node id in the state dir', async () => {
    await waitUntil(async () => {
      const r = await (await fetch(`${coordUrl}/nodes`, { headers: { authorization: `Bearer ${coordToken}` } })).json() as { nodes: Obj[] };
      return r.nodes.some((n) => n.connected && n.labels?.['k8s-node'] === 'gpu-node-7');
    }, 'the agent to register', 30_000);
    const { nodes } = await (await fetch(`${coordUrl}/nodes`, { headers: { authorization: `Bearer ${coordToken}` } })).json() as { nodes: Obj[] };
    expect(nodes).toHaveLength(1);
    expect(nodes[0]!.url).toBe('http://127.0.0.1:8000'); // GPU_AGENT_ADVERTISE_URL = http://$(POD_IP):8000
    const metrics = await (await fetch(`${agentUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    expect(metrics).toMatch(/^gpu_agent_coordinator_connected 1$/m);
  }, 40_000);

  it('preStop, then SIGTERM with requests queued: no request is lost and the agent exits 0 within the grace period', async () => {
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const body = (i: number) => JSON.stringify({ inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [i, i, i, i] }] });
    const send = async (i: number) => {
      const res = await fetch(`${agentUrl}/v2/models/slowish/infer`, { method: 'POST', headers: auth, body: body(i) });
      const json = await res.json() as Obj;
      return { status: res.status, value: json.outputs?.[0]?.data?.[0] as number | undefined, i };
    };
    // Clients behind the Service keep sending while the preStop hook runs.
    const preStop = run(agentC.lifecycle.preStop.exec.command as string[], {});
    let stop = false;
    const results: Promise<{ status: number; value: number | undefined; i: number }>[] = [];
    const clients = Array.from({ length: 4 }, async (_, c) => {
      for (let n = 0; !stop; n++) {
        const r = send(c * 100_000 + n);
        results.push(r);
        await r;
      }
    });
    expect(await preStop.exited).toBe(0);
    // Endpoints dropped the pod: clients stop sending new requests (their last ones finish).
    stop = true;
    await Promise.all(clients);
    // What is in the agent's queue when SIGTERM comes must still finish: queue a burst of 8.
    const burst = Array.from({ length: 8 }, (_, i) => send(1_000_000 + i));
    results.push(...burst);
    await waitUntil(async () => {
      const s = await (await fetch(`${agentUrl}/v2/models/slowish/stats`, { headers: auth })).json() as Obj;
      return s.model_stats[0].queue_depth >= 8;
    }, 'the burst to queue', 10_000);
    const termAt = Date.now();
    agent.child.kill('SIGTERM');
    // Draining: not ready at once, so a late client or router retries elsewhere.
    await waitUntil(async () => (await status(`${agentUrl}/v2/health/ready`)) === 400, 'readiness to turn false');
    const all = await Promise.all(results);
    const graceMs = (podSpec(daemonSet).terminationGracePeriodSeconds as number) * 1000 - Number(agentC.lifecycle.preStop.exec.command[1]) * 1000;
    const code = await Promise.race([agent.exited, new Promise<'killed'>((r) => setTimeout(() => r('killed'), graceMs - (Date.now() - termAt)))]);
    expect(code, agent.output().slice(-2000)).toBe(0);
    expect(all.length).toBeGreaterThan(8);
    expect(all.filter((r) => r.status !== 200)).toEqual([]);
    for (const r of all) expect(r.value).toBe(r.i);
  }, 60_000);
});

const runtime = parseAll(path.join(DEPLOY, 'kserve/cluster-serving-runtime.yaml'))[0]!;
const isvc = parseAll(path.join(DEPLOY, 'kserve/inference-service.yaml'))[0]!;
const kserveC = runtime.spec.containers[0] as Obj;

/** KServe's rendering of a runtime container: {{.Name}} is the InferenceService's name. */
function renderArgs(c: Obj, isvcName: string): Obj {
  const args = ((c.args ?? []) as string[]).map((a) => a.replaceAll('{{.Name}}', isvcName));
  for (const a of args) expect(a, 'a template KServe renders and this test does not').not.toMatch(/\{\{/);
  return { ...c, args };
}

interface Layout {
  readonly what: string;
  /** Fill the /mnt/models folder; returns the model name to call. */
  fill(mnt: string): Promise<string>;
}

const layouts: Layout[] = [
  {
    // storageUri s3://models/mlp/ (the example InferenceService) holding model.onnx only.
    what: 'a single model (/mnt/models/model.onnx), served under the InferenceService name',
    fill: async (mnt) => {
      cpSync(path.join(ROOT, 'models', 'mlp', '1', 'model.onnx'), path.join(mnt, 'model.onnx'));
      return isvc.metadata.name as string;
    },
  },
  {
    // storageUri holding a repository: simple/1/model.onnx and simple/config.pbtxt, and more.
    what: 'a Triton repository (/mnt/models/<model>/1/model.onnx)',
    fill: async (mnt) => {
      await generateBundledModels(mnt);
      cpSync(path.join(ROOT, 'models', 'simple', 'config.pbtxt'), path.join(mnt, 'simple', 'config.pbtxt'));
      return 'simple';
    },
  },
];

describe.each(layouts)('the KServe ClusterServingRuntime container on $what', (layout) => {
  const c = renderArgs(kserveC, isvc.metadata.name);
  let url: string;
  let grpcPort: number;
  let proc: Proc;
  let model: string;

  beforeAll(async () => {
    const mnt = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-mnt-models-'));
    model = await layout.fill(mnt);
    const env = mapMounts(resolveEnv(c, [], {}), { '/mnt/models': mnt, '/tmp': mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-kserve-tmp-')) });
    const port = await freePort();
    grpcPort = await freePort();
    proc = start(commandOf(c), { ...env, GPU_AGENT_PORT: String(port), GPU_AGENT_GRPC_PORT: String(grpcPort) });
    url = `http://127.0.0.1:${port}`;
  }, 60_000);

  it('answers its probes, V2 infer over HTTP and ServerReady over gRPC, and keeps the set fixed', async () => {
    await probe(url, c.startupProbe);
    await probe(url, c.readinessProbe);
    await probe(url, c.livenessProbe);
    await waitUntil(async () => (await status(`${url}/v2/models/${model}/ready`)) === 200, `${model} to be READY`);
    // The inputs as the model's metadata states them (dynamic dimensions: 2).
    const meta = await (await fetch(`${url}/v2/models/${model}`)).json() as Obj;
    const inputs = (meta.inputs as Obj[]).map((i) => {
      const shape = (i.shape as number[]).map((d) => (d < 0 ? 2 : d));
      const n = shape.reduce((a, b) => a * b, 1);
      return { name: i.name, shape, datatype: i.datatype, data: Array.from({ length: n }, (_, k) => (i.datatype === 'INT32' ? k % 5 : (k % 7) / 7)) };
    });
    const res = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs }) });
    const out = await res.json() as Obj;
    expect(res.status, JSON.stringify(out)).toBe(200);
    expect(out.model_name).toBe(model);
    if (model === 'simple') {
      // INPUT0 + INPUT1, element by element.
      const sum = inputs[0]!.data.map((v, k) => v + inputs[1]!.data[k]!);
      expect(out.outputs.find((o: Obj) => o.name === 'OUTPUT0').data).toEqual(sum);
    } else {
      expect(out.outputs[0].shape[0]).toBe(2);
      expect((out.outputs[0].data as number[]).every(Number.isFinite)).toBe(true);
    }
    // grpc-v2: GPU_AGENT_GRPC_PORT is the declared `grpc` port, and it answers.
    expect(Number(resolveEnv(c, [], {}).GPU_AGENT_GRPC_PORT)).toBe((c.ports as Obj[]).find((p) => p.name === 'grpc')!.containerPort);
    const client = grpcClient(`127.0.0.1:${grpcPort}`);
    try {
      expect(await call(client, 'ServerReady', {})).toEqual({ ready: true });
      expect(await call(client, 'ModelReady', { name: model })).toEqual({ ready: true });
    } finally {
      client.close();
    }
    // GPU_AGENT_MODEL_CONTROL_MODE=none: KServe owns the model set.
    const unload = await fetch(`${url}/v2/repository/models/${model}/unload`, { method: 'POST' });
    expect(unload.status).toBeGreaterThanOrEqual(400);
    expect(unload.status).toBeLessThan(500);
    // Public metrics for KServe's Prometheus annotations.
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(new RegExp(`^gpu_agent_model_info\\{model="${model}",version="1",provider="cpu",device="host"\\} 1$`, 'm'));
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  }, 90_000);
});
