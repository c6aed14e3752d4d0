/**
 * `gpu-agent coordinator`: the reference coordinator's own small option set (it is not the
 * agent, so it does not share the agent's config schema). Every flag has an env var; values are
 * checked here once, with errors that name the flag.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import type { Manifest } from '../sources/manifest.js';
import { parseManifestsFile } from './manifests/registry.js';
import { createLogger } from '../util/logger.js';
import { parseClientTokens } from './gateway/client-tokens.js';
import { startCoordinator, type CoordinatorOptions } from './server.js';

/** flag → [env var, help]. */
export const COORDINATOR_FLAGS: Readonly<Record<string, readonly [string, string]>> = {
  port: ['GPU_AGENT_COORDINATOR_PORT', 'HTTP/WebSocket port (default 9000)'],
  host: ['GPU_AGENT_COORDINATOR_HOST', 'listen address (default 127.0.0.1)'],
  'gateway-processes': ['GPU_AGENT_GATEWAY_PROCESSES', 'also serve the gateway from N processes of its own on --gateway-port, so routing uses more than one core (default 0: the main port only)'],
  'gateway-port': ['GPU_AGENT_GATEWAY_PORT', 'port of the gateway processes (default 9100; 0 = any free port)'],
  'grpc-port': ['GPU_AGENT_COORDINATOR_GRPC_PORT', 'gRPC front door of the gateway (Triton GRPCInferenceService, routed to the nodes\' gRPC ports); default off'],
  token: ['GPU_AGENT_COORDINATOR_TOKEN', 'admin token: agents and the admin API (/nodes, commands, /audit) present it'],
  'client-tokens': ['GPU_AGENT_CLIENT_TOKENS', 'inference clients of the gateway, name=token,name2=token2 (distinct from the admin token)'],
  'node-token': ['GPU_AGENT_NODE_API_TOKEN', "the agents' --api-token, sent by the gateway to the nodes (never to clients)"],
  'request-timeout-ms': ['GPU_AGENT_REQUEST_TIMEOUT_MS', 'gateway deadline of a request that states none (default 30000)'],
  'model-timeouts': ['GPU_AGENT_MODEL_TIMEOUTS', 'per-model default deadlines, model=ms,model2=ms'],
  prices: ['GPU_AGENT_PRICES', 'price per hour by node id, hostname or gpu=<gpu label>: key=price,key2=price (a node may also carry --labels price_per_hour=2.49)'],
  budgets: ['GPU_AGENT_BUDGETS', 'budget per client token name, in the price currency: client=amount,... (429 once spent)'],
  manifests: ['GPU_AGENT_MANIFESTS', 'JSON file of model manifests (an array, or an object by model name): load on demand pulls a model no node has by its manifest'],
  'state-dir': ['GPU_AGENT_COORDINATOR_STATE_DIR', 'folder of the audit trail and node registry (SQLite, coordinator.db; default .gpu-coordinator)'],
  'log-level': ['GPU_AGENT_LOG_LEVEL', 'log level (default info)'],
};

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`option --${flag}: '${v}' is not a positive integer`);
  return n;
}

/** Parse argv + env into coordinator options (throws ConfigError). Returns undefined for --help. */
export function parseCoordinatorArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CoordinatorOptions | undefined {
  const opts: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return undefined;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const name = flag.slice(2);
    if (!flag.startsWith('--') || !(name in COORDINATOR_FLAGS)) throw new ConfigError(`unknown option ${flag}; run gpu-agent coordinator --help`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
    opts[name] = value;
  }
  for (const [name, [envName]] of Object.entries(COORDINATOR_FLAGS)) if (opts[name] === undefined && env[envName] !== undefined) opts[name] = env[envName]!;
  const token = opts.token;
  if (!token || token.length < 8) throw new ConfigError('the coordinator needs --token (or GPU_AGENT_COORDINATOR_TOKEN) of at least 8 characters: agents and API clients must present it');
  const port = Number(opts.port ?? 9000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`option --port: '${opts.port}' is not a port number`);
  let clientTokens: Record<string, string> = {};
  try {
    clientTokens = opts['client-tokens'] ? parseClientTokens(opts['client-tokens']) : {};
  } catch (err) {
    throw new ConfigError(`option --client-tokens: ${(err as Error).message}`);
  }
  const numbers = (flag: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const part of (opts[flag] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      const eq = part.lastIndexOf('=');
      const v = Number(part.slice(eq + 1));
      if (eq <= 0 || !Number.isFinite(v) || v < 0) throw new ConfigError(`option --${flag}: '${part}' must be key=non-negative number`);
      out[part.slice(0, eq)] = v;
    }
    return out;
  };
  const modelTimeoutsMs: Record<string, number> = {};
  for (const part of (opts['model-timeouts'] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [m, ms] = part.split('=');
    if (!m || ms === undefined) throw new ConfigError(`option --model-timeouts: '${part}' must be model=milliseconds`);
    modelTimeoutsMs[m] = positiveInt('model-timeouts', ms);
  }
  let grpcPort: number | undefined;
  if (opts['grpc-port'] !== undefined) {
    grpcPort = Number(opts['grpc-port']);
    if (!Number.isInteger(grpcPort) || grpcPort < 1 || grpcPort > 65535) throw new ConfigError(`option --grpc-port: '${opts['grpc-port']}' is not a port number (1-65535; leave it out for no gRPC door)`);
  }
  let gatewayProcesses: CoordinatorOptions['gatewayProcesses'];
  if (opts['gateway-processes'] !== undefined && opts['gateway-processes'] !== '0') {
    const count = positiveInt('gateway-processes', opts['gateway-processes']);
    const gwPort = Number(opts['gateway-port'] ?? 9100);
    if (!Number.isInteger(gwPort) || gwPort < 0 || gwPort > 65535) throw new ConfigError(`option --gateway-port: '${opts['gateway-port']}' is not a port number`);
    gatewayProcesses = { count, port: gwPort, logLevel: opts['log-level'] ?? 'info' };
  } else if (opts['gateway-port'] !== undefined) {
    throw new ConfigError('option --gateway-port needs --gateway-processes N (the processes that serve it)');
  }
  let manifests: Manifest[] = [];
  if (opts.manifests) {
    try {
      manifests = parseManifestsFile(readFileSync(opts.manifests, 'utf8'), opts.manifests);
    } catch (err) {
      throw new ConfigError(`option --manifests: ${(err as Error).message}`);
    }
  }
  return {
    port,
    ...(grpcPort !== undefined ? { grpcPort } : {}),
    ...(gatewayProcesses ? { gatewayProcesses } : {}),
    manifests,
    host: opts.host ?? '127.0.0.1',
    token,
    stateDir: opts['state-dir'] ?? '.gpu-coordinator',
    logger: createLogger(opts['log-level'] ?? 'info'),
    cost: { prices: numbers('prices'), budgets: numbers('budgets') },
    gateway: {
      clientTokens,
      ...(opts['node-token'] ? { nodeToken: opts['node-token'] } : {}),
      ...(opts['request-timeout-ms'] ? { requestTimeoutMs: positiveInt('request-timeout-ms', opts['request-timeout-ms']) } : {}),
      modelTimeoutsMs,
    },
  };
}

export function coordinatorHelp(): string {
  const rows = Object.entries(COORDINATOR_FLAGS).map(([f, [env, help]]) => `  --${f.padEnd(20)} ${help} (env ${env})`);
  return ['gpu-agent coordinator [options]', ...rows,
    'Agents connect to ws://HOST:PORT/agents with --coordinator-url and --coordinator-token.',
    'Admin API: GET /nodes, GET /nodes/{id}, POST /nodes/{id}/commands, GET /audit, PUT /models/{m}/manifest. Gateway (client tokens): /v2/models/{m}/infer, /v1/models/{m}/predict.'].join('\n');
}

/** Run the coordinator until SIGTERM/SIGINT. */
export async function runCoordinatorCli(argv: readonly string[]): Promise<void> {
  const options = parseCoordinatorArgs(argv);
  if (!options) {
    console.log(coordinatorHelp());
    return;
  }
  const running = await startCoordinator(options); // logs its URLs
  const stop = () => void running.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
