/**
 * Fleet fixtures: real agents as CLI processes (each its own port, state dir and CPU models)
 * registered with a real reference coordinator on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CLI = path.resolve(import.meta.dirname, '../../dist/src/cli.js');

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stateDir: string;
  readonly logs: unknown[];
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (a node dying mid-request) and wait for the exit. */
  kill(): Promise<void>;
}

export async function spawnAgent(repo: string, coordinatorUrl: string, token: string, extra: string[] = [], stateDir = mkdtempSync(path.join(os.tmpdir(), 'fleet-agent-'))): Promise<AgentProcess> {
  const child = spawn(process.execPath, [
    CLI, 'serve', '--models', repo, '--port', '0', '--providers', 'cpu', '--intra-op-threads', '1',
    '--coordinator-url', coordinatorUrl, '--coordinator-token', token, '--state-dir', stateDir,
    // No gRPC unless the test asks for a port (the default 8001 would collide between agents).
    ...(extra.includes('--grpc-port') ? [] : ['--grpc-port', '0']), ...extra,
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
  const logs: unknown[] = [];
  let buf = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start: ${buf}${err}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`agent exited with ${code}: ${err}`)));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n').slice(0, -1)) {
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          logs.push(entry);
          if (entry.msg === 'gpu-agent listening') {
            clearTimeout(timer);
            resolve(entry.url!);
          }
        } catch {
          // not a log line
        }
      }
      buf = buf.slice(buf.lastIndexOf('\n') + 1);
    });
  });
  const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  return {
    child, url, stateDir, logs,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const fp32 = { inputs: [{ name: 'INPUT0', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

/** POST JSON, return status, headers and parsed body. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

export async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}
