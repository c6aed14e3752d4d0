/**
 * Fleet fixtures: real agents as CLI processes (each its own port, state dir and CPU models)
 * registered with a real reference coordinator on 127.0.0.1.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnCliAgent } from '../helpers/cli-agent.js';

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stateDir: string;
  /** The agent's stdout log entries so far. */
  readonly logs: unknown[];
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (a node dying mid-request) and wait for the exit. */
  kill(): Promise<void>;
}

export async function spawnAgent(repo: string, coordinatorUrl: string, token: string, extra: string[] = [], stateDir = mkdtempSync(path.join(os.tmpdir(), 'fleet-agent-'))): Promise<AgentProcess> {
  const agent = await spawnCliAgent([
    '--models', repo, '--port', '0', '--providers', 'cpu', '--intra-op-threads', '1',
    '--coordinator-url', coordinatorUrl, '--coordinator-token', token, '--state-dir', stateDir,
    // No gRPC unless the test asks for a port (the default 8001 would collide between agents).
    ...(extra.includes('--grpc-port') ? [] : ['--grpc-port', '0']), ...extra,
  ], { timeoutMs: 30_000, stderr: 'capture' });
  const { child, url } = agent;
  return {
    child, url, stateDir,
    get logs() {
      return agent.logs();
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await agent.exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await agent.exited;
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

/**
 * Once every agent of `agents` is registered with at least one model READY: agent name → its
 * node id at the coordinator (whose `nodes()` lists them).
 */
export async function registeredIds<K extends string>(coordinator: { nodes(): readonly { nodeId: string; url: string; models: readonly { state: string }[] }[] }, agents: Record<K, AgentProcess>, ms = 60_000): Promise<Record<K, string>> {
  return waitFor(() => {
    const nodes = coordinator.nodes();
    const ids = {} as Record<K, string>;
    for (const [name, p] of Object.entries(agents) as [K, AgentProcess][]) {
      const n = nodes.find((x) => x.url === p.url);
      if (!n || !n.models.some((m) => m.state === 'READY')) return undefined;
      ids[name] = n.nodeId;
    }
    return ids;
  }, `${Object.keys(agents).length} agents registered with their models READY`, ms);
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
