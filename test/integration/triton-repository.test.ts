/**
 * Triton's model repository extension beyond load/unload: models uploaded with the load
 * request (`file:<path>` parameters), and --model-control-mode poll. Real agents, real
 * onnxruntime, real folders.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCorruptModel, generateTritonExampleModels } from '../../scripts/generate-models.mjs';
import { diffRepository } from '../../src/repository/poller.js';
import { getJson, postJson, startAgent, type RunningAgent } from '../helpers/agent.js';

const SIMPLE_JSON_CONFIG = JSON.stringify({ max_batch_size: 8 });

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function addOne(url: string, model: string) {
  const r = await postJson(`${url}/v2/models/${model}/infer`, {
    inputs: ['INPUT0', 'INPUT1'].map((name, i) => ({ name, shape: [1, 16], datatype: 'INT32', data: Array(16).fill(i === 0 ? 2 : 1) })),
    outputs: [{ name: 'OUTPUT0' }],
  });
  return r;
}

describe('load with uploaded files (file:<path> parameters)', () => {
  let repo: string;
  let agent: RunningAgent;
  let onnx: Buffer;
  let corrupt: Buffer;

  beforeAll(async () => {
    repo = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-upload-'));
    const src = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-upload-src-'));
    await generateTritonExampleModels(src);
    await generateCorruptModel(src);
    onnx = readFileSync(path.join(src, 'simple', '1', 'model.onnx'));
    corrupt = readFileSync(path.join(src, 'corrupt', '1', 'model.onnx'));
    cpSync(path.join(src, 'simple'), path.join(repo, 'simple'), { recursive: true });
    agent = await startAgent(repo, { loadModels: 'simple', bodyLimit: 64 * 1024 });
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
  });

  it('a new model from the config and file:1/model.onnx: written into the repository, READY, serving', async () => {
    const r = await postJson(`${agent.url}/v2/repository/models/uploaded/load`, {
      parameters: { config: SIMPLE_JSON_CONFIG, 'file:1/model.onnx': onnx.toString('base64') },
    });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(readFileSync(path.join(repo, 'uploaded', '1', 'model.onnx')).equals(onnx)).toBe(true);
    expect(JSON.parse(readFileSync(path.join(repo, 'uploaded', 'config.json'), 'utf8'))).toEqual({ max_batch_size: 8 });
    expect((await addOne(agent.url, 'uploaded')).json.outputs[0].data).toEqual(Array(16).fill(3));
    // No staging folders are left behind.
    expect(readdirSync(repo).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses path traversal, hidden or absolute paths, bad base64 and files without a config, writing nothing', async () => {
    const bad = async (params: Record<string, unknown>) => {
      const r = await postJson(`${agent.url}/v2/repository/models/evil/load`, { parameters: params });
      expect(r.status).toBe(400);
      return r.json.error as string;
    };
    const b64 = onnx.toString('base64');
    expect(await bad({ config: '{}', 'file:../escaped/1/model.onnx': b64 })).toMatch(/^failed to load 'evil': load parameter 'file:..\/escaped\/1\/model.onnx': the path must be relative/);
    expect(await bad({ config: '{}', 'file:/etc/x': b64 })).toMatch(/the path must be relative/);
    expect(await bad({ config: '{}', 'file:1/.hidden': b64 })).toMatch(/the path must be relative/);
    expect(await bad({ config: '{}', 'file:1/model.onnx': 'not base64 ***' })).toMatch(/must be the file's contents in base64/);
    expect(await bad({ 'file:1/model.onnx': b64 })).toMatch(/uploading files needs the 'config' load parameter/);
    expect(await bad({ config: '{}', 'file:config.pbtxt': b64 })).toMatch(/give the model's config as the 'config' parameter/);
    expect(existsSync(path.join(repo, 'evil'))).toBe(false);
    expect(existsSync(path.join(path.dirname(repo), 'escaped'))).toBe(false);
  });

  it('an upload larger than --body-limit is refused (413)', async () => {
    const big = Buffer.alloc(80 * 1024).toString('base64');
    const r = await postJson(`${agent.url}/v2/repository/models/big/load`, { parameters: { config: '{}', 'file:1/model.onnx': big } });
    expect(r.status).toBe(413);
    expect(existsSync(path.join(repo, 'big'))).toBe(false);
  });

  it('an upload that fails to load: the previous folder comes back and the old version keeps serving', async () => {
    const before = readFileSync(path.join(repo, 'simple', 'config.pbtxt'), 'utf8');
    const r = await postJson(`${agent.url}/v2/repository/models/simple/load`, {
      parameters: { config: SIMPLE_JSON_CONFIG, 'file:1/model.onnx': corrupt.toString('base64') },
    });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/^failed to load 'simple': version 1: /);
    expect(readFileSync(path.join(repo, 'simple', 'config.pbtxt'), 'utf8')).toBe(before);
    expect(readFileSync(path.join(repo, 'simple', '1', 'model.onnx')).equals(onnx)).toBe(true);
    expect((await addOne(agent.url, 'simple')).json.outputs[0].data).toEqual(Array(16).fill(3));
    expect(readdirSync(repo).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});

describe('--model-control-mode poll', () => {
  let repo: string;
  let src: string;
  let agent: RunningAgent;
  const lines: any[] = [];

  beforeAll(async () => {
    repo = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-poll-'));
    src = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-poll-src-'));
    await generateTritonExampleModels(src);
    cpSync(path.join(src, 'simple'), path.join(repo, 'simple'), { recursive: true });
    const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
    agent = await startAgent(repo, { modelControlMode: 'poll', repositoryPollSecs: 1 }, { logger: pino({ level: 'info' }, sink) });
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
  });

  const state = async (name: string) => (await postJson(`${agent.url}/v2/repository/index`, {})).json.find((e: any) => e.name === name);

  it('the load API is refused in poll mode (the folders are the control)', async () => {
    const r = await postJson(`${agent.url}/v2/repository/models/simple/load`, {});
    expect(r.status).toBe(409);
    expect(r.json.error).toMatch(/model control mode is poll/);
  });

  it('a new model folder is loaded', async () => {
    cpSync(path.join(src, 'simple_int8'), path.join(repo, 'simple_int8'), { recursive: true });
    await waitFor('simple_int8 READY', async () => ((await state('simple_int8'))?.state === 'READY' ? true : undefined));
  });

  it('a changed config is reloaded', async () => {
    writeFileSync(path.join(repo, 'simple', 'config.pbtxt'), 'max_batch_size: 4\n');
    await waitFor('max_batch_size 4', async () => ((await getJson(`${agent.url}/v2/models/simple/config`)).json.max_batch_size === 4 ? true : undefined));
  });

  it('a change that fails to load keeps the old version serving', async () => {
    writeFileSync(path.join(repo, 'simple', 'config.pbtxt'), 'max_batch_size: "four"\n');
    await waitFor('the failed reload in the log', async () => (lines.some((l) => l.model === 'simple' && /changed model failed to load/.test(l.msg)) ? true : undefined));
    expect((await state('simple')).state).toBe('READY');
    expect((await getJson(`${agent.url}/v2/models/simple/config`)).json.max_batch_size).toBe(4);
    expect((await addOne(agent.url, 'simple')).json.outputs[0].data).toEqual(Array(16).fill(3));
  });

  it('a removed folder is unloaded', async () => {
    rmSync(path.join(repo, 'simple_int8'), { recursive: true });
    await waitFor('simple_int8 unloaded', async () => ((await state('simple_int8'))?.state === 'UNAVAILABLE' ? true : undefined));
  });
});

describe('diffRepository (pure)', () => {
  it('names what was added, changed and removed', () => {
    const before = new Map([['a', '1'], ['b', '1'], ['c', '1']]);
    const after = new Map([['a', '1'], ['b', '2'], ['d', '1']]);
    expect(diffRepository(before, after)).toEqual({ added: ['d'], changed: ['b'], removed: ['c'] });
    expect(diffRepository(after, after)).toEqual({ added: [], changed: [], removed: [] });
  });
});
