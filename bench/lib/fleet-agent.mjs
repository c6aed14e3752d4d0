// The coordinator and one real agent for the fleet benches (fleet-scale.mjs, gateway-cpu.mjs): a CLI process serving
// identity_fp32 on CPU, registered to the coordinator at `agentsUrl`; resolves once it listens,
// with its own URL (the direct-to-node reference) and the child process (kill it at the end).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** `computeModel`: also serve mlp_heavy (1024 wide, 20 layers; about 2 ms a request at batch 1 here) with dynamic batching. */
/** `intraOpThreads`: the agent's --intra-op-threads (default: onnxruntime's, one per core). */
export async function startFleetAgent(ROOT, { agentsUrl, token, prefix, computeModel = false, intraOpThreads }) {
  const { generateComputeModel, generateIdentityModels } = await import(pathToFileURL(path.join(ROOT, 'scripts/generate-models.mjs')).href);
  const repo = mkdtempSync(path.join(os.tmpdir(), `${prefix}-repo-`));
  await generateIdentityModels(repo);
  if (computeModel) {
    await generateComputeModel(repo);
    writeFileSync(path.join(repo, 'mlp_heavy', 'config.pbtxt'), 'name: "mlp_heavy"\nmax_batch_size: 32\ndynamic_batching {\n  max_queue_delay_microseconds: 500\n  default_queue_policy { max_queue_size: 2048 }\n}\ninstance_group [ { count: 1, kind: KIND_CPU } ]\n');
  }
  const agent = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli.js'), 'serve', '--grpc-port', '0', '--models', repo, '--port', '0', '--providers', 'cpu', '--load-models', computeModel ? 'identity_fp32,mlp_heavy' : 'identity_fp32', ...(intraOpThreads ? ['--intra-op-threads', String(intraOpThreads)] : []),
    '--coordinator-url', agentsUrl, '--coordinator-token', token, '--state-dir', mkdtempSync(path.join(os.tmpdir(), `${prefix}-agent-`)), '--log-level', 'info'],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' } });
  const agentUrl = await new Promise((resolve) => {
    let buf = '';
    agent.stdout.on('data', (d) => {
      buf += d;
      const m = /"url":"(http:[^"]+)","models"/.exec(buf);
      if (m) resolve(m[1]);
    });
  });
  return { agent, agentUrl };
}

/**
 * The coordinator of the fleet benches, in their `--child` process: silent logs, its own state
 * directory, one client token for the gateway, heartbeats allowed 20 s of silence; with
 * `gatewayProcesses` > 0 the gateway is also served by that many processes (--gateway-processes).
 */
export async function startBenchCoordinator(ROOT, { token, clientToken, prefix, gatewayProcesses = 0 }) {
  process.env.ORT_DISABLE_TELEMETRY = '1';
  const { startCoordinator } = await import(pathToFileURL(path.join(ROOT, 'dist/src/coordinator/server.js')).href);
  const { createLogger } = await import(pathToFileURL(path.join(ROOT, 'dist/src/util/logger.js')).href);
  return startCoordinator({
    port: 0, token, logger: createLogger('silent'), stateDir: mkdtempSync(path.join(os.tmpdir(), `${prefix}-state-`)),
    gateway: { clientTokens: { bench: clientToken } }, heartbeatTimeoutMs: 20_000,
    ...(gatewayProcesses > 0 ? { gatewayProcesses: { count: gatewayProcesses, port: 0, logLevel: 'silent' } } : {}),
  });
}

/**
 * The reference proxy (reference-proxy.mjs) in front of `nodeUrl`, in a child process of its
 * own; resolves once it listens. `close()` stops it and waits for its exit (so a --cpu-prof
 * profile, when `execArgv` asks for one, is written).
 */
export async function startReferenceProxy(ROOT, nodeUrl, execArgv = []) {
  const child = fork(path.join(ROOT, 'bench/lib/reference-proxy.mjs'), [nodeUrl], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { url } = await new Promise((resolve) => child.once('message', resolve));
  return {
    child,
    url,
    close: () => new Promise((resolve) => {
      child.once('exit', resolve);
      child.send('close');
    }),
  };
}
