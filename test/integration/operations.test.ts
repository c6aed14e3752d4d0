/**
 * The operator's side of the agent, on the real CLI: HTTP timeouts and the connection cap,
 * where the state lives (as a non-root user in a read-only working directory), onnxruntime's
 * telemetry, the bearer scheme, and configuration errors on one line.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { createLogger } from '../../src/util/logger.js';
import { spawnCliAgent, type CliAgent } from '../helpers/cli-agent.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/src/cli.js');
const MODELS = path.join(ROOT, 'models'); // world-readable: the non-root runs read it

type Served = CliAgent;

/** The environment is exactly `opts.env` (default this process's): the telemetry tests set it themselves. */
function serve(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; prefix?: string[] } = {}): Promise<Served> {
  return spawnCliAgent(['--models', MODELS, '--port', '0', '--providers', 'cpu', '--intra-op-threads', '1', ...args], {
    timeoutMs: 30_000,
    stderr: 'capture',
    env: opts.env ?? process.env,
    cwd: opts.cwd ?? ROOT,
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
  });
}

async function stop(s: Served): Promise<number | null> {
  s.child.kill('SIGTERM');
  return s.exited;
}

async function waitReady(url: string, model: string) {
  for (let i = 0; i < 400; i++) {
    if ((await fetch(`${url}/v2/models/${model}/ready`).catch(() => undefined))?.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${model} never became ready`);
}

/** Raw socket: what the server sends back, until it closes the connection. */
function rawExchange(url: string, send: (sock: net.Socket) => void): Promise<{ data: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname, () => send(sock));
    let data = '';
    sock.on('data', (d) => (data += d.toString()));
    sock.on('error', () => undefined);
    sock.on('close', () => resolve({ data, closed: true }));
  });
}

const addSub = JSON.stringify({
  inputs: [
    { name: 'INPUT0', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(2) },
    { name: 'INPUT1', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(1) },
  ],
});

describe('HTTP timeouts', () => {
  let s: Served;
  beforeAll(async () => {
    s = await serve(['--load-models', 'add_sub', '--request-timeout-ms', '1500', '--headers-timeout-ms', '1000', '--keep-alive-timeout-ms', '400', '--max-connections', '3']);
    await waitReady(s.url, 'add_sub');
  }, 60_000);
  afterAll(async () => {
    expect(await stop(s)).toBe(0);
  });

  it('a body sent too slowly gets 408 with the agent\'s error, and the connection closes', async () => {
    let timer: NodeJS.Timeout | undefined;
    const r = await rawExchange(s.url, (sock) => {
      sock.write(`POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${60 * 1024 * 1024}\r\n\r\n`);
      timer = setInterval(() => sock.writable && sock.write(Buffer.alloc(1024, 32)), 100); // 10 KB/s
      sock.on('close', () => clearInterval(timer));
    });
    clearInterval(timer);
    expect(r.data).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(r.data).toMatch(/connection: close/i);
    expect(JSON.parse(r.data.split('\r\n\r\n')[1]!).error).toMatch(/did not arrive within .*--request-timeout-ms/);
  });

  it('headers sent too slowly get 408', async () => {
    const r = await rawExchange(s.url, (sock) => sock.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n'));
    expect(r.data).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('an idle keep-alive connection is closed after --keep-alive-timeout-ms', async () => {
    const r = await rawExchange(s.url, (sock) => sock.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(r.data).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.data).toMatch(/keep-alive: timeout=0/i); // 400 ms, rounded down to seconds by Node
  });
});

/** One HTTP/1.1 response read off a socket: status, lower-cased headers, body. */
interface RawResponse { status: number; headers: Record<string, string>; body: string }

/** Read exactly one response (Content-Length framed) from a socket, or reject on close/reset first. */
function readResponse(sock: net.Socket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = buf.subarray(0, end).toString().split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const length = Number(headers['content-length'] ?? 0);
      if (buf.length < end + 4 + length) return;
      cleanup();
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + length).toString() });
    };
    const onEnd = (err?: Error) => { cleanup(); reject(err ?? new Error(`connection closed before a whole response: ${JSON.stringify(buf.toString())}`)); };
    const onClose = () => onEnd();
    const cleanup = () => { sock.off('data', onData); sock.off('error', onEnd); sock.off('close', onClose); };
    sock.on('data', onData);
    sock.on('error', onEnd);
    sock.on('close', onClose);
  });
}

function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => resolve(sock));
    sock.once('error', reject);
  });
}

const inferRequest = (connection = 'keep-alive') =>
  `POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\nConnection: ${connection}\r\nContent-Type: application/json\r\nContent-Length: ${addSub.length}\r\n\r\n${addSub}`;

/** Send one request on its own socket; resolves with the response and whether the server then closed it. */
async function exchange(url: string, request: string | Buffer): Promise<RawResponse & { closedByServer: boolean }> {
  const sock = await connect(url);
  const closed = new Promise<boolean>((resolve) => sock.once('end', () => resolve(true)));
  sock.on('error', () => undefined);
  const response = readResponse(sock);
  sock.write(request);
  const r = await response;
  const closedByServer = await Promise.race([closed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000))]);
  sock.destroy();
  return { ...r, closedByServer };
}

function expectRefusal(r: RawResponse & { closedByServer: boolean }, max: number) {
  expect(r.status).toBe(503);
  expect(r.headers['retry-after']).toBe('1');
  expect(r.headers['connection']).toBe('close');
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(r.body).error).toContain(`--max-connections ${max}`);
  expect(r.closedByServer).toBe(true);
}

describe('the connection cap (--max-connections)', () => {
  let s: Served;
  beforeAll(async () => {
    s = await serve(['--load-models', 'add_sub', '--max-connections', '2']);
    // Readiness over one-shot connections: a pooled keep-alive client would hold a slot.
    for (let i = 0; ; i++) {
      const r = await exchange(s.url, 'GET /v2/models/add_sub/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n').catch(() => undefined);
      if (r?.status === 200) break;
      if (i > 400) throw new Error('add_sub never became ready');
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);
  afterAll(async () => {
    expect(await stop(s)).toBe(0);
  });

  it('a connection over the cap gets 503 with Retry-After, Connection: close and the error, then is closed; the others keep being served', async () => {
    // Two keep-alive connections, each served once and then held open (the cap is full).
    const held = [await connect(s.url), await connect(s.url)];
    for (const sock of held) {
      const r = readResponse(sock);
      sock.write(inferRequest());
      expect((await r).status).toBe(200);
    }
    // The third: a real HTTP answer, not a reset. Also with a 1 MiB body the server does not read,
    // and also from a client that sends nothing at all.
    expectRefusal(await exchange(s.url, inferRequest()), 2);
    const big = Buffer.alloc(1 << 20, 32);
    expectRefusal(await exchange(s.url, Buffer.concat([Buffer.from(`POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`), big])), 2);
    expectRefusal(await exchange(s.url, ''), 2);
    // The held connections are unaffected: each answers again on the same socket.
    for (const sock of held) {
      const r = readResponse(sock);
      sock.write(inferRequest());
      const answer = await r;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).outputs[0].data).toEqual(Array(16).fill(3));
    }
    // One closes: a new connection is served again (once the server has seen the close;
    // until then it is refused with the same answer, never reset).
    held[0]!.destroy();
    let served: RawResponse | undefined;
    for (let i = 0; i < 100 && !served; i++) {
      const r = await exchange(s.url, inferRequest('close'));
      if (r.status === 200) served = r;
      else expectRefusal(r, 2);
    }
    expect(served?.status).toBe(200);
    held[1]!.destroy();
    expect(s.child.exitCode).toBeNull(); // still running
    expect(s.out()).toMatch(/connection refused: --max-connections reached \(503\)/);
  }, 60_000);
});

describe('bearer token', () => {
  it('accepts the scheme in any case and refuses a wrong token of any length', async () => {
    const s = await serve(['--load-models', 'add_sub', '--api-token', 'sekrit-token-123']);
    const get = (auth?: string) => fetch(`${s.url}/v2`, auth ? { headers: { authorization: auth } } : {}).then((r) => r.status);
    expect(await get('bearer sekrit-token-123')).toBe(200);
    expect(await get('BEARER sekrit-token-123')).toBe(200);
    expect(await get('Bearer sekrit-token-123')).toBe(200);
    expect(await get('Bearer sekrit-token-12')).toBe(401);
    expect(await get('Bearer sekrit-token-1234567')).toBe(401);
    expect(await get('Basic sekrit-token-123')).toBe(401);
    expect(await get()).toBe(401);
    expect(await stop(s)).toBe(0);
  }, 60_000);
});

describe("onnxruntime's telemetry", () => {
  const infer = async (url: string) => {
    await waitReady(url, 'add_sub');
    const r = await fetch(`${url}/v2/models/add_sub/infer`, { method: 'POST', body: addSub, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
  };
  const traces = (home: string, pid: number) => ({
    cache: existsSync(path.join(home, '.cache', 'Microsoft')) ? readdirSync(path.join(home, '.cache', 'Microsoft'), { recursive: true }).map(String) : [],
    mat: existsSync(`/tmp/mat-debug-${pid}.log`),
  });

  it('a start, a load and an inference leave no telemetry files by default', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'agent-home-'));
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env.ORT_DISABLE_TELEMETRY; // as an operator's shell would have it
    const s = await serve(['--load-models', 'add_sub'], { env });
    await infer(s.url);
    const pid = s.child.pid!;
    expect(await stop(s)).toBe(0);
    expect(traces(home, pid)).toEqual({ cache: [], mat: false });
  }, 60_000);

  it('--ort-telemetry opts in (onnxruntime then keeps its device id and event queue)', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'agent-home-'));
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env.ORT_DISABLE_TELEMETRY;
    delete env.CI; // onnxruntime 1.29 keeps no telemetry under CI=true either (seen in CI's own run)
    const s = await serve(['--load-models', 'add_sub', '--ort-telemetry'], { env });
    await infer(s.url);
    const pid = s.child.pid!;
    expect(await stop(s)).toBe(0);
    const t = traces(home, pid);
    expect(t.cache.some((f) => f.endsWith('deviceid'))).toBe(true);
    rmSync(`/tmp/mat-debug-${pid}.log`, { force: true });
  }, 60_000);
});

const prefix = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'];
/** Why the non-root runs cannot happen here, if they cannot (root, setpriv, and a checkout nobody may read). */
function nobodySkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to switch to nobody';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  const probe = spawnSync(prefix[0]!, [...prefix.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(CLI)}, 4)`]);
  if (probe.status !== 0) return `user nobody cannot read ${CLI} (a folder above the checkout is private)`;
  return undefined;
}
const nobodySkip = nobodySkipReason();

describe.skipIf(nobodySkip !== undefined)(`state directory, as a non-root user in a read-only working directory${nobodySkip ? ` (skipped: ${nobodySkip})` : ''}`, () => {
  let coordinator: RunningCoordinator;
  let cwd: string;
  beforeAll(async () => {
    coordinator = await startCoordinator({ port: 0, host: '127.0.0.1', token: 'fleet-secret-123', logger: createLogger('silent') });
    cwd = mkdtempSync(path.join(os.tmpdir(), 'agent-cwd-'));
    chmodSync(cwd, 0o755); // root's: nobody cannot write here, as /opt/gpu-agent under ProtectSystem=strict
  });
  afterAll(async () => coordinator.close());

  const ownedByNobody = () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'agent-state-'));
    chownSync(d, 65534, 65534);
    return d;
  };
  const baseEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH, HOME: '/nonexistent', ORT_DISABLE_TELEMETRY: '1', GPU_AGENT_GRPC_PORT: '0',
    GPU_AGENT_COORDINATOR_URL: coordinator.agentsUrl, GPU_AGENT_COORDINATOR_TOKEN: 'fleet-secret-123', ...extra,
  });

  it('uses $STATE_DIRECTORY (systemd StateDirectory=) and keeps the node id there', async () => {
    const dir = ownedByNobody();
    const s = await serve(['--load-models', 'add_sub'], { prefix, cwd, env: baseEnv({ STATE_DIRECTORY: dir }) });
    expect(await stop(s)).toBe(0);
    expect(readFileSync(path.join(dir, 'node-id'), 'utf8')).toMatch(/^[0-9a-f-]{36}\n$/);
  }, 60_000);

  it('uses the XDG state directory of the user when there is no system one', async () => {
    const xdg = ownedByNobody();
    const s = await serve(['--load-models', 'add_sub'], { prefix, cwd, env: baseEnv({ XDG_STATE_HOME: xdg }) });
    expect(await stop(s)).toBe(0);
    expect(existsSync(path.join(xdg, 'gpu-agent', 'node-id'))).toBe(true);
  }, 60_000);

  it('exits 2 with one line naming --state-dir when nothing is writable', () => {
    const r = spawnSync(prefix[0]!, [...prefix.slice(1), process.execPath, CLI, 'serve', '--models', MODELS, '--port', '0', '--providers', 'cpu'], {
      cwd, env: baseEnv({}), encoding: 'utf8', timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^gpu-agent: no writable state directory for the node id: tried \/var\/lib\/gpu-agent \(EACCES\).*set one with --state-dir/);
  });

  it('a given --state-dir that is not writable is named', () => {
    const r = spawnSync(prefix[0]!, [...prefix.slice(1), process.execPath, CLI, 'serve', '--models', MODELS, '--port', '0', '--state-dir', cwd], {
      cwd, env: baseEnv({}), encoding: 'utf8', timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--state-dir .* is not writable \(EACCES\)/);
  });
});

describe('configuration errors', () => {
  it('a missing models folder is one line and exit 2, not a stack trace', () => {
    const r = spawnSync(process.execPath, [CLI, 'serve', '--models', '/nonexistent/models', '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toMatch(/^gpu-agent: cannot read the model repository \/nonexistent\/models: ENOENT.*\(set --models to a folder of models\)$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});


