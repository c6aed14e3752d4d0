/**
 * `gpu-agent doctor`: checks what the agent needs on this host and prints each finding with a
 * fix. The exit code is non-zero when the agent could not serve (a model with a bad config is a
 * warning: the agent serves the others). Optional probes (GPU inventory, coordinator) are
 * injected by the caller.
 */
import './util/ort-env.js'; // before onnxruntime-node: its telemetry off by default
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { checkStartup } from './config/load.js';
import type { AgentConfig } from './config/schema.js';
import { cudaProviderMissing, ortLibraryDir, type ProviderName } from './execution/ort-session.js';
import { ModelRepository } from './repository/repository.js';
import { loadChecks, whoAnswers } from './doctor-load.js';
import { allocatorCheck } from './memory/launch.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  readonly fix?: string;
}

export interface DoctorProbes {
  /** GPUs seen by nvidia-smi, or why none. */
  gpus?: () => Promise<Check>;
  /** Coordinator reachable and token accepted (only when one is configured). */
  coordinator?: () => Promise<Check>;
}

/**
 * The add_sub model of scripts/generate-models.mjs (FP32 [batch,16] x2 → sum, difference),
 * 277 bytes; test/unit/doctor.test.ts checks it equals the generator's output.
 */
export const PROBE_MODEL_BASE64 =
  'CAcSJ2dwdS1ub2RlLWFnZW50L3NjcmlwdHMvb25ueC1idWlsZGVyLm1qczrhAQorCgZJTlBVVDAKBklOUFVUMRIHT1VUUFVUMBoLQWRkX09VVFBVVDAiA0FkZAorCgZJTlBVVDAKBklOUFVUMRIHT1VUUFVUMRoLU3ViX09VVFBVVDEiA1N1YhIHYWRkX3N1YlodCgZJTlBVVDASEwoRCAESDQoHEgViYXRjaAoCCBBaHQoGSU5QVVQxEhMKEQgBEg0KBxIFYmF0Y2gKAggQYh4KB09VVFBVVDASEwoRCAESDQoHEgViYXRjaAoCCBBiHgoHT1VUUFVUMRITChEIARINCgcSBWJhdGNoCgIIEEIECgAQDQ==';

function nodeCheck(): Check {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const ok = major > 20 || (major === 20 && minor >= 19);
  return ok
    ? { name: 'node', status: 'ok', detail: `Node.js ${process.version}` }
    : { name: 'node', status: 'fail', detail: `Node.js ${process.version} is too old`, fix: 'install Node.js 20.19 or later (22 and 24 work)' };
}

/** Libraries the CUDA provider needs that the dynamic loader cannot find. */
export function missingCudaLibraries(): string[] {
  try {
    const out = execFileSync('ldd', [path.join(ortLibraryDir(), 'libonnxruntime_providers_cuda.so')], { encoding: 'utf8', timeout: 5000 });
    return out.split('\n').filter((l) => l.includes('not found')).map((l) => l.trim().split(/\s+/)[0]!);
  } catch {
    return [];
  }
}

async function providerCheck(provider: ProviderName, deviceId: number): Promise<Check> {
  const name = `provider ${provider}`;
  if (provider === 'cuda') {
    const missing = cudaProviderMissing();
    if (missing) return { name, status: 'warn', detail: missing, fix: 'run scripts/install-cuda-provider.sh (CUDA 13 provider from npm) or use --providers cpu' };
  }
  try {
    const bytes = Buffer.from(PROBE_MODEL_BASE64, 'base64');
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: [provider === 'cuda' ? { name: 'cuda', deviceId } : 'cpu'],
      logSeverityLevel: 4,
    });
    const x = new ort.Tensor('float32', new Float32Array(16).fill(1), [1, 16]);
    const out = await session.run({ INPUT0: x, INPUT1: x });
    await session.release();
    const sum = (out.OUTPUT0!.data as Float32Array)[0];
    if (sum !== 2) return { name, status: 'fail', detail: `a test run returned ${sum} instead of 2` };
    return { name, status: 'ok', detail: `a session runs on ${provider}${provider === 'cuda' ? ` (device ${deviceId})` : ''}` };
  } catch (err) {
    const libs = provider === 'cuda' ? missingCudaLibraries() : [];
    return {
      name,
      status: 'warn',
      detail: `cannot create a session: ${(err as Error).message}${libs.length ? `; missing libraries: ${libs.join(', ')}` : ''}`,
      fix: provider === 'cuda'
        ? `make the CUDA 13 libraries visible (LD_LIBRARY_PATH: cuBLAS, cuDNN 9, cudart${libs.length ? `; missing ${libs.join(', ')}` : ''}) and check the NVIDIA driver (≥ 580)`
        : 'reinstall onnxruntime-node (npm ci)',
    };
  }
}

async function modelsCheck(dir: string, modelName?: string): Promise<Check[]> {
  const repo = new ModelRepository(path.resolve(dir), modelName);
  let models;
  try {
    models = await repo.list();
  } catch (err) {
    return [{ name: 'models', status: 'fail', detail: (err as Error).message, fix: 'point --models at a readable folder of models' }];
  }
  if (models.length === 0) return [{ name: 'models', status: 'warn', detail: `no models in ${repo.root}`, fix: 'add <name>/<version>/model.onnx folders (npm run models creates the bundled ones)' }];
  const checks: Check[] = [];
  for (const m of models) {
    try {
      const { config } = await repo.readConfig(m);
      if (config.platform === 'ocr_pipeline') {
        const ocr = config.ocr!;
        const stages = [ocr.detection.model, ...(ocr.direction.enabled ? [ocr.direction.model] : []), ocr.recognition.model];
        const absent = stages.filter((st) => !repo.has(st));
        if (absent.length) throw new Error(`pipeline stage model(s) ${absent.join(', ')} not in the repository`);
        checks.push({ name: `model ${m.name}`, status: 'ok', detail: `pipeline of ${stages.join(' → ')}` });
        continue;
      }
      const versions = ModelRepository.servedVersions(m, config);
      if (versions.length === 0) throw new Error('no version folder matches the version policy');
      const missing = versions.filter((v) => !existsSync(ModelRepository.modelFile(m, v, config)));
      if (missing.length) throw new Error(`model file missing for version(s) ${missing.join(', ')}`);
      checks.push({ name: `model ${m.name}`, status: 'ok', detail: `versions ${versions.join(', ')}` });
    } catch (err) {
      checks.push({ name: `model ${m.name}`, status: 'warn', detail: (err as Error).message, fix: 'fix the config as the message says; the agent serves the other models meanwhile' });
    }
  }
  return checks;
}

async function portCheck(host: string, port: number, token: string | undefined): Promise<Check> {
  const taken = await new Promise<string | undefined>((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen(port, host, () => server.close(() => resolve(undefined)));
  });
  if (!taken) return { name: 'port', status: 'ok', detail: `${host}:${port} is free` };
  const agent = taken === 'EADDRINUSE' ? await whoAnswers(host, port, token) : undefined;
  if (agent) return { name: 'port', status: 'ok', detail: `${host}:${port} is in use: ${agent}` };
  return { name: 'port', status: 'fail', detail: `${host}:${port} is not available: ${taken}`, fix: 'stop what uses the port or choose --port' };
}

/** --grpc-port: free, or held while the agent itself answers on the HTTP port (then it is its gRPC). */
async function grpcPortCheck(host: string, port: number, httpCheck: Check): Promise<Check> {
  if (port === 0) return { name: 'grpc port', status: 'ok', detail: 'gRPC is off (--grpc-port 0)' };
  const taken = await new Promise<string | undefined>((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen(port, host, () => server.close(() => resolve(undefined)));
  });
  if (!taken) return { name: 'grpc port', status: 'ok', detail: `${host}:${port} is free` };
  if (taken === 'EADDRINUSE' && httpCheck.status === 'ok' && httpCheck.detail.includes('is in use')) {
    return { name: 'grpc port', status: 'ok', detail: `${host}:${port} is in use, and an agent answers on the HTTP port (its gRPC listener)` };
  }
  return { name: 'grpc port', status: 'fail', detail: `${host}:${port} is not available: ${taken}`, fix: 'stop what uses the port or choose --grpc-port (0 = no gRPC)' };
}

export async function runDoctor(config: AgentConfig, probes: DoctorProbes = {}, options: { load?: boolean } = {}): Promise<{ ok: boolean; checks: Check[] }> {
  const checks: Check[] = [nodeCheck()];
  checks.push({ name: 'onnxruntime', status: 'ok', detail: `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}` });
  checks.push(allocatorCheck());
  const providers = await Promise.all(config.providers.map((p) => providerCheck(p as ProviderName, config.cudaDeviceId)));
  checks.push(...providers);
  if (!providers.some((c) => c.status === 'ok')) {
    checks.push({ name: 'providers', status: 'fail', detail: `none of ${config.providers.join(', ')} can run a model`, fix: 'add cpu to --providers or fix the provider above' });
  }
  if (probes.gpus) checks.push(await probes.gpus());
  checks.push(...(await modelsCheck(config.models, config.modelName)));
  if (options.load) checks.push(...(await loadChecks(config)));
  const http = await portCheck(config.host, config.port, config.apiToken);
  checks.push(http, await grpcPortCheck(config.host, config.grpcPort, http));
  const refusal = checkStartup(config);
  checks.push(refusal
    ? { name: 'auth', status: 'fail', detail: refusal, fix: 'set --api-token (or GPU_AGENT_API_TOKEN)' }
    : { name: 'auth', status: config.apiToken ? 'ok' : 'warn', detail: config.apiToken ? 'API token set' : `no API token (fine on ${config.host}${config.insecure ? ', --insecure' : ''})` });
  if (probes.coordinator) checks.push(await probes.coordinator());
  return { ok: !checks.some((c) => c.status === 'fail'), checks };
}

/** GPUs as nvidia-smi reports them (telemetry's inventory), as a check. */
export async function gpuCheck(nvidiaSmiPath: string): Promise<Check> {
  const { queryGpuInventory } = await import('./telemetry/gpu-inventory.js');
  const inv = await queryGpuInventory({ nvidiaSmiPath, timeoutMs: 10_000 });
  if (inv.gpus.length === 0) {
    return { name: 'gpus', status: 'warn', detail: `no NVIDIA GPU visible: ${inv.reason ?? 'nvidia-smi lists none'}`, fix: 'install the NVIDIA driver (≥ 580 for the CUDA 13 provider) or run on the CPU' };
  }
  return {
    name: 'gpus',
    status: 'ok',
    detail: `driver ${inv.driverVersion ?? '?'}, CUDA ${inv.cudaVersion ?? '?'}: ${inv.gpus.map((g) => `${g.index}: ${g.name} (${Math.round((g.memoryTotalBytes ?? 0) / 2 ** 30)} GiB${g.migEnabled ? ', MIG' : ''})`).join('; ')}`,
  };
}

/** Connect to the coordinator with the token: refused (close 4001) or accepted. */
export async function coordinatorCheck(url: string, token: string, waitMs = 1500): Promise<Check> {
  const { WebSocket } = await import('ws');
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 5000 });
    let settled = false;
    const done = (c: Check) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(c);
    };
    const timer = setTimeout(() => done({ name: 'coordinator', status: 'ok', detail: `${url} reachable and the token accepted` }), waitMs);
    ws.on('close', (code, reason) => done(code === 4001
      ? { name: 'coordinator', status: 'fail', detail: `${url} refused the token: ${reason.toString() || code}`, fix: 'set --coordinator-token to the coordinator\'s token' }
      : { name: 'coordinator', status: 'warn', detail: `${url} closed the connection (${code} ${reason.toString()})` }));
    ws.on('unexpected-response', (_req, res) => done({ name: 'coordinator', status: 'fail', detail: `${url} answered HTTP ${res.statusCode}`, fix: 'check --coordinator-url (ws://HOST:PORT/agents) and the token' }));
    ws.on('error', (err) => done({ name: 'coordinator', status: 'warn', detail: `${url} not reachable: ${err.message}`, fix: 'start the coordinator or fix --coordinator-url; the agent serves without it and keeps retrying' }));
  });
}

export function formatChecks(checks: readonly Check[]): string {
  const mark = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
  return checks.map((c) => `${mark[c.status]}  ${c.name}: ${c.detail}${c.fix && c.status !== 'ok' ? `\n      fix: ${c.fix}` : ''}`).join('\n');
}
