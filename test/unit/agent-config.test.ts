import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkStartup, ConfigError, isLoopback, loadConfig, parseArgs } from '../../src/config/load.js';
import { CONFIG_KEYS, ConfigSchema, describeKey, envOf, flagOf, isBooleanKey } from '../../src/config/schema.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-config-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Write a --config JSON file and return its path. */
function configFile(name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function load(argv: string[], env: Record<string, string> = {}) {
  return loadConfig(parseArgs(argv), env);
}

/** The message of the ConfigError that `fn` throws. */
function configError(fn: () => unknown): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  expect((caught as Error).name).toBe('ConfigError');
  return (caught as Error).message;
}

const DEFAULTS = {
  models: './models',
  host: '127.0.0.1',
  port: 8000,
  insecure: false,
  bodyLimit: 64 * 1024 * 1024,
  logLevel: 'info',
  modelControlMode: 'explicit',
  loadModels: ['*'],
  providers: ['cuda', 'cpu'],
  cudaDeviceId: 0,
  intraOpThreads: 0,
  interOpThreads: 0,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  cpuMemArena: true,
  memPattern: true,
  defaultMaxBatchSize: 16,
};

describe('loadConfig', () => {
  it('gives the defaults with no file, env or flags', () => {
    const c = load([]);
    expect(c).toMatchObject(DEFAULTS);
    expect(c).toEqual(ConfigSchema.parse({}));
    expect(c.apiToken).toBeUndefined();
    // Every key but the optional ones (tokens, coordinator, advertised URL, the state dir: found at start; a single model's name: the folder's) has a default.
    const optional = ['apiToken', 'coordinatorUrl', 'coordinatorToken', 'advertiseUrl', 'stateDir', 'modelName'];
    expect(Object.keys(c).sort()).toEqual(CONFIG_KEYS.filter((k) => !optional.includes(k)).sort());
  });

  it('ignores the process environment when given an env object', () => {
    expect(load([], { UNRELATED: 'x', GPU_AGENT: 'y' })).toEqual(load([]));
  });

  it('precedence: default < --config file < environment < flags', () => {
    const file = configFile('precedence.json', { port: 1000, host: '10.0.0.1', logLevel: 'warn', models: '/file/models', cudaDeviceId: 1 });
    const c = load(['--config', file, '--port', '3000', '--models', '/flag/models'], {
      GPU_AGENT_PORT: '2000',
      GPU_AGENT_HOST: '10.0.0.2',
      GPU_AGENT_MODELS: '/env/models',
    });
    expect(c.port).toBe(3000); // flag over env over file
    expect(c.models).toBe('/flag/models');
    expect(c.host).toBe('10.0.0.2'); // env over file
    expect(c.logLevel).toBe('warn'); // file over default
    expect(c.cudaDeviceId).toBe(1);
    expect(c.bodyLimit).toBe(DEFAULTS.bodyLimit); // default
  });

  it('reads the --config file named by GPU_AGENT_CONFIG; --config wins over it', () => {
    const a = configFile('a.json', { port: 1111 });
    const b = configFile('b.json', { port: 2222 });
    expect(load([], { GPU_AGENT_CONFIG: a }).port).toBe(1111);
    expect(load(['--config', b], { GPU_AGENT_CONFIG: a }).port).toBe(2222);
    expect(load([`--config=${b}`]).port).toBe(2222);
  });

  it('an empty environment variable counts as unset', () => {
    expect(load([], { GPU_AGENT_PORT: '', GPU_AGENT_HOST: '' })).toEqual(load([]));
  });

  it('splits comma lists, trimming blanks, from flags, env and file arrays', () => {
    expect(load(['--providers', 'cpu, cuda']).providers).toEqual(['cpu', 'cuda']);
    expect(load(['--load-models=a,,b , c']).loadModels).toEqual(['a', 'b', 'c']);
    expect(load([], { GPU_AGENT_LOAD_MODELS: 'resnet50' }).loadModels).toEqual(['resnet50']);
    expect(load(['--config', configFile('list.json', { providers: ['cpu'], loadModels: ['x', 'y'] })])).toMatchObject({
      providers: ['cpu'],
      loadModels: ['x', 'y'],
    });
  });

  it('refuses unknown providers and an empty provider list, naming the source', () => {
    expect(configError(() => load(['--providers', 'cpu,tensorrt']))).toMatch(/^invalid configuration: option --providers: /);
    expect(configError(() => load([], { GPU_AGENT_PROVIDERS: ' , ' }))).toBe(
      'invalid configuration: environment GPU_AGENT_PROVIDERS: name at least one provider, e.g. --providers cpu',
    );
  });

  it('boolean flags: bare means true, =false and a following value are read', () => {
    expect(load(['--insecure']).insecure).toBe(true);
    expect(load(['--insecure=false']).insecure).toBe(false);
    expect(load(['--insecure=true']).insecure).toBe(true);
    expect(load(['--insecure', '--port', '9']).insecure).toBe(true);
    expect(load(['--insecure', '--port', '9']).port).toBe(9);
    expect(load(['--cpu-mem-arena', 'false']).cpuMemArena).toBe(false);
    expect(load(['--mem-pattern=0']).memPattern).toBe(false);
    expect(load(['--port', '9', '--mem-pattern']).memPattern).toBe(true);
  });

  it('booleans from env and file', () => {
    expect(load([], { GPU_AGENT_INSECURE: 'yes' }).insecure).toBe(true);
    expect(load([], { GPU_AGENT_INSECURE: '1' }).insecure).toBe(true);
    expect(load([], { GPU_AGENT_CPU_MEM_ARENA: 'no' }).cpuMemArena).toBe(false);
    expect(load(['--config', configFile('bool.json', { memPattern: false, insecure: true })])).toMatchObject({
      memPattern: false,
      insecure: true,
    });
    expect(configError(() => load([], { GPU_AGENT_INSECURE: 'maybe' }))).toMatch(/^invalid configuration: environment GPU_AGENT_INSECURE: /);
    expect(configError(() => load(['--insecure=']))).toMatch(/option --insecure: /);
  });

  it('coerces numbers from strings', () => {
    const c = load(['--port', '8080', '--cuda-device-id=2'], { GPU_AGENT_BODY_LIMIT: '2048', GPU_AGENT_INTRA_OP_THREADS: ' 4 ' });
    expect(c.port).toBe(8080);
    expect(c.cudaDeviceId).toBe(2);
    expect(c.bodyLimit).toBe(2048);
    expect(c.intraOpThreads).toBe(4);
    expect(load(['--port', '0']).port).toBe(0);
  });

  it('refuses bad numbers, naming where they came from', () => {
    expect(configError(() => load(['--port', 'abc']))).toMatch(/^invalid configuration: option --port: /);
    expect(configError(() => load(['--port', '1.5']))).toMatch(/option --port: /);
    expect(configError(() => load([], { GPU_AGENT_PORT: '70000' }))).toMatch(/^invalid configuration: environment GPU_AGENT_PORT: /);
    expect(configError(() => load(['--body-limit', '100']))).toMatch(/option --body-limit: /);
    expect(configError(() => load([], { GPU_AGENT_DEFAULT_MAX_BATCH_SIZE: '0' }))).toMatch(
      /environment GPU_AGENT_DEFAULT_MAX_BATCH_SIZE: /,
    );
    const file = configFile('badport.json', { port: 'eighty' });
    expect(configError(() => load(['--config', file]))).toMatch(
      new RegExp(`^invalid configuration: config file ${file.replace(/[.\\]/g, '\\$&')} key 'port': `),
    );
  });

  it('refuses empty and non-numeric values instead of reading them as 0 or 1', () => {
    expect(configError(() => load(['--port=']))).toMatch(/option --port: /);
    expect(configError(() => load([], { GPU_AGENT_PORT: '  ' }))).toMatch(/environment GPU_AGENT_PORT: /);
    for (const port of [true, null, [8080]]) {
      const file = configFile('odd.json', { port });
      expect(configError(() => load(['--config', file]))).toContain("key 'port'");
    }
  });

  it('lists every problem at once', () => {
    const msg = configError(() => load(['--port', 'x', '--log-level', 'loud']));
    expect(msg).toContain('option --port: ');
    expect(msg).toContain('option --log-level: ');
  });

  it('refuses an API token shorter than 8 characters', () => {
    expect(configError(() => load(['--api-token', 'short']))).toBe(
      'invalid configuration: option --api-token: the API token must be at least 8 characters',
    );
    expect(load([], { GPU_AGENT_API_TOKEN: 'long-enough' }).apiToken).toBe('long-enough');
  });

  it('refuses unknown keys in the config file, listing the valid ones', () => {
    const file = configFile('unknown.json', { prot: 8000, port: 8001 });
    const msg = configError(() => load(['--config', file]));
    expect(msg).toContain(`unknown option(s) prot in ${file}; valid keys: models, host, port,`);
  });

  it('refuses unreadable or malformed config files', () => {
    const missing = path.join(dir, 'missing.json');
    expect(configError(() => load(['--config', missing]))).toContain(`cannot read --config file ${missing}`);
    expect(configError(() => load(['--config', configFile('bad.json', '{"port": ')]))).toContain('is not valid: ');
    expect(configError(() => load(['--config', configFile('arr.json', '[1]')]))).toContain('expected a JSON object of options');
  });

  it('returns a frozen config, lists included', () => {
    const c = load(['--providers', 'cpu']);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.providers)).toBe(true);
    expect(Object.isFrozen(c.loadModels)).toBe(true);
    expect(() => {
      (c as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (c.providers as string[]).push('cuda')).toThrow(TypeError);
    expect(c.port).toBe(8000);
    for (const [k, v] of Object.entries(c)) if (Array.isArray(v)) expect([k, Object.isFrozen(v)]).toEqual([k, true]);
  });
});

describe('parseArgs', () => {
  it('reads --key value and --key=value into config keys', () => {
    const a = parseArgs(['--port', '1', '--log-level=debug', '--api-token', 'a=b=c-token']);
    expect(a.values).toEqual({ port: '1', logLevel: 'debug', apiToken: 'a=b=c-token' });
    expect(a.configFile).toBeUndefined();
    expect(a.help).toBe(false);
    expect(a.positionals).toEqual([]);
  });

  it('keeps positionals and --help / -h', () => {
    expect(parseArgs(['extra', '--port', '1', 'more'])).toMatchObject({ positionals: ['extra', 'more'], values: { port: '1' } });
    expect(parseArgs(['--help']).help).toBe(true);
    expect(parseArgs(['-h']).help).toBe(true);
  });

  it('refuses unknown flags', () => {
    expect(configError(() => parseArgs(['--prot', '80']))).toBe('unknown option --prot; run with --help for the list');
    expect(configError(() => parseArgs(['--apiToken=abcdefgh']))).toContain('unknown option --apiToken');
  });

  it('a flag that needs a value must have one', () => {
    expect(configError(() => parseArgs(['--port']))).toBe('option --port needs a value');
  });

  it('takes extra flags when asked', () => {
    expect(parseArgs(['--dry-run', 'yes'], ['--dry-run']).values).toEqual({ 'dry-run': 'yes' });
  });
});

describe('checkStartup', () => {
  it('refuses 0.0.0.0 without a token or --insecure', () => {
    const msg = checkStartup(load(['--host', '0.0.0.0']));
    expect(msg).toContain('refusing to listen on 0.0.0.0 without an API token');
    expect(msg).toContain('--api-token');
    expect(msg).toContain('--insecure');
  });

  it('allows 0.0.0.0 with --insecure or with a token', () => {
    expect(checkStartup(load(['--host', '0.0.0.0', '--insecure']))).toBeUndefined();
    expect(checkStartup(load(['--host', '0.0.0.0', '--api-token', 'secret-token']))).toBeUndefined();
    expect(checkStartup(load([], { GPU_AGENT_HOST: '::', GPU_AGENT_API_TOKEN: 'secret-token' }))).toBeUndefined();
  });

  it('allows loopback hosts without a token', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) {
      expect(isLoopback(host)).toBe(true);
      expect(checkStartup(load(['--host', host]))).toBeUndefined();
    }
    expect(isLoopback('10.0.0.1')).toBe(false);
    expect(isLoopback('::')).toBe(false);
    // A host name that merely starts with "127." is not a loopback address.
    expect(isLoopback('127.example.com')).toBe(false);
    expect(checkStartup(load(['--host', '127.0.0.1.nip.io']))).toContain('refusing to listen on 127.0.0.1.nip.io');
    expect(checkStartup(load(['--host', '192.168.1.5']))).toContain('refusing to listen on 192.168.1.5');
  });
});

describe('flagOf / envOf / keys', () => {
  it.each([
    ['port', '--port', 'GPU_AGENT_PORT'],
    ['apiToken', '--api-token', 'GPU_AGENT_API_TOKEN'],
    ['cudaDeviceId', '--cuda-device-id', 'GPU_AGENT_CUDA_DEVICE_ID'],
    ['defaultMaxBatchSize', '--default-max-batch-size', 'GPU_AGENT_DEFAULT_MAX_BATCH_SIZE'],
  ])('%s -> %s, %s', (key, flag, env) => {
    expect(flagOf(key)).toBe(flag);
    expect(envOf(key)).toBe(env);
  });

  it('every key has a description, a distinct flag and env name, and parses from its flag', () => {
    expect(CONFIG_KEYS).toContain('port');
    expect(new Set(CONFIG_KEYS.map(flagOf)).size).toBe(CONFIG_KEYS.length);
    expect(new Set(CONFIG_KEYS.map(envOf)).size).toBe(CONFIG_KEYS.length);
    for (const k of CONFIG_KEYS) {
      expect(describeKey(k).length).toBeGreaterThan(0);
      expect(parseArgs([flagOf(k), 'v']).values).toEqual({ [k]: 'v' });
    }
  });

  it('knows the boolean keys; each is true as a bare flag and false with =false', () => {
    const keys = CONFIG_KEYS.filter(isBooleanKey);
    expect(keys).toEqual(expect.arrayContaining(['cpuMemArena', 'insecure', 'memPattern']));
    expect(isBooleanKey('port')).toBe(false);
    for (const k of keys) {
      expect((load([flagOf(k)]) as Record<string, unknown>)[k]).toBe(true);
      expect((load([`${flagOf(k)}=false`]) as Record<string, unknown>)[k]).toBe(false);
    }
  });
});
