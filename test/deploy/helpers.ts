/**
 * deploy/ as the tests see it: every YAML document with the file it came from, kustomizations
 * resolved the way kustomize builds them (resources, components, JSON 6902 patches,
 * namespace), the agent container of a workload, and its environment resolved from the
 * ConfigMaps and Secrets the manifests define — so the tests can start the agent exactly as
 * the manifests configure it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const DEPLOY = path.join(ROOT, 'deploy');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

export interface Doc {
  readonly file: string;
  readonly obj: Obj;
}

/** Files under deploy/ that are not Kubernetes objects (Prometheus files, kustomize, patches, llm-d's EPP config). */
export function isKubernetesObjectFile(rel: string): boolean {
  return !rel.startsWith('prometheus/') && !/kustomization\.yaml$/.test(rel) && !/\.patch\.yaml$/.test(rel) && !rel.endsWith('epp-config.yaml');
}

export function yamlFiles(dir = DEPLOY): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

export function parseAll(file: string): Obj[] {
  const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

/** Every Kubernetes object in deploy/. */
export function allObjects(): Doc[] {
  return yamlFiles()
    .filter((f) => isKubernetesObjectFile(path.relative(DEPLOY, f)))
    .flatMap((f) => parseAll(f).map((obj) => ({ file: path.relative(ROOT, f), obj })));
}

/** A JSON pointer's parent and key ('-' appends to an array). */
function pointer(root: Obj, p: string): [Obj, string] {
  const parts = p.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node: Obj = root;
  for (const k of parts.slice(0, -1)) {
    if (node[k] === undefined) throw new Error(`patch path ${p}: ${k} does not exist`);
    node = node[k];
  }
  return [node, parts.at(-1)!];
}

/** JSON 6902 add/replace/remove: what the overlays use. */
export function applyJsonPatch(target: Obj, ops: Obj[]): void {
  for (const op of ops) {
    const [parent, key] = pointer(target, op.path);
    if (op.op === 'add') {
      if (Array.isArray(parent)) {
        if (key === '-') parent.push(op.value);
        else parent.splice(Number(key), 0, op.value);
      } else parent[key] = op.value;
    } else if (op.op === 'replace') {
      if (!(key in parent)) throw new Error(`patch replace ${op.path}: nothing there`);
      parent[key] = op.value;
    } else if (op.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
    } else throw new Error(`patch op ${op.op} not supported here`);
  }
}

/**
 * Build a kustomization folder: its resources (files or folders with their own
 * kustomization), components, configMapGenerator (files), patches with a target, namespace and
 * labels. Enough for the kustomizations of deploy/; anything else is an error, not ignored.
 */
export function kustomize(dir: string): Obj[] {
  const k = parseAll(path.join(dir, 'kustomization.yaml'))[0]!;
  const known = new Set(['apiVersion', 'kind', 'namespace', 'labels', 'resources', 'components', 'patches', 'images', 'configMapGenerator', 'generatorOptions']);
  for (const key of Object.keys(k)) if (!known.has(key)) throw new Error(`${dir}: kustomization field ${key} not handled by the test`);
  const out: Obj[] = [];
  const include = (rel: string) => {
    const p = path.join(dir, rel);
    if (!existsSync(p)) throw new Error(`${dir}/kustomization.yaml: ${rel} does not exist`);
    if (statSync(p).isDirectory()) out.push(...kustomize(p));
    else out.push(...parseAll(p));
  };
  for (const r of k.resources ?? []) include(r);
  for (const c of k.components ?? []) include(c);
  for (const g of k.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const f of g.files ?? []) data[path.basename(f)] = readFileSync(path.join(dir, f), 'utf8');
    out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data });
  }
  for (const p of k.patches ?? []) {
    const ops = parseAll(path.join(dir, p.path))[0] as unknown as Obj[];
    const targets = out.filter((o) => o.kind === p.target?.kind && (!p.target?.name || o.metadata?.name === p.target.name));
    if (targets.length === 0) throw new Error(`${dir}: patch ${p.path} matches no object`);
    for (const t of targets) applyJsonPatch(t, ops);
  }
  for (const o of out) {
    const clusterScoped = ['Namespace', 'PriorityClass', 'ClusterServingRuntime'].includes(o.kind);
    if (k.namespace && !clusterScoped) o.metadata = { ...o.metadata, namespace: k.namespace };
    for (const l of k.labels ?? []) o.metadata = { ...o.metadata, labels: { ...o.metadata?.labels, ...l.pairs } };
  }
  return out;
}

export function find(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
}

/** The pod spec of a workload. */
export function podSpec(workload: Obj): Obj {
  return workload.spec.template.spec;
}

/**
 * A container's environment as the kubelet would set it: envFrom ConfigMaps, then env in order,
 * with $(VAR) expanded from the variables before it; secretKeyRef and configMapKeyRef from the
 * objects given; fieldRef from `fields`.
 */
export function resolveEnv(container: Obj, objs: Obj[], fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const fromData = (kind: string, name: string, key: string): string => {
    const o = objs.find((x) => x.kind === kind && x.metadata?.name === name);
    if (!o) throw new Error(`container ${container.name}: ${kind} ${name} is not defined in the manifests`);
    const v = kind === 'Secret' ? (o.stringData?.[key] ?? (o.data?.[key] ? Buffer.from(o.data[key], 'base64').toString() : undefined)) : o.data?.[key];
    if (v === undefined) throw new Error(`container ${container.name}: ${kind} ${name} has no key ${key}`);
    return v;
  };
  for (const ef of container.envFrom ?? []) {
    if (ef.configMapRef) Object.assign(env, find(objs, 'ConfigMap', ef.configMapRef.name).data);
    if (ef.secretRef) {
      const s = find(objs, 'Secret', ef.secretRef.name);
      Object.assign(env, s.stringData);
    }
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => env[v] ?? m);
    else if (e.valueFrom?.secretKeyRef) env[e.name] = fromData('Secret', e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else if (e.valueFrom?.configMapKeyRef) env[e.name] = fromData('ConfigMap', e.valueFrom.configMapKeyRef.name, e.valueFrom.configMapKeyRef.key);
    else if (e.valueFrom?.fieldRef) {
      const v = fields[e.valueFrom.fieldRef.fieldPath];
      if (v === undefined) throw new Error(`no test value for fieldRef ${e.valueFrom.fieldRef.fieldPath}`);
      env[e.name] = v;
    } else throw new Error(`env ${e.name}: unsupported source`);
  }
  return env;
}

/** ENTRYPOINT and WORKDIR of the runtime stage of Dockerfile.cuda. */
export function imageEntrypoint(): { entrypoint: string[]; workdir: string } {
  const text = readFileSync(path.join(ROOT, 'Dockerfile.cuda'), 'utf8');
  const ep = /^ENTRYPOINT (\[.*\])$/m.exec(text);
  const wd = [...text.matchAll(/^WORKDIR (\S+)$/gm)].at(-1);
  if (!ep || !wd) throw new Error('Dockerfile.cuda has no ENTRYPOINT/WORKDIR');
  return { entrypoint: JSON.parse(ep[1]!) as string[], workdir: wd[1]! };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Proc {
  readonly child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export function run(cmd: string[], env: Record<string, string>, cwd = ROOT): Proc {
  let out = '';
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

export async function waitUntil(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function hasProgram(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d && existsSync(path.join(d, name)));
}
