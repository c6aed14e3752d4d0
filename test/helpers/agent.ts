/**
 * Test fixtures: a model repository in a temp folder (generated models, the bundled configs,
 * a corrupt model) and an agent listening on 127.0.0.1 on a free port.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fetchOcrModels } from '../../scripts/fetch-models.mjs';
import {
  generateBundledModels, generateCorruptModel, generateIdentityModels, generateVariableIdentityModel,
} from '../../scripts/generate-models.mjs';
import { Agent, type AgentDeps } from '../../src/agent.js';
import { ConfigSchema, type AgentConfig } from '../../src/config/schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A fresh repository: bundled models with their configs, identity_<dtype>, identity_var, corrupt. */
export async function makeRepository(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-repo-'));
  await generateBundledModels(dir);
  await generateIdentityModels(dir);
  await generateVariableIdentityModel(dir);
  await generateCorruptModel(dir);
  await fetchOcrModels(dir, { all: false });
  for (const name of readdirSync(path.join(ROOT, 'models'))) {
    // silero_vad is written with its config by `npm run models` (fetch-silero-vad.mjs); tests that need it make their own repository.
    if (name === 'silero_vad') continue;
    for (const file of ['config.pbtxt', 'config.json']) {
      const src = path.join(ROOT, 'models', name, file);
      if (existsSync(src)) cpSync(src, path.join(dir, name, file));
    }
  }
  return dir;
}

export interface RunningAgent {
  readonly agent: Agent;
  readonly url: string;
  close(): Promise<void>;
}

export async function startAgent(
  models: string,
  overrides: Record<string, unknown> = {},
  deps: AgentDeps = {},
): Promise<RunningAgent> {
  const config: AgentConfig = Object.freeze(ConfigSchema.parse({
    models,
    port: 0,
    grpcPort: 0, // no gRPC unless a test asks for it (test/integration/grpc.test.ts)
    logLevel: 'silent',
    providers: 'cpu',
    intraOpThreads: 1,
    ...overrides,
  }));
  const agent = new Agent(config, deps);
  await agent.start({ waitForModels: true });
  return { agent, url: agent.address, close: () => agent.close() };
}

/** POST a JSON body, return status and parsed JSON. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as any) : undefined };
}

export async function getJson(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as any) : undefined };
}

/** A binary-extension request body: JSON header then the raw tensors. */
export function binaryBody(header: unknown, tensors: readonly ArrayBufferView[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  const parts = tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength));
  return { body: Buffer.concat([json, ...parts]), headerLength: json.length };
}

/** Split a binary-extension response into its JSON header and the bytes after it. */
export async function readBinaryResponse(res: Response): Promise<{ header: any; rest: Buffer }> {
  const buf = Buffer.from(await res.arrayBuffer());
  const n = Number(res.headers.get('inference-header-content-length') ?? buf.length);
  return { header: JSON.parse(buf.subarray(0, n).toString()), rest: buf.subarray(n) };
}

/** Parse Prometheus text exposition into `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}
