/**
 * What a schema cannot see: the manifests agree with the agent and with each other. Probe
 * ports name declared ports whose numbers are the ports the agent listens on, and the probe
 * paths are routes of the agent that need no token (checked against a real server); every
 * GPU_AGENT_* variable is a key of the config schema and its value passes it; the termination
 * grace period covers preStop + drain; every Secret/ConfigMap a pod names exists; selectors
 * select the pods; the PrometheusRule carries the plain rule file's groups; the router's metric
 * names and the dashboard's metrics are ones the agent exports.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/config/load.js';
import { ConfigSchema, CONFIG_KEYS, envOf } from '../../src/config/schema.js';
import { makeRepository, startAgent, type RunningAgent } from '../helpers/agent.js';
import { DEPLOY, find, kustomize, parseAll, podSpec, resolveEnv, type Obj } from './helpers.js';

const example = kustomize(path.join(DEPLOY, 'kubernetes/overlays/example'));
const llmd = kustomize(path.join(DEPLOY, 'kubernetes/overlays/llm-d'));
const runtime = parseAll(path.join(DEPLOY, 'kserve/cluster-serving-runtime.yaml'))[0]!;
const ds = find(example, 'DaemonSet', 'gpu-agent');
const agentContainer = podSpec(ds).containers[0] as Obj;
const coordinator = find(example, 'Deployment', 'gpu-agent-coordinator');
const FIELDS = { 'status.podIP': '10.1.2.3', 'spec.nodeName': 'gpu-node-7' };
/** Variables of the pod that are not agent settings. */
const NOT_CONFIG = new Set(['ORT_DISABLE_TELEMETRY', 'POD_IP', 'NODE_NAME']);
const CONFIG_ENV = new Set(CONFIG_KEYS.map(envOf));

function configFromEnv(env: Record<string, string>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const k of CONFIG_KEYS) if (env[envOf(k)] !== undefined) values[k] = env[envOf(k)];
  return values;
}

let repo: string;
let agent: RunningAgent;
beforeAll(async () => {
  repo = await makeRepository();
  agent = await startAgent(repo, { loadModels: 'simple', apiToken: 'cross-ref-token-1' });
});
afterAll(() => agent?.close());

const containers: [string, Obj, Obj[]][] = [
  ['DaemonSet gpu-agent', agentContainer, example],
  ['DaemonSet gpu-agent (llm-d overlay)', podSpec(find(llmd, 'DaemonSet', 'gpu-agent')).containers[0], llmd],
  ['ClusterServingRuntime kserve-gpu-node-agent', runtime.spec.containers[0], []],
];

describe('manifests agree with the agent', () => {
  for (const [what, c, objs] of containers) {
    it(`${what}: every GPU_AGENT_* variable is a config key and the whole environment passes the schema`, () => {
      const env = resolveEnv(c, objs, FIELDS);
      for (const name of Object.keys(env)) {
        if (NOT_CONFIG.has(name)) continue;
        expect(CONFIG_ENV.has(name), `${name} is not a variable of src/config/schema.ts`).toBe(true);
      }
      const parsed = ConfigSchema.safeParse(configFromEnv(env));
      expect(parsed.success, parsed.success ? '' : parsed.error.message).toBe(true);
    });

    it(`${what}: probes use declared ports (the agent's port) and answer without a token`, async () => {
      const env = resolveEnv(c, objs, FIELDS);
      const byName = new Map((c.ports as Obj[]).map((p) => [p.name, p.containerPort as number]));
      const probes = ['startupProbe', 'readinessProbe', 'livenessProbe'].map((k) => [k, c[k]] as const);
      for (const [kind, probe] of probes) {
        expect(probe?.httpGet, `${what} has an HTTP ${kind}`).toBeDefined();
        const port = typeof probe.httpGet.port === 'string' ? byName.get(probe.httpGet.port) : probe.httpGet.port;
        expect(port, `${kind} port ${probe.httpGet.port}`).toBe(Number(env.GPU_AGENT_PORT));
        // The real server: the route exists and is open (probes send no token).
        const res = await fetch(`${agent.url}${probe.httpGet.path}`);
        expect(res.status, `${kind} ${probe.httpGet.path}`).toBe(200);
      }
      expect(c.readinessProbe.httpGet.path).toBe('/v2/health/ready');
      expect(c.livenessProbe.httpGet.path).toBe('/v2/health/live');
      expect(c.startupProbe.httpGet.path).toBe('/v2/health/live');
    });
  }

  it('the DaemonSet follows the GPU operator conventions', () => {
    const spec = podSpec(ds);
    const terms = spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    expect(terms).toHaveLength(1); // one term: its expressions are ANDed
    expect(terms[0].matchExpressions).toEqual([
      { key: 'nvidia.com/gpu.present', operator: 'In', values: ['true'] },
      { key: 'gpu-node-agent/disabled', operator: 'DoesNotExist' },
    ]);
    expect(spec.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    expect(agentContainer.resources.requests['nvidia.com/gpu']).toBe(1);
    expect(agentContainer.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(find(example, 'PriorityClass', spec.priorityClassName)).toBeDefined();
    expect((agentContainer.ports as Obj[]).map((p) => [p.name, p.containerPort])).toEqual([['http', 8000], ['grpc', 8001]]);
  });

  it('terminationGracePeriodSeconds covers the preStop wait, the drain grace and a margin', () => {
    const env = resolveEnv(agentContainer, example, FIELDS);
    const graceMs = Number(env.GPU_AGENT_SHUTDOWN_GRACE_MS);
    const preStop = agentContainer.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe('sleep');
    const preStopMs = Number(preStop[1]) * 1000;
    const periodMs = podSpec(ds).terminationGracePeriodSeconds * 1000;
    expect(periodMs).toBeGreaterThan(preStopMs + graceMs);
    expect(periodMs - preStopMs - graceMs).toBeGreaterThanOrEqual(10_000); // room to free sessions and exit
  });

  it('every Secret and ConfigMap a pod refers to exists with the key it reads', () => {
    for (const workload of [ds, coordinator]) {
      for (const c of podSpec(workload).containers as Obj[]) {
        expect(() => resolveEnv(c, example, FIELDS)).not.toThrow();
        for (const e of (c.env ?? []) as Obj[]) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(find(example, 'Secret', ref.name).stringData[ref.key]).toBeTruthy();
        }
      }
    }
    const sm = find(example, 'ServiceMonitor', 'gpu-agent');
    const cred = sm.spec.endpoints[0].authorization.credentials;
    expect(find(example, 'Secret', cred.name).stringData[cred.key]).toBe(resolveEnv(agentContainer, example, FIELDS).GPU_AGENT_API_TOKEN);
  });

  it('agents register with the coordinator through its Service, with the token the coordinator checks', () => {
    const env = resolveEnv(agentContainer, example, FIELDS);
    const url = new URL(env.GPU_AGENT_COORDINATOR_URL!);
    const svc = find(example, 'Service', 'gpu-agent-coordinator');
    expect(url.hostname).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc`);
    expect(Number(url.port)).toBe(svc.spec.ports[0].port);
    expect(url.pathname).toBe('/agents');
    const coord = podSpec(coordinator).containers[0] as Obj;
    const cport = (coord.ports as Obj[]).find((p) => p.name === svc.spec.ports[0].targetPort)!.containerPort;
    expect(coord.args).toEqual(expect.arrayContaining(['coordinator', '--port', String(cport), '--host', '0.0.0.0']));
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(coordinator.spec.template.metadata.labels[k]).toBe(v);
    expect(resolveEnv(coord, example, FIELDS).GPU_AGENT_COORDINATOR_TOKEN).toBe(env.GPU_AGENT_COORDINATOR_TOKEN);
  });

  it('Services, the PDB, the ServiceMonitor and the InferencePool select the agent pods and their ports', () => {
    const podLabels = ds.spec.template.metadata.labels as Record<string, string>;
    const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => podLabels[k] === v);
    for (const name of ['gpu-agent', 'gpu-agent-headless']) {
      const svc = find(example, 'Service', name);
      expect(selects(svc.spec.selector), name).toBe(true);
      for (const p of svc.spec.ports as Obj[]) expect((agentContainer.ports as Obj[]).some((cp) => cp.name === p.targetPort), `${name} ${p.targetPort}`).toBe(true);
    }
    expect(find(example, 'Service', 'gpu-agent-headless').spec.clusterIP).toBe('None');
    expect(selects(find(example, 'PodDisruptionBudget', 'gpu-agent').spec.selector.matchLabels)).toBe(true);
    const sm = find(example, 'ServiceMonitor', 'gpu-agent');
    const scraped = example.filter((o) => o.kind === 'Service' && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v));
    expect(scraped.map((s) => s.metadata.name)).toEqual(['gpu-agent-headless']);
    expect(scraped[0]!.spec.ports.map((p: Obj) => p.name)).toContain(sm.spec.endpoints[0].port);
    const pool = find(llmd, 'InferencePool', 'gpu-agent');
    expect(selects(pool.spec.selector.matchLabels)).toBe(true);
    expect(pool.spec.selector.matchLabels['llm-d.ai/engine-type']).toBe('triton');
    expect(pool.spec.targetPorts).toEqual([{ number: 8000 }]);
    const route = find(llmd, 'HTTPRoute', 'gpu-agent');
    expect(route.spec.rules[0].backendRefs[0]).toMatchObject({ kind: 'InferencePool', name: pool.metadata.name });
  });

  it('the PrometheusRule carries exactly the plain rule file', () => {
    const plain = parseAll(path.join(DEPLOY, 'prometheus/rules/gpu-agent.rules.yaml'))[0]!;
    expect(find(example, 'PrometheusRule', 'gpu-agent').spec.groups).toEqual(plain.groups);
  });

  it('the llm-d EPP config reads metrics the agent exports, as one unlabelled series each, also with no model loaded', async () => {
    const epp = parseAll(path.join(DEPLOY, 'kubernetes/overlays/llm-d/epp-config.yaml'))[0]!;
    const extractor = (epp.plugins as Obj[]).find((p) => p.type === 'core-metrics-extractor')!;
    const triton = (extractor.parameters.engineConfigs as Obj[]).find((e) => e.name === 'triton')!;
    const source = (epp.plugins as Obj[]).find((p) => p.type === 'metrics-data-source')!;
    const names = [triton.queuedRequestsSpec, triton.runningRequestsSpec] as string[];
    expect(source.parameters.families).toEqual(names);
    const empty = await startAgent(repo, { loadModels: '', lazyLoad: false, publicMetrics: true });
    try {
      const text = await (await fetch(`${empty.url}/metrics`)).text(); // no token: public metrics
      for (const n of names) expect(text).toMatch(new RegExp(`^${n} 0$`, 'm'));
    } finally {
      await empty.close();
    }
  });

  it('the Grafana dashboard and the alert rules only use metrics the agent exports (or dcgm-exporter\'s)', async () => {
    const text = await (await fetch(`${agent.url}/metrics`, { headers: { authorization: 'Bearer cross-ref-token-1' } })).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].flatMap(([, n, t]) => (t === 'histogram' ? [`${n}_bucket`, `${n}_sum`, `${n}_count`] : [n!])));
    exported.add('up');
    const used = (s: string) => new Set([...s.matchAll(/\b((?:nv|gpu_agent)_[a-z_]+|up)\b(?=\s*[{[(\s)]|$)/g)].map((m) => m[1]!));
    const dashboard = readFileSync(path.join(DEPLOY, 'grafana/gpu-agent-dashboard.json'), 'utf8');
    const exprs = (JSON.parse(dashboard).panels as Obj[]).flatMap((p) => (p.targets ?? []).map((t: Obj) => t.expr as string));
    expect(exprs.length).toBeGreaterThan(10);
    const rules = readFileSync(path.join(DEPLOY, 'prometheus/rules/gpu-agent.rules.yaml'), 'utf8');
    const names = new Set([...used(exprs.join('\n')), ...used(rules)]);
    expect(names.size).toBeGreaterThan(25);
    for (const name of names) expect(exported, name).toContain(name);
  });

  for (const overlay of ['base', 'overlays/example', 'overlays/llm-d']) {
    it(`${overlay}: every PersistentVolumeClaim a pod mounts exists beside it, and the coordinator's state dir is on it`, () => {
      const built = kustomize(path.join(DEPLOY, 'kubernetes', overlay));
      const claims = built.filter((o) => o.kind === 'PersistentVolumeClaim');
      let mounted = 0;
      for (const w of built.filter((o) => ['Deployment', 'DaemonSet', 'StatefulSet'].includes(o.kind))) {
        for (const v of (podSpec(w).volumes ?? []) as Obj[]) {
          if (!v.persistentVolumeClaim) continue;
          mounted++;
          const claim = claims.find((c) => c.metadata.name === v.persistentVolumeClaim.claimName);
          expect(claim, `${w.kind} ${w.metadata.name} mounts claim ${v.persistentVolumeClaim.claimName}`).toBeDefined();
          expect(claim!.metadata.namespace).toBe(w.metadata.namespace);
        }
      }
      expect(mounted).toBeGreaterThanOrEqual(1);
      const coord = find(built, 'Deployment', 'gpu-agent-coordinator');
      const c = podSpec(coord).containers[0] as Obj;
      // A literal value (the base leaves the Secrets to the overlays).
      const stateDir = (c.env as Obj[]).find((e) => e.name === 'GPU_AGENT_COORDINATOR_STATE_DIR')!.value as string;
      const mount = (c.volumeMounts as Obj[]).find((m) => stateDir === m.mountPath || stateDir.startsWith(`${m.mountPath}/`));
      expect(mount, `a volume mounted at ${stateDir}`).toBeDefined();
      const vol = (podSpec(coord).volumes as Obj[]).find((v) => v.name === mount!.name)!;
      expect(vol.persistentVolumeClaim?.claimName).toBe('gpu-agent-coordinator-state');
      // ReadWriteOnce, one writer: one replica, and Recreate so two pods never share the claim.
      expect(find(built, 'PersistentVolumeClaim', 'gpu-agent-coordinator-state').spec.accessModes).toEqual(['ReadWriteOnce']);
      expect(coord.spec.replicas).toBe(1);
      expect(coord.spec.strategy.type).toBe('Recreate');
    });
  }

  it('the KServe runtime: its args, rendered as KServe does ({{.Name}}), are agent flags; grpc-v2 is the declared gRPC port', () => {
    const isvc = parseAll(path.join(DEPLOY, 'kserve/inference-service.yaml'))[0]!;
    expect(isvc.spec.predictor.model.runtime).toBe(runtime.metadata.name);
    const c = runtime.spec.containers[0] as Obj;
    const args = (c.args as string[]).map((a) => a.replaceAll('{{.Name}}', isvc.metadata.name));
    const parsed = parseArgs(args); // unknown flags throw
    expect(parsed.positionals).toEqual(['serve']);
    expect(parsed.values.modelName).toBe(isvc.metadata.name);
    const config = ConfigSchema.safeParse({ ...configFromEnv(resolveEnv(c, [], FIELDS)), ...parsed.values });
    expect(config.success, config.success ? '' : config.error.message).toBe(true);
    if (!config.success) return;
    expect(config.data.models).toBe('/mnt/models');
    const ports = new Map((c.ports as Obj[]).map((p) => [p.name, p.containerPort]));
    expect(ports.get('http1')).toBe(config.data.port);
    expect(ports.get('grpc')).toBe(config.data.grpcPort);
    expect(config.data.grpcPort).toBe(8001);
    expect(runtime.spec.protocolVersions).toEqual(['v2', 'grpc-v2']);
  });
});
