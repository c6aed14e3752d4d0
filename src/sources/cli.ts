/**
 * `gpu-agent pull` and `gpu-agent cache`: the same puller as the agent's, run in this process
 * against the same --state-dir and --models, so they work with or without a running agent (a
 * download lock in the cache keeps two processes from fetching one digest twice).
 *
 *   gpu-agent pull <uri> --sha256 <hex> --name <model> [--version N] [--size B] [--path model.onnx]
 *   gpu-agent pull --manifest <file.json>
 *   gpu-agent cache ls | verify | gc
 *
 * Exit codes: 0 done, 1 failed (the reason on stderr), 2 bad usage.
 */
import { readFile } from 'node:fs/promises';
import { SingleBar } from 'cli-progress';
import { ConfigError, loadConfig, parseArgs } from '../config/load.js';
import { systemClock } from '../util/clock.js';
import { createLogger } from '../util/logger.js';
import { hashFile } from './cache/blob-store.js';
import { PullError } from './errors.js';
import { ManifestError, manifestDigest, parseManifest, type Manifest } from './manifest.js';
import { pullerSettings } from './index.js';
import { ModelPuller, type PullProgress } from './puller.js';
import { envSecrets, redactUri, scrub } from './redact.js';

const PULL_FLAGS = ['--sha256', '--name', '--version', '--size', '--path', '--manifest'];

/** Split our own flags from the agent's config flags. */
function splitArgs(argv: readonly string[], own: readonly string[]): { own: Record<string, string>; rest: string[] } {
  const mine: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (own.includes(flag)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new ConfigError(`option ${flag} needs a value`);
      mine[flag.slice(2)] = v;
    } else rest.push(arg);
  }
  return { own: mine, rest };
}

export function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** One plain progress line (non-TTY output, and the logs). */
export function progressLine(p: Readonly<PullProgress>): string {
  const total = p.bytesTotal !== undefined ? `/${mb(p.bytesTotal)}` : '';
  const rate = p.rateBytesPerSecond > 0 ? ` ${mb(p.rateBytesPerSecond)}/s` : '';
  const eta = p.etaSeconds !== undefined && p.state === 'DOWNLOADING' ? ` ETA ${Math.ceil(p.etaSeconds)} s` : '';
  return `pull ${p.name} v${p.version}: ${p.state} ${mb(p.bytesDone)}${total}${rate}${eta}${p.reason ? ` (${p.reason})` : ''}`;
}

async function buildManifest(own: Record<string, string>, positionals: readonly string[], puller: ModelPuller): Promise<Manifest> {
  if (own.manifest) {
    if (positionals.length || own.sha256 || own.name) throw new ConfigError('give either --manifest <file> or <uri> --sha256 --name, not both');
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(own.manifest, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read the manifest ${own.manifest}: ${(err as Error).message}`);
    }
    return parseManifest(raw, `manifest ${own.manifest}`);
  }
  const uri = positionals[0];
  if (!uri || positionals.length > 1) throw new ConfigError('usage: gpu-agent pull <uri> --sha256 <hex> --name <model> [--version N] | gpu-agent pull --manifest <file>');
  if (!own.sha256) throw new ConfigError('--sha256 <hex> is required: the agent trusts the digest you give, never the source');
  if (!own.name) throw new ConfigError('--name <model> is required');
  let version = own.version !== undefined ? Number(own.version) : undefined;
  if (version === undefined) version = Math.max(0, ...(await puller.records.list(own.name)).map((r) => r.version)) + 1;
  const base = uri.split(/[?#]/)[0]!.split('/').pop() ?? '';
  const file = own.path ?? (base.endsWith('.onnx') ? base : 'model.onnx');
  return parseManifest({
    name: own.name, version,
    files: [{ path: file, uri, sha256: own.sha256.toLowerCase(), ...(own.size !== undefined ? { size: Number(own.size) } : {}) }],
  }, 'pull arguments');
}

function progressReporter(tty: boolean) {
  let bar: SingleBar | undefined;
  let lastLine = 0;
  let lastState = '';
  return {
    update(p: Readonly<PullProgress>) {
      if (tty) {
        if (!bar) {
          bar = new SingleBar({ format: '{model} v{version} [{bar}] {percentage}% | {doneMb}/{totalMb} | {rate} | ETA {eta}s | {state}', hideCursor: true });
          bar.start(p.bytesTotal ?? 0, 0, { model: p.name, version: p.version, doneMb: '0', totalMb: '?', rate: '', state: p.state });
        }
        if (p.bytesTotal !== undefined) bar.setTotal(p.bytesTotal);
        bar.update(p.bytesDone, { doneMb: mb(p.bytesDone), totalMb: p.bytesTotal !== undefined ? mb(p.bytesTotal) : '?', rate: `${mb(p.rateBytesPerSecond)}/s`, state: p.state });
        return;
      }
      const now = Date.now();
      if (p.state !== lastState || now - lastLine >= 2000) {
        lastLine = now;
        lastState = p.state;
        console.log(progressLine(p));
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

export async function pullCommand(argv: readonly string[]): Promise<number> {
  const { own, rest } = splitArgs(argv, PULL_FLAGS);
  const args = parseArgs(rest);
  if (args.help) {
    console.log('gpu-agent pull <uri> --sha256 <hex> --name <model> [--version N] [--size BYTES] [--path model.onnx] [agent options]\n' +
      'gpu-agent pull --manifest <file.json> [agent options]\n' +
      'Fetches into <state-dir>/blobs (verified by sha256, resumable) and puts the version into the --models repository.\n' +
      'Sources: https://, http:// (with --allow-http), s3://bucket/key (AWS_* env, ~/.aws/credentials, AWS_ENDPOINT_URL), hf://owner/repo[@rev]/path (HF_TOKEN, HF_ENDPOINT).');
    return 0;
  }
  const config = loadConfig({ ...args, positionals: [] });
  const logger = createLogger(args.values.logLevel ? config.logLevel : 'warn');
  const reporter = progressReporter(process.stdout.isTTY === true);
  const puller = new ModelPuller({ ...pullerSettings(config), clock: systemClock, logger, onProgress: (p) => reporter.update(p) });
  const secrets = envSecrets(process.env);
  let manifest: Manifest;
  try {
    manifest = await buildManifest(own, args.positionals, puller);
  } catch (err) {
    if (err instanceof ManifestError) throw new ConfigError(scrub(err.message, secrets));
    throw err;
  }
  try {
    const record = await puller.pull(manifest, 'cli');
    await puller.activate(manifest.name, manifest.version);
    reporter.stop();
    console.log(`pulled ${manifest.name} version ${manifest.version} (${record.files.length} file${record.files.length > 1 ? 's' : ''}, manifest ${manifestDigest(manifest)}) from ${record.source} into ${config.models}`);
    return 0;
  } catch (err) {
    reporter.stop();
    const msg = err instanceof PullError ? err.message : scrub((err as Error).message, secrets);
    console.error(`gpu-agent pull: failed: ${msg}`);
    return 1;
  }
}

export async function cacheCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest, ['--json']);
  if (args.help || !sub || !['ls', 'verify', 'gc'].includes(sub)) {
    console.log('gpu-agent cache ls|verify|gc [--json] [agent options: --state-dir, --models, --cache-budget]\n' +
      '  ls      every blob: digest, size, last use, the pulled versions that reference it\n' +
      '  verify  re-hash every blob; a corrupt one is removed with the versions that use it (exit 1)\n' +
      '  gc      remove blobs no pulled version references, then evict LRU blobs beyond --cache-budget');
    return sub && !['ls', 'verify', 'gc'].includes(sub) ? 2 : 0;
  }
  const { json, ...values } = args.values;
  const config = loadConfig({ ...args, values, positionals: [] });
  const puller = new ModelPuller({ ...pullerSettings(config), clock: systemClock, logger: createLogger(values.logLevel ? config.logLevel : 'warn') });
  const blobs = await puller.blobs.list();
  const records = await puller.records.list();
  const users = (hex: string) => records.filter((r) => !r.evicted && r.files.some((f) => f.sha256 === hex)).map((r) => `${r.name}/${r.version}`);
  if (sub === 'ls') {
    const rows = blobs.map((b) => ({ sha256: b.hex, bytes: b.bytes, lastUsed: new Date(b.lastUsed).toISOString(), usedBy: users(b.hex) }));
    const total = blobs.reduce((n, b) => n + b.bytes, 0);
    const budget = config.cacheBudget === 'none' ? undefined : config.cacheBudget;
    if (json) console.log(JSON.stringify({ blobs: rows, totalBytes: total, budgetBytes: budget ?? null, versions: records.map((r) => ({ name: r.name, version: r.version, manifestDigest: r.manifestDigest, source: redactUri(r.source), pulledAt: r.pulledAt, by: r.by, ...(r.evicted ? { evicted: r.evicted } : {}) })) }, null, 2));
    else {
      for (const r of rows) console.log(`${r.sha256.slice(0, 16)}  ${mb(r.bytes).padStart(10)}  ${r.lastUsed}  ${r.usedBy.join(', ') || '(unreferenced)'}`);
      console.log(`${blobs.length} blob(s), ${mb(total)}${budget !== undefined ? ` of a ${mb(budget)} budget` : ''}`);
    }
    return 0;
  }
  if (sub === 'verify') {
    let bad = 0;
    for (const b of blobs) {
      const actual = (await hashFile(puller.blobs.blobPath(b.hex))).hash.digest('hex');
      if (actual === b.hex) {
        if (!json) console.log(`ok       ${b.hex}`);
        continue;
      }
      bad++;
      console.log(`CORRUPT  ${b.hex}: the bytes hash to ${actual}; removed with ${users(b.hex).join(', ') || 'no version'}`);
      await puller.evict(b.hex, b.bytes, `corrupt: hashes to ${actual}`);
    }
    console.log(`${blobs.length - bad} of ${blobs.length} blob(s) verified`);
    return bad ? 1 : 0;
  }
  const r = await puller.gc();
  console.log(`gc: removed ${r.removed.length} blob(s)${r.removed.length ? `: ${r.removed.map((h) => h.slice(0, 12)).join(', ')}` : ''}`);
  return 0;
}
