/**
 * --http-processes 2 on the real CLI (real processes, sockets and signals) against the
 * single-process agent on the same bundled models: the same answers (JSON and binary, add_sub
 * and the mlp), the same 4xx for bad requests, the same non-inference routes; front ends that
 * never load onnxruntime; SIGTERM with requests in flight loses none; a killed front end is
 * replaced and the node keeps serving.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Agent as UndiciAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCliAgent, type CliAgent } from '../helpers/cli-agent.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MODELS = path.join(ROOT, 'models');

type Served = CliAgent;

/** An agent with add_sub and mlp READY. */
async function serve(args: string[]): Promise<Served> {
  const s = await spawnCliAgent(['--models', MODELS, '--port', '0', '--providers', 'cpu', '--intra-op-threads', '1',
    '--load-models', 'add_sub,mlp', ...args], { timeoutMs: 30_000, stderr: 'capture' });
  const { url } = s;
  for (const model of ['add_sub', 'mlp']) {
    for (let i = 0; ; i++) {
      const r = await fetch(`${url}/v2/models/${model}/ready`).catch(() => undefined);
      if (r?.status === 200) break;
      if (i > 600) throw new Error(`${model} never became ready`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  return s;
}

/** Process ids of the front ends the primary reported listening (in order of the log). */
function frontendPids(s: Served): number[] {
  return [...s.out().matchAll(/"pid":(\d+),"msg":"HTTP front end listening"/g)].map((m) => Number(m[1]));
}

const range = (n: number, f: (k: number) => number) => Array.from({ length: n }, (_, k) => f(k));

const addSubJson = (i: number) => JSON.stringify({
  id: `req-${i}`,
  inputs: [
    { name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: range(16, (k) => i + k) },
    { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: range(16, () => 1) },
  ],
});

const mlpJson = JSON.stringify({ inputs: [{ name: 'x', shape: [2, 256], datatype: 'FP32', data: range(512, (k) => Math.sin(k) / 4) }] });

/** add_sub with the binary tensor data extension, both ways. */
function addSubBinary(): { body: Buffer; headerLength: number } {
  const a = new Float32Array(range(32, (k) => k * 0.5));
  const b = new Float32Array(range(32, (k) => 3 - k));
  const header = Buffer.from(JSON.stringify({
    inputs: [
      { name: 'INPUT0', shape: [2, 16], datatype: 'FP32', parameters: { binary_data_size: a.byteLength } },
      { name: 'INPUT1', shape: [2, 16], datatype: 'FP32', parameters: { binary_data_size: b.byteLength } },
    ],
    outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }, { name: 'OUTPUT1', parameters: { binary_data: true } }],
  }));
  return { body: Buffer.concat([header, Buffer.from(a.buffer), Buffer.from(b.buffer)]), headerLength: header.length };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function call(url: string, method: string, pathname: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Answer> {
  // A bound on every answer: a request that hangs fails its test with the reason instead of a timeout.
  const res = await request(`${url}${pathname}`, { method: method as 'GET', ...(body !== undefined ? { body } : {}), headers, headersTimeout: 15_000, bodyTimeout: 15_000 });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

/** The JSON answer without what differs between any two runs (compute time). */
function stable(a: Answer): unknown {
  const json = JSON.parse(a.body.toString()) as Record<string, unknown>;
  delete json.parameters;
  return json;
}

let single: Served;
let multi: Served;

beforeAll(async () => {
  [single, multi] = await Promise.all([serve([]), serve(['--http-processes', '2'])]);
}, 90_000);

afterAll(async () => {
  for (const s of [single, multi]) if (s && s.child.exitCode === null) s.child.kill('SIGKILL');
});

describe('--http-processes 2 answers as one process does', () => {
  it('runs two front ends, neither of which loads onnxruntime (the primary does)', () => {
    const pids = frontendPids(multi);
    expect(pids).toHaveLength(2);
    for (const pid of pids) {
      expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).not.toMatch(/onnxruntime/);
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('ORT_DISABLE_TELEMETRY=1');
    }
    expect(readFileSync(`/proc/${multi.child.pid}/maps`, 'utf8')).toMatch(/onnxruntime/);
  });

  it('JSON inference on add_sub and the mlp: the same outputs, head and headers', async () => {
    for (let i = 0; i < 8; i++) { // several requests: both front ends serve some
      const [a, b] = await Promise.all([single, multi].map((s) => call(s.url, 'POST', '/v2/models/add_sub/infer', addSubJson(i), { 'content-type': 'application/json' })));
      expect(b.status).toBe(200);
      expect(stable(b)).toEqual(stable(a));
      expect((stable(b) as any).outputs[0].data[0]).toBe(i + 1);
      expect(b.headers['content-type']).toBe(a.headers['content-type']);
      expect(Number(b.headers['x-compute-time-us'])).toBeGreaterThanOrEqual(0);
    }
    const [a, b] = await Promise.all([single, multi].map((s) => call(s.url, 'POST', '/v2/models/mlp/versions/1/infer', mlpJson)));
    expect(b.status).toBe(200);
    expect(stable(b)).toEqual(stable(a));
    expect((stable(b) as any).outputs[0].shape).toEqual([2, 256]);
  });

  it('binary inference: the same header and the same output bytes', async () => {
    const { body, headerLength } = addSubBinary();
    const [a, b] = await Promise.all([single, multi].map((s) => call(s.url, 'POST', '/v2/models/add_sub/infer', body, {
      'inference-header-content-length': String(headerLength), 'content-type': 'application/octet-stream',
    })));
    expect(b.status).toBe(200);
    // The JSON header's length varies with its compute_time_us parameter; the bytes after it do not.
    const hl = Number(b.headers['inference-header-content-length']);
    const hlSingle = Number(a.headers['inference-header-content-length']);
    expect(hl).toBeGreaterThan(0);
    expect(b.body.subarray(hl)).toEqual(a.body.subarray(hlSingle));
    const out0 = new Float32Array(b.body.buffer.slice(b.body.byteOffset + hl, b.body.byteOffset + hl + 128));
    expect(out0[3]).toBe(1.5 + 0); // 3 * 0.5 + (3 - 3)
    expect(JSON.parse(b.body.subarray(0, hl).toString()).outputs).toEqual(JSON.parse(a.body.subarray(0, hlSingle).toString()).outputs);
  });

  it('bad requests get the same status and {"error"} as without the flag', async () => {
    const bad: [string, string, Record<string, string>][] = [
      ['/v2/models/add_sub/infer', '{"inputs":[{"name":"INPUT0","shape":[1,15],"datatype":"FP32","data":[1]}]}', {}],
      ['/v2/models/add_sub/infer', '{not json', {}],
      ['/v2/models/no_such_model/infer', '{not json', {}],
      ['/v2/models/add_sub/versions/7/infer', addSubJson(1), {}],
      ['/v2/models/add_sub/infer', addSubJson(1), { 'inference-header-content-length': 'x' }],
      ['/v2/models/add_sub/infer', addSubJson(1), { 'content-encoding': 'gzip' }],
      ['/v2/models/mlp/infer', '{"inputs":[{"name":"x","shape":[1,256],"datatype":"FP32","data":[1,2]}]}', {}],
    ];
    for (const [p, body, headers] of bad) {
      const [a, b] = await Promise.all([single, multi].map((s) => call(s.url, 'POST', p, body, headers)));
      expect(a.status).toBeGreaterThanOrEqual(400);
      expect(a.status).toBeLessThan(500);
      expect({ p, status: b.status, body: b.body.toString() }).toEqual({ p, status: a.status, body: a.body.toString() });
      expect(JSON.parse(b.body.toString()).error).toEqual(expect.any(String));
    }
  });

  it('non-inference routes answer the same: metadata, readiness, repository index, config, /metrics', async () => {
    for (const [method, p] of [['GET', '/v2/models/add_sub'], ['GET', '/v2/health/ready'], ['GET', '/v2/health/live'], ['POST', '/v2/repository/index'],
      ['GET', '/v2/models/mlp/config'], ['GET', '/v2'], ['GET', '/v2/nowhere']] as const) {
      const [a, b] = await Promise.all([single, multi].map((s) => call(s.url, method, p)));
      expect({ p, status: b.status, type: b.headers['content-type'], body: b.body.toString() }).toEqual({ p, status: a.status, type: a.headers['content-type'], body: a.body.toString() });
    }
    const [a, b] = await Promise.all([single, multi].map((s) => call(s.url, 'GET', '/metrics')));
    expect(b.status).toBe(200);
    expect(b.headers['content-type']).toBe(a.headers['content-type']);
    const families = (x: Answer) => x.body.toString().split('\n').filter((l) => l.startsWith('# TYPE')).sort();
    expect(families(b)).toEqual(families(a));
    // The primary counts the inferences the front ends sent it.
    expect(b.body.toString()).toMatch(/gpu_agent_request_duration_seconds_count\{[^}]*model="add_sub"[^}]*\} [1-9]/);
  });
});

describe('--http-processes 2: failures and shutdown', () => {
  it('a killed front end is replaced; the node keeps serving', async () => {
    const [victim] = frontendPids(multi);
    process.kill(victim!, 'SIGKILL');
    // Every request is answered: by the surviving front end, then by both.
    for (let i = 0; i < 40; i++) {
      // A connection handed to the dying process just as it died is reset: the client retries
      // (a few times, 50 ms apart: a kept-alive socket to the dead process can fail once more).
      let r: Answer | undefined;
      for (let attempt = 0; !r; attempt++) {
        r = await call(multi.url, 'POST', '/v2/models/add_sub/infer', addSubJson(i)).catch(async (err: unknown) => {
          const reset = (err as { code?: string }).code === 'ECONNRESET' || /other side closed/.test(String(err));
          if (!reset || attempt >= 4) throw new Error(`request ${i}, attempt ${attempt + 1}: ${String(err)}\n${multi.out().slice(-3000)}`);
          await new Promise((res) => setTimeout(res, 50));
          return undefined;
        });
      }
      expect(r.status).toBe(200);
      expect((stable(r) as any).outputs[0].data[0]).toBe(i + 1);
    }
    for (let i = 0; frontendPids(multi).length < 3; i++) {
      if (i > 300) throw new Error(`no replacement front end: ${multi.out().slice(-2000)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(multi.out()).toMatch(/HTTP front end exited: starting another/);
    const replacement = frontendPids(multi)[2]!;
    expect(readFileSync(`/proc/${replacement}/maps`, 'utf8')).not.toMatch(/onnxruntime/);
    expect((await call(multi.url, 'GET', '/v2/health/ready')).status).toBe(200);
  }, 60_000);

  it('SIGTERM with requests in flight loses none, and the front ends exit with the primary', async () => {
    const clients = 16;
    const dispatcher = new UndiciAgent({ connections: clients, keepAliveTimeout: 60_000 });
    const tally = { ok: 0, wrong: 0, draining: 0, other: [] as string[], lost: [] as string[] };
    let sent = 0;
    let inFlight = 0;
    let inFlightAtSignal = -1;
    const loop = async () => {
      for (;;) {
        const i = sent++ % 1000;
        inFlight++;
        try {
          const res = await request(`${multi.url}/v2/models/mlp/infer`, { method: 'POST', body: mlpJson, dispatcher });
          const body = await res.body.text();
          if (res.statusCode === 200) {
            if ((JSON.parse(body).outputs[0].shape as number[]).join() === '2,256') tally.ok++;
            else tally.wrong++;
            continue;
          }
          if (res.statusCode === 503 && res.headers['retry-after'] === '5' && /not taking new requests/.test(JSON.parse(body).error)) tally.draining++;
          else tally.other.push(`${res.statusCode} ${body}`);
          return; // Retry-After: this client backs off past the exit
        } catch (err) {
          tally.lost.push(`${i}: ${String((err as { code?: string }).code ?? err)}`);
          return;
        } finally {
          inFlight--;
        }
      }
    };
    const pids = frontendPids(multi).slice(-2);
    const loops = Array.from({ length: clients }, loop);
    while (tally.ok < 200) await new Promise((res) => setTimeout(res, 20));
    inFlightAtSignal = inFlight;
    multi.child.kill('SIGTERM');
    await Promise.all(loops);
    expect(await multi.exited).toBe(0);
    await dispatcher.close();
    console.log(`--http-processes 2 SIGTERM: ${inFlightAtSignal} in flight at the signal, ${tally.ok} answered 200, ${tally.draining} draining 503, ${tally.lost.length} lost`);
    expect(inFlightAtSignal).toBeGreaterThan(0);
    expect(tally.wrong).toBe(0);
    expect(tally.other).toEqual([]);
    expect(tally.lost).toEqual([]);
    expect(tally.draining).toBe(clients);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(); // gone with the primary
  }, 90_000);
});
