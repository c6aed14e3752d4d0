/**
 * Building the frozen AgentConfig from defaults < --config file < GPU_AGENT_* env < flags.
 * Errors name the source, the key and the fix; they are thrown as ConfigError, which the CLI
 * prints without a stack.
 */
import { readFileSync } from 'node:fs';
import { CONFIG_KEYS, ConfigSchema, envOf, flagOf, isBooleanKey, type AgentConfig } from './schema.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface ParsedArgs {
  readonly values: Record<string, string | boolean>;
  readonly configFile: string | undefined;
  readonly positionals: readonly string[];
  readonly help: boolean;
}

const FLAG_TO_KEY = new Map(CONFIG_KEYS.map((k) => [flagOf(k), k]));

/** Parse `--key value`, `--key=value` and bare boolean flags (`extraFlags` are command-specific booleans). Unknown flags are errors. */
export function parseArgs(argv: readonly string[], extraFlags: readonly string[] = []): ParsedArgs {
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  let configFile: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const key = flag === '--config' ? 'config' : FLAG_TO_KEY.get(flag) ?? (extraFlags.includes(flag) ? flag.slice(2) : undefined);
    if (!key) throw new ConfigError(`unknown option ${flag}; run with --help for the list`);
    let value: string | boolean;
    if (inline !== undefined) value = inline;
    else if ((isBooleanKey(key) || extraFlags.includes(flag)) && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) value = true;
    else {
      const next = argv[++i];
      if (next === undefined) throw new ConfigError(`option ${flag} needs a value`);
      value = next;
    }
    if (key === 'config') configFile = String(value);
    else values[key] = value;
  }
  return { values, configFile, positionals, help };
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read --config file ${file}: ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object of options');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`--config file ${file} is not valid: ${(err as Error).message}`);
  }
}

/** Merge the sources and validate once; the result is frozen. */
export function loadConfig(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const merged: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  const file = args.configFile ?? env.GPU_AGENT_CONFIG;
  if (file) {
    for (const [k, v] of Object.entries(readConfigFile(file))) {
      merged[k] = v;
      origin[k] = `config file ${file} key '${k}'`;
    }
  }
  for (const k of CONFIG_KEYS) {
    const v = env[envOf(k)];
    if (v !== undefined && v !== '') {
      merged[k] = v;
      origin[k] = `environment ${envOf(k)}`;
    }
  }
  for (const [k, v] of Object.entries(args.values)) {
    merged[k] = v;
    origin[k] = `option ${flagOf(k)}`;
  }
  const r = ConfigSchema.safeParse(merged);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys') return `unknown option(s) ${i.keys.join(', ')} in ${file ?? 'the config'}; valid keys: ${CONFIG_KEYS.join(', ')}`;
      const key = String(i.path[0] ?? '');
      return `${origin[key] ?? flagOf(key)}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  return Object.freeze({ ...r.data, loadModels: Object.freeze([...r.data.loadModels]), providers: Object.freeze([...r.data.providers]), preload: Object.freeze([...r.data.preload]), labels: Object.freeze([...r.data.labels]) }) as AgentConfig;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  // 127.0.0.0/8 as an address: a host *name* such as 127.example.com can resolve anywhere.
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Cross-checks that need the whole config; returns the error message or undefined. */
export function checkStartup(config: AgentConfig): string | undefined {
  if (config.coordinatorUrl && !config.coordinatorToken) {
    return `--coordinator-url is set but --coordinator-token is not: the coordinator refuses agents without its token (set GPU_AGENT_COORDINATOR_TOKEN)`;
  }
  if (!isLoopback(config.host) && !config.apiToken && !config.insecure) {
    return `refusing to listen on ${config.host} without an API token: anyone who can reach this port could run and load models. ` +
      `Set --api-token (or GPU_AGENT_API_TOKEN), or pass --insecure if the network is private.`;
  }
  return undefined;
}
