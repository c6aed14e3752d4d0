#!/usr/bin/env node
/**
 * gpu-agent command line. `gpu-agent serve` starts the agent; options come from flags,
 * GPU_AGENT_* environment variables and an optional --config JSON file (see --help).
 */
import './util/ort-env.js'; // first: onnxruntime's telemetry off unless --ort-telemetry
import { logSink, useNonBlockingStdout } from './util/log-sink.js';
import { applyOrtTelemetry } from './util/ort-env.js';
import { Agent } from './agent.js';
import { checkStartup, ConfigError, loadConfig, parseArgs } from './config/load.js';
import { CONFIG_KEYS, ConfigSchema, describeKey, envOf, flagOf, isBooleanKey } from './config/schema.js';
import { runCoordinatorCli } from './coordinator/coordinator-cli.js';
import { coordinatorCheck, formatChecks, gpuCheck, runDoctor } from './doctor.js';
import { cacheCommand, pullCommand } from './sources/cli.js';
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

/** After SIGTERM, the process exits at the latest this long after --shutdown-grace-ms. */
const EXIT_MARGIN_MS = 5000;

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
  applyOrtTelemetry(config.ortTelemetry);
  const agent = new Agent(config);
  let stopping = false;
  // Logs are flushed for at most 1 s: a stdout nobody reads must not hold the exit (log-sink.ts).
  const exit = (code: number) => void logSink().flush(1000).finally(() => process.exit(code));
  const stop = (signal: string) => {
    if (stopping) {
      agent.logger.warn({ signal }, 'second signal: aborting');
      void agent.destroy().finally(() => exit(1));
      return;
    }
    stopping = true;
    agent.logger.info({ signal }, 'draining and stopping');
    // Whatever happens to the drain, the process is gone within the grace plus EXIT_MARGIN_MS.
    setTimeout(() => {
      agent.logger.error({ graceMs: config.shutdownGraceMs }, 'shutdown did not finish in time: exiting');
      exit(1);
    }, config.shutdownGraceMs + EXIT_MARGIN_MS).unref();
    // After this turn of the event loop: requests whose bytes were ready with the signal (a loop
    // busy with a run sees both at once) are parsed, and so accepted, before the drain begins.
    setImmediate(() => agent.close().then(
      () => exit(0),
      (err: unknown) => {
        agent.logger.error({ err }, 'error while stopping');
        exit(1);
      },
    ));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
}

async function doctor(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ['--json', '--load']);
  if (args.help) {
    console.log('gpu-agent doctor [--json] [--load] [serve options]: check this host for what the agent needs; exit 1 when it could not serve\n' +
      '  --load: also load every model as the agent would (sessions, warm-up); a model that cannot load is a FAIL');
    return;
  }
  const { json, load, ...values } = args.values;
  const config = loadConfig({ ...args, values });
  const report = await runDoctor(config, {
    gpus: () => gpuCheck(config.nvidiaSmiPath),
    ...(config.coordinatorUrl ? { coordinator: () => coordinatorCheck(config.coordinatorUrl!, config.coordinatorToken ?? '') } : {}),
  }, { load: Boolean(load) });
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(`${formatChecks(report.checks)}\n\n${report.ok ? 'the agent can serve on this host' : 'the agent could NOT serve on this host: fix the FAIL lines'}`);
  process.exitCode = report.ok ? 0 : 1;
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  useNonBlockingStdout();
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
