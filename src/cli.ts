#!/usr/bin/env node
/**
 * gpu-agent command line. `gpu-agent serve` starts the agent; options come from flags,
 * GPU_AGENT_* environment variables and an optional --config JSON file (see --help).
 */
import { Agent } from './agent.js';
import { checkStartup, ConfigError, loadConfig, parseArgs } from './config/load.js';
import { CONFIG_KEYS, ConfigSchema, describeKey, envOf, flagOf, isBooleanKey } from './config/schema.js';
import { runCoordinatorCli } from './coordinator/coordinator-cli.js';
import { coordinatorCheck, formatChecks, gpuCheck, runDoctor } from './doctor.js';
import { cacheCommand, pullCommand } from './sources/cli.js';
import { createLogger } from './util/logger.js';
import { AGENT_VERSION } from './version.js';

function usage(): string {
  const defaults = ConfigSchema.parse({}) as Record<string, unknown>;
  const lines = CONFIG_KEYS.map((k) => {
    const d = defaults[k];
    const def = d === undefined ? '' : ` (default: ${Array.isArray(d) ? d.join(',') : String(d)})`;
    return `  ${(flagOf(k) + (isBooleanKey(k) ? '' : ' <v>')).padEnd(34)}${describeKey(k)}${def}\n  ${''.padEnd(34)}env ${envOf(k)}`;
  });
  return [
    `gpu-agent ${AGENT_VERSION}: serve ONNX models over the Open Inference Protocol (KServe V2)`,
    '',
    'Usage:',
    '  gpu-agent serve [options]     start the agent',
    '  gpu-agent doctor [--json]     check this host (node, onnxruntime, providers, GPUs, models, port, token)',
    '  gpu-agent coordinator [--port 9000] [--token T]   run the reference coordinator',
    '  gpu-agent pull <uri> --sha256 <hex> --name <model> [--version N] | pull --manifest <file>   fetch a model into the cache and the repository',
    '  gpu-agent cache ls|verify|gc  the pulled-model blob cache',
    '  gpu-agent --version',
    '',
    'Options (flag > environment > --config file > default):',
    `  ${'--config <file>'.padEnd(34)}JSON file with any of the keys below (camelCase)\n  ${''.padEnd(34)}env GPU_AGENT_CONFIG`,
    ...lines,
  ].join('\n');
}

async function serve(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.help) {
    console.log(usage());
    return;
  }
  if (args.positionals.length) throw new ConfigError(`unexpected argument '${args.positionals[0]}'; run gpu-agent --help`);
  const config = loadConfig(args);
  const refusal = checkStartup(config);
  if (refusal) throw new ConfigError(refusal);
  const agent = new Agent(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      agent.logger.warn({ signal }, 'second signal: aborting');
      void agent.destroy().finally(() => process.exit(1));
      return;
    }
    stopping = true;
    agent.logger.info({ signal }, 'draining and stopping');
    agent.close().then(
      () => process.exit(0),
      (err: unknown) => {
        agent.logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
}

async function doctor(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ['--json']);
  if (args.help) {
    console.log('gpu-agent doctor [--json] [serve options]: check this host for what the agent needs; exit 1 when it could not serve');
    return;
  }
  const { json, ...values } = args.values;
  const config = loadConfig({ ...args, values });
  const report = await runDoctor(config, {
    gpus: () => gpuCheck(config.nvidiaSmiPath),
    ...(config.coordinatorUrl ? { coordinator: () => coordinatorCheck(config.coordinatorUrl!, config.coordinatorToken ?? '') } : {}),
  });
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(`${formatChecks(report.checks)}\n\n${report.ok ? 'the agent can serve on this host' : 'the agent could NOT serve on this host: fix the FAIL lines'}`);
  process.exitCode = report.ok ? 0 : 1;
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'doctor':
      return doctor(rest);
    case 'coordinator':
      return runCoordinatorCli(rest);
    case 'pull':
      process.exitCode = await pullCommand(rest);
      return;
    case 'cache':
      process.exitCode = await cacheCommand(rest);
      return;
    case '--version':
    case 'version':
      console.log(AGENT_VERSION);
      return;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      console.log(usage());
      return;
    default:
      throw new ConfigError(`unknown command '${command}'; commands: serve, doctor, coordinator, pull, cache, version, help`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`gpu-agent: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
