/**
 * Every manifest under deploy/ parses and validates against the API schema of its kind:
 * kubernetes-models for core kinds, @kubernetes-models/prometheus-operator and
 * @kubernetes-models/gateway-api for those CRDs, and the JSON Schemas of deploy/schemas (written
 * from KServe's and the Inference Extension's published types) with ajv for the rest; the
 * containers inside KServe runtimes go through kubernetes-models' Container. Every
 * kustomization builds (resources exist, patches apply).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { allObjects, DEPLOY, kustomize, ROOT, type Obj } from './helpers.js';

type Validator = (o: Obj) => void;

async function model(modulePath: string, kind: string): Promise<Validator> {
  const mod = (await import(modulePath)) as Record<string, new (o: Obj) => { validate(): void }>;
  const Model = mod[kind];
  if (!Model) throw new Error(`${modulePath} has no ${kind}`);
  return (o) => new Model(o).validate();
}

const ajv = new Ajv({ allErrors: true, strict: true });
function jsonSchema(file: string): ValidateFunction {
  return ajv.compile(JSON.parse(readFileSync(path.join(DEPLOY, 'schemas', file), 'utf8')) as object);
}
const schemas = {
  runtime: jsonSchema('servingruntime.schema.json'),
  isvc: jsonSchema('inferenceservice.schema.json'),
  pool: jsonSchema('inferencepool.schema.json'),
};

function withAjv(v: ValidateFunction, inner?: (o: Obj) => Promise<void>): (o: Obj) => Promise<void> {
  return async (o) => {
    if (!v(o)) throw new Error(ajv.errorsText(v.errors));
    await inner?.(o);
  };
}

/** The validator for an object's apiVersion and kind; unknown kinds are a failure. */
async function validatorFor(o: Obj): Promise<(o: Obj) => Promise<void>> {
  const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', o.apiVersion];
  const container = await model('kubernetes-models/v1/Container', 'Container');
  switch (group) {
    case '':
      return async (x) => (await model(`kubernetes-models/${version}/${o.kind}`, o.kind))(x);
    case 'apps':
    case 'policy':
    case 'scheduling.k8s.io':
      return async (x) => (await model(`kubernetes-models/${group}/${version}/${o.kind}`, o.kind))(x);
    case 'monitoring.coreos.com':
      return async (x) => (await model(`@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`, o.kind))(x);
    case 'gateway.networking.k8s.io':
      return async (x) => (await model(`@kubernetes-models/gateway-api/${group}/${version}/${o.kind}`, o.kind))(x);
    case 'serving.kserve.io':
      if (o.kind === 'InferenceService') return withAjv(schemas.isvc);
      return withAjv(schemas.runtime, async (x) => {
        for (const c of x.spec.containers as Obj[]) container(c);
      });
    case 'inference.networking.k8s.io':
      return withAjv(schemas.pool);
    default:
      throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  }
}

const objects = allObjects();

describe('deploy/ manifests', () => {
  it('found the manifests', () => {
    const kinds = new Set(objects.map((d) => d.obj.kind));
    for (const k of ['DaemonSet', 'Deployment', 'PersistentVolumeClaim', 'Service', 'PodDisruptionBudget', 'ConfigMap', 'Secret', 'PriorityClass', 'ServiceMonitor', 'PrometheusRule', 'ClusterServingRuntime', 'InferenceService', 'InferencePool', 'HTTPRoute']) {
      expect(kinds, k).toContain(k);
    }
  });

  for (const { file, obj } of objects) {
    it(`${file}: ${obj.kind} ${obj.metadata?.name} validates`, async () => {
      await (await validatorFor(obj))(obj);
    });
  }

  it('the validators reject what the API server would (a string port, a bad protocol, a pool without ports)', async () => {
    const ds = structuredClone(objects.find((d) => d.obj.kind === 'DaemonSet')!.obj);
    ds.spec.template.spec.containers[0].ports[0].containerPort = 'eight thousand';
    await expect((await validatorFor(ds))(ds)).rejects.toThrow(/containerPort must be integer/);
    const rt = structuredClone(objects.find((d) => d.obj.kind === 'ClusterServingRuntime')!.obj);
    rt.spec.protocolVersions = ['v3'];
    await expect((await validatorFor(rt))(rt)).rejects.toThrow(/protocolVersions/);
    const rt2 = structuredClone(objects.find((d) => d.obj.kind === 'ClusterServingRuntime')!.obj);
    rt2.spec.containers[0].ports[0].containerPort = '8080'; // a string: the API wants an integer
    await expect((await validatorFor(rt2))(rt2)).rejects.toThrow(/containerPort/);
    const pool = structuredClone(objects.find((d) => d.obj.kind === 'InferencePool')!.obj);
    pool.spec.targetPorts = [];
    await expect((await validatorFor(pool))(pool)).rejects.toThrow(/targetPorts/);
    const pvc = structuredClone(objects.find((d) => d.obj.kind === 'PersistentVolumeClaim')!.obj);
    pvc.spec.accessModes = 'ReadWriteOnce'; // a string: the API wants a list
    await expect((await validatorFor(pvc))(pvc)).rejects.toThrow(/accessModes/);
    const sm = structuredClone(objects.find((d) => d.obj.kind === 'ServiceMonitor')!.obj);
    sm.spec.endpoints[0].scheme = 'gopher';
    await expect((await validatorFor(sm))(sm)).rejects.toThrow(/scheme/);
  });

  for (const overlay of ['base', 'overlays/example', 'overlays/runtimeclass-nvidia', 'overlays/llm-d']) {
    it(`kustomization ${overlay} builds and every object in it validates`, async () => {
      const built = kustomize(path.join(DEPLOY, 'kubernetes', overlay));
      expect(built.length).toBeGreaterThan(5);
      for (const o of built) await (await validatorFor(o))(o);
      const ds = built.find((o) => o.kind === 'DaemonSet')!;
      expect(ds.metadata.namespace).toBe('gpu-agent');
      if (overlay.endsWith('runtimeclass-nvidia')) expect(ds.spec.template.spec.runtimeClassName).toBe('nvidia');
      else expect(ds.spec.template.spec.runtimeClassName).toBeUndefined();
      const env = (ds.spec.template.spec.containers[0].env as Obj[]).map((e) => e.name);
      expect(env.includes('GPU_AGENT_PUBLIC_METRICS')).toBe(overlay.endsWith('llm-d'));
    });
  }
});

/**
 * kubernetes-models' runtime validators accept unknown fields (a misspelt `tolerationz`). Their
 * published TypeScript interfaces do not: every manifest becomes an object literal typed with its
 * kind's interface and tsc's excess-property check reports any field the API does not have, at
 * any depth. (KServe and InferencePool objects are closed by their JSON Schemas; KServe's
 * containers are checked as IContainer here.)
 */
describe('deploy/ manifests have no unknown fields', () => {
  function typeOf(o: Obj): { module: string; type: string } | undefined {
    const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', o.apiVersion];
    const base = group === '' ? `kubernetes-models/${version}` : ['apps', 'policy', 'scheduling.k8s.io'].includes(group!) ? `kubernetes-models/${group}/${version}`
      : group === 'monitoring.coreos.com' ? `@kubernetes-models/prometheus-operator/${group}/${version}`
        : group === 'gateway.networking.k8s.io' ? `@kubernetes-models/gateway-api/${group}/${version}` : undefined;
    return base ? { module: `${base}/${o.kind}`, type: `I${o.kind}` } : undefined;
  }

  function check(source: string): { code: number | null; out: string } {
    const dir = path.join(ROOT, 'node_modules', '.cache', 'gpu-agent-deploy-types');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'manifests.ts'), source);
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: [] },
      files: ['manifests.ts'],
    }));
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  }

  function program(docs: Obj[]): string {
    const lines: string[] = [];
    docs.forEach((o, i) => {
      const t = typeOf(o);
      if (t) {
        lines.push(`import type { ${t.type} as T${i} } from '${t.module}';`);
        lines.push(`export const m${i}: T${i} = ${JSON.stringify(o)};`);
      } else if (o.apiVersion === 'serving.kserve.io/v1alpha1') {
        lines.push(`import type { IContainer as C${i} } from 'kubernetes-models/v1/Container';`);
        lines.push(`export const m${i}: C${i}[] = ${JSON.stringify(o.spec.containers)};`);
      }
    });
    return lines.join('\n');
  }

  it('tsc finds no excess property in any manifest (and finds a planted one)', () => {
    const docs = objects.map((d) => d.obj);
    const typed = docs.filter((o) => typeOf(o) || o.apiVersion === 'serving.kserve.io/v1alpha1');
    expect(typed.length).toBeGreaterThanOrEqual(15);
    const ok = check(program(docs));
    expect(ok.out).toBe('');
    expect(ok.code).toBe(0);
    const bad = structuredClone(docs.find((o) => o.kind === 'DaemonSet')!);
    bad.spec.template.spec.tolerationz = [];
    bad.spec.template.spec.containers[0].readinessProbe.httpGet.paht = '/x';
    const planted = check(program([bad]));
    expect(planted.code).not.toBe(0);
    expect(planted.out).toMatch(/tolerationz|paht/);
  }, 120_000);
});
