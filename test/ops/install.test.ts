/**
 * scripts/install.sh and scripts/install-cuda-provider.sh, run as a user runs them but with
 * --dry-run: they print every action and change nothing, so this works without root, without a
 * GPU and without systemd. A fake `nvidia-smi` (failing, or reporting CUDA 13.0 / 12.8) and a
 * fake old `node` first on PATH make the host-dependent decisions deterministic.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const INSTALL = path.join(ROOT, 'scripts/install.sh');
const PROVIDER = path.join(ROOT, 'scripts/install-cuda-provider.sh');
const TOKEN = 'abc123456789';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
/** A test title that says why it is skipped when it is. */
const unless = (ok: boolean, title: string, why: string) => (ok ? title : `${title} (skipped: ${why})`);
const HAS_SHELLCHECK = has('shellcheck');
const HAS_SYSTEMD_ANALYZE = has('systemd-analyze');

interface Run { status: number | null; out: string; stdout: string; stderr: string }

/** bash SCRIPT ARGS with the given folders first on PATH; `out` is stdout + stderr. */
function bash(script: string, args: string[], pathDirs: string[] = [], env: Record<string, string> = {}): Run {
  const r = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    cwd: os.tmpdir(),
    timeout: 120_000,
    env: { ...process.env, ...env, PATH: [...pathDirs, process.env.PATH ?? ''].join(path.delimiter) },
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`, stdout: r.stdout, stderr: r.stderr };
}

/** The content lines ("      | ...") printed after "[dry-run] write FILE ...:". */
function writtenFile(out: string, file: string): string {
  const lines = out.split('\n');
  const start = lines.findIndex((l) => l.includes(`[dry-run] write ${file} (`));
  if (start < 0) throw new Error(`no write of ${file} in the plan`);
  const body: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!l.startsWith('      | ') && l !== '      |') break;
    body.push(l.replace(/^ {6}\| ?/, ''));
  }
  return body.join('\n');
}

let bin: { noGpu: string; cuda13: string; cuda12: string; oldNode: string };

function fakeCommand(dir: string, name: string, script: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), `#!/bin/sh\n${script}\n`);
  chmodSync(path.join(dir, name), 0o755);
}

const smi = (driver: string, cuda: string) =>
  `if [ "$1" = -L ]; then echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-0000-0000-0000-000000000000)"; exit 0; fi\n` +
  `echo "| NVIDIA-SMI ${driver}   Driver Version: ${driver}   CUDA Version: ${cuda}     |"`;

beforeAll(() => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-ops-'));
  bin = { noGpu: path.join(tmp, 'nogpu'), cuda13: path.join(tmp, 'cuda13'), cuda12: path.join(tmp, 'cuda12'), oldNode: path.join(tmp, 'oldnode') };
  fakeCommand(bin.noGpu, 'nvidia-smi', `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2; exit 9`);
  fakeCommand(bin.cuda13, 'nvidia-smi', smi('580.65.06', '13.0'));
  fakeCommand(bin.cuda12, 'nvidia-smi', smi('570.86.10', '12.8'));
  fakeCommand(bin.oldNode, 'node', 'echo v18.19.1');
});

describe('install.sh --dry-run (no GPU)', () => {
  let plan: Run;
  const SYSTEM_PATHS = ['/opt/gpu-agent.new', '/etc/gpu-agent/agent.env', '/etc/systemd/system/gpu-agent.service'];
  let existedBefore: boolean[];

  beforeAll(() => {
    existedBefore = SYSTEM_PATHS.map((p) => existsSync(p));
    plan = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--token', TOKEN, '--port', '18765', '--models', '/srv/models'], [bin.noGpu]);
  });

  it('exits 0 and says that nothing is changed', () => {
    expect(plan.status, plan.out).toBe(0);
    expect(plan.out).toMatch(/dry run: printing every action; nothing is changed/);
    expect(plan.out).toMatch(/dry run finished: nothing was changed/);
    expect(SYSTEM_PATHS.map((p) => existsSync(p))).toEqual(existedBefore);
  });

  it('prints every step, in order', () => {
    const steps = [
      /OS: .*\(supported\)/,
      /NVIDIA driver: not found \(nvidia-smi missing or failing\); --allow-no-gpu: going on/,
      /CUDA provider: 13 \(the default; no driver to ask\)/,
      /port 18765 is free|ss not found yet/,
      /Node\.js v\d+\.\d+\.\d+ at \S+ is new enough: keeping it/,
      /\[dry-run\] \(cd \/opt\/gpu-agent\.new && npm ci --include=dev --no-audit --no-fund\)/,
      /\[dry-run\] \(cd \/opt\/gpu-agent\.new && npm run models\)/,
      /\[dry-run\] \(cd \/opt\/gpu-agent\.new && npm prune --omit=dev --no-audit --no-fund\)/,
      /\[dry-run\] bash \/opt\/gpu-agent\.new\/scripts\/install-cuda-provider\.sh --cuda 13 --dir \/opt\/gpu-agent\.new --dry-run/,
      /\[dry-run\] npm pack --silent --pack-destination \S+ com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9/,
      /\[dry-run\] useradd --system --user-group --home-dir \/var\/lib\/gpu-agent .*gpu-agent$/m,
      /\[dry-run\] mv \/opt\/gpu-agent\.new \/opt\/gpu-agent$/m,
      /\[dry-run\] write \/etc\/gpu-agent\/agent\.env \(mode 0640, root:gpu-agent\)/,
      /\[dry-run\] write \/etc\/systemd\/system\/gpu-agent\.service \(mode 0644, root:root\)/,
      /\[dry-run\] systemctl daemon-reload/,
      /\[dry-run\] systemctl enable gpu-agent\.service/,
      /\[dry-run\] systemctl restart gpu-agent\.service/,
      /wait for http:\/\/127\.0\.0\.1:18765\/v2\/health\/ready \(up to 90s\)/,
      /curl -s -X POST -H "Authorization: Bearer abc123456789" http:\/\/\S+:18765\/v2\/repository\/index/,
    ];
    let at = -1;
    for (const re of steps) {
      const m = re.exec(plan.stdout);
      expect(m, `${re} in the plan:\n${plan.out}`).not.toBeNull();
      expect(m!.index, `${re} comes after the previous step`).toBeGreaterThan(at);
      at = m!.index;
    }
  });

  it('writes the env file with the host, port, models, token and drain grace', () => {
    const env = writtenFile(plan.stdout, '/etc/gpu-agent/agent.env');
    for (const line of ['GPU_AGENT_HOST=0.0.0.0', 'GPU_AGENT_PORT=18765', 'GPU_AGENT_MODELS=/srv/models',
      `GPU_AGENT_API_TOKEN=${TOKEN}`, 'GPU_AGENT_SHUTDOWN_GRACE_MS=30000', 'GPU_AGENT_ALLOCATOR=auto']) {
      expect(env.split('\n')).toContain(line);
    }
    expect(env).not.toMatch(/COORDINATOR/);
  });

  it('writes a hardened unit that drains on stop', () => {
    const unit = writtenFile(plan.stdout, '/etc/systemd/system/gpu-agent.service').split('\n');
    for (const line of ['Restart=on-failure', 'TimeoutStopSec=40', 'KillSignal=SIGTERM', 'User=gpu-agent',
      'EnvironmentFile=/etc/gpu-agent/agent.env', 'WorkingDirectory=/opt/gpu-agent', 'NoNewPrivileges=yes',
      'ProtectSystem=strict', 'ReadWritePaths=/var/lib/gpu-agent', 'StateDirectory=gpu-agent/state', 'RestartPreventExitStatus=2',
      'CapabilityBoundingSet=', 'WantedBy=multi-user.target']) {
      expect(unit).toContain(line);
    }
    // The launcher (preloads jemalloc, then execs node: the PID systemd signals is the agent's).
    expect(unit.find((l) => l.startsWith('ExecStart='))).toBe('ExecStart=/bin/sh /opt/gpu-agent/scripts/gpu-agent.sh serve');
    expect(unit.find((l) => l.startsWith('Environment=GPU_AGENT_NODE='))).toMatch(/^Environment=GPU_AGENT_NODE=\/\S*node$/);
    // these would hide the GPU or break V8
    expect(unit.filter((l) => /^(PrivateDevices|DevicePolicy|MemoryDenyWriteExecute)=/.test(l))).toEqual([]);
  });

  it('creates an empty models folder that is not there yet, and never seeds a folder of the user', () => {
    expect(plan.out).toMatch(/\[dry-run\] install -d -m 0750 -o root -g gpu-agent \/srv\/models/);
    expect(plan.out).not.toMatch(/cp -r \/opt\/gpu-agent\/models/);
  });
});

describe('install.sh --dry-run: choices', () => {
  it('picks the CUDA 13 provider on a driver that supports CUDA 13 (no --allow-no-gpu needed)', () => {
    const r = bash(INSTALL, ['--dry-run', '--token', TOKEN, '--port', '18765'], [bin.cuda13]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/NVIDIA driver 580\.65\.06, supports CUDA 13\.0; GPUs: 1/);
    expect(r.out).toMatch(/install-cuda-provider\.sh --cuda 13 /);
    // default models: seeded with the bundled examples, and the example call names one
    expect(r.out).toMatch(/\[dry-run\] cp -r \/opt\/gpu-agent\/models \/var\/lib\/gpu-agent\/models/);
    expect(r.out).toMatch(/\/v2\/models\/add_sub/);
  });

  it('picks the CUDA 12 provider (onnxruntime-node\'s NuGet installer) on a CUDA 12 driver', () => {
    const r = bash(INSTALL, ['--dry-run', '--token', TOKEN, '--port', '18765'], [bin.cuda12]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/CUDA provider: 12 \(the driver supports CUDA 12\.8/);
    expect(r.out).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 node \/opt\/gpu-agent\.new\/node_modules\/onnxruntime-node\/script\/install/);
  });

  it('--cuda none installs no provider and makes the agent CPU-only', () => {
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--cuda', 'none', '--token', TOKEN, '--port', '18765'], [bin.noGpu]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toMatch(/install-cuda-provider\.sh --cuda/);
    expect(writtenFile(r.stdout, '/etc/gpu-agent/agent.env').split('\n')).toContain('GPU_AGENT_PROVIDERS=cpu');
  });

  it('installs Node.js from the nodejs.org tarball when node is older than 20.19', () => {
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--node-source', 'tarball', '--token', TOKEN, '--port', '18765'], [bin.oldNode, bin.noGpu]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/Node\.js v18\.19\.1 at \S+ is older than 20\.19\.0: installing a newer one/);
    expect(r.out).toMatch(/curl -fsSL https:\/\/nodejs\.org\/dist\/latest-v22\.x\/SHASUMS256\.txt/);
    expect(r.out).toMatch(/sha256sum --check/);
    expect(r.out).toMatch(/ln -sfn \/usr\/local\/lib\/nodejs\/node-v22\.x\.y-linux-x64\/bin\/node \/usr\/local\/bin\/node/);
    expect(writtenFile(r.stdout, '/etc/systemd/system/gpu-agent.service')).toMatch(/^Environment=GPU_AGENT_NODE=\/usr\/local\/bin\/node$/m);
  });

  it('writes the coordinator settings and the drain grace given as flags', () => {
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--port', '18765', '--token', TOKEN, '--coordinator', 'wss://coord.example/agents',
      '--coordinator-token', 'coordtoken123', '--shutdown-grace-ms', '45000'], [bin.noGpu]);
    expect(r.status, r.out).toBe(0);
    const env = writtenFile(r.stdout, '/etc/gpu-agent/agent.env').split('\n');
    expect(env).toContain('GPU_AGENT_COORDINATOR_URL=wss://coord.example/agents');
    expect(env).toContain('GPU_AGENT_COORDINATOR_TOKEN=coordtoken123');
    expect(env).toContain('GPU_AGENT_SHUTDOWN_GRACE_MS=45000');
    expect(writtenFile(r.stdout, '/etc/systemd/system/gpu-agent.service').split('\n')).toContain('TimeoutStopSec=55');
  });

  it('installs libjemalloc2 for the agent when the host lacks it (the launcher\'s own lookup says so)', () => {
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--token', TOKEN, '--port', '18765'], [bin.noGpu], { GPU_AGENT_JEMALLOC_PATH: '/nonexistent/libjemalloc.so.2' });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/allocator: libjemalloc\.so\.2 not found: installing libjemalloc2 \(GPU_AGENT_ALLOCATOR=auto\)/);
    expect(r.out).toMatch(/\[dry-run\] env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends (\S+ )*libjemalloc2$/m);
  });

  it('keeps the jemalloc it finds (no apt-get for it)', () => {
    const lib = path.join(mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-je-')), 'libjemalloc.so.2');
    writeFileSync(lib, ''); // only looked up here, never loaded
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--token', TOKEN, '--port', '18765'], [bin.noGpu], { GPU_AGENT_JEMALLOC_PATH: lib });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`allocator: jemalloc ${lib} (GPU_AGENT_ALLOCATOR=auto)`);
    expect(r.out).not.toMatch(/apt-get install .*libjemalloc2/);
  });

  it('--allocator glibc: no libjemalloc2, and the service starts on glibc (GPU_AGENT_ALLOCATOR=glibc)', () => {
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--allocator', 'glibc', '--token', TOKEN, '--port', '18765'], [bin.noGpu], { GPU_AGENT_JEMALLOC_PATH: '/nonexistent/libjemalloc.so.2' });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/allocator: glibc \(--allocator glibc\): libjemalloc2 not needed/);
    expect(r.out).not.toMatch(/libjemalloc2$/m);
    expect(writtenFile(r.stdout, '/etc/gpu-agent/agent.env').split('\n')).toContain('GPU_AGENT_ALLOCATOR=glibc');
  });

  it('generates a token when none is given (openssl rand -hex 24)', () => {
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', '--port', '18765'], [bin.noGpu]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/API token (generated|kept from \/etc\/gpu-agent\/agent\.env)/);
  });
});

describe('install.sh refusals', () => {
  it('stops early without an NVIDIA driver unless --allow-no-gpu', () => {
    const r = bash(INSTALL, ['--dry-run', '--token', TOKEN], [bin.noGpu]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no working NVIDIA driver: nvidia-smi is missing or fails/);
    expect(r.stderr).toMatch(/--allow-no-gpu/);
    expect(r.stdout).not.toMatch(/npm ci/);
  });

  it('refuses an OS other than Ubuntu/Debian', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-os-'));
    writeFileSync(path.join(dir, 'os-release'), 'NAME="Fedora Linux"\nID=fedora\nPRETTY_NAME="Fedora Linux 40"\n');
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu'], [bin.noGpu], { GPU_AGENT_INSTALL_OS_RELEASE: path.join(dir, 'os-release') });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unsupported OS 'Fedora Linux 40': this installer supports Ubuntu and Debian/);
  });

  it.each([
    [['--frobnicate'], /unknown option '--frobnicate'/],
    [['--port'], /--port needs a value/],
    [['--port', '99999'], /--port must be a number from 1 to 65535, not '99999'/],
    [['--port', 'http'], /--port must be a number/],
    [['--token', 'short'], /--token must be at least 8 characters/],
    [['--token', 'has space in it'], /--token may only contain/],
    [['--cuda', '11'], /--cuda must be auto, 12, 13 or none, not '11'/],
    [['--models', 'relative/models'], /--models must be an absolute path/],
    [['--prefix', '/usr'], /--prefix \/usr would mix the agent with the system's files/],
    [['--coordinator', 'ftp://x'], /--coordinator must be an http\(s\):\/\/ or ws\(s\):\/\/ URL/],
    [['--node-source', 'nodesource'], /--node-source must be auto, apt or tarball/],
    [['--allocator', 'tcmalloc'], /--allocator must be auto, jemalloc or glibc, not 'tcmalloc'/],
    [['--purge'], /--purge only goes with --uninstall/],
  ])('%j fails with exit 2 and a clear message', (args, message) => {
    const r = bash(INSTALL, ['--dry-run', '--allow-no-gpu', ...args], [bin.noGpu]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/run with --help for the options/);
    expect(r.stdout).toBe('');
  });

  // As root (CI), the check runs as 'nobody' through runuser.
  const root = process.getuid?.() === 0;
  const canDrop = !root || (has('runuser') && spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', INSTALL]).status === 0);
  it.skipIf(!canDrop)(unless(canDrop, 'refuses to run for real without root', 'root, and no runuser or the script is not readable by nobody'), () => {
    const r = root
      ? (() => {
        const p = spawnSync('runuser', ['-u', 'nobody', '--', 'bash', INSTALL, '--allow-no-gpu'], { encoding: 'utf8', cwd: '/', timeout: 60_000 });
        return { status: p.status, stderr: p.stderr, stdout: p.stdout };
      })()
      : bash(INSTALL, ['--allow-no-gpu'], [bin.noGpu]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/run as root: sudo bash scripts\/install\.sh/);
    expect(r.stdout).toBe('');
  });

  it('--help lists every option', () => {
    const r = bash(INSTALL, ['--help']);
    expect(r.status).toBe(0);
    for (const flag of ['--token', '--coordinator', '--coordinator-token', '--models', '--port', '--prefix', '--cuda',
      '--uninstall', '--purge', '--dry-run', '--allow-no-gpu', '--print-unit', '--no-systemd']) {
      expect(r.stdout).toContain(flag);
    }
  });
});

describe('install.sh --uninstall --dry-run', () => {
  it('stops, disables and removes the unit, the agent, its settings and user; keeps the models', () => {
    const r = bash(INSTALL, ['--uninstall', '--dry-run'], [bin.noGpu]);
    expect(r.status, r.out).toBe(0);
    for (const re of [
      /\[dry-run\] systemctl disable --now gpu-agent\.service/,
      /\[dry-run\] rm -f \/etc\/systemd\/system\/gpu-agent\.service/,
      /\[dry-run\] systemctl daemon-reload/,
      /\[dry-run\] rm -rf \/opt\/gpu-agent$/m,
      /\[dry-run\] rm -rf \/etc\/gpu-agent$/m,
      /\[dry-run\] userdel gpu-agent/,
      /kept \/var\/lib\/gpu-agent and the models in \S+ \(--purge removes \/var\/lib\/gpu-agent\)/,
    ]) expect(r.out).toMatch(re);
    expect(r.out).not.toMatch(/rm -rf \/var\/lib\/gpu-agent/);
  });

  it('--purge also removes /var/lib/gpu-agent', () => {
    const r = bash(INSTALL, ['--uninstall', '--purge', '--dry-run'], [bin.noGpu]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/\[dry-run\] rm -rf \/var\/lib\/gpu-agent$/m);
  });
});

describe('install.sh --print-unit', () => {
  const unitFor = (args: string[]) => {
    const r = bash(INSTALL, ['--print-unit', ...args]);
    expect(r.status, r.out).toBe(0);
    return r.stdout;
  };

  it('prints the unit alone (no root needed)', () => {
    const unit = unitFor(['--port', '18765']);
    expect(unit).toMatch(/^# \/etc\/systemd\/system\/gpu-agent\.service/);
    expect(unit).toMatch(/^\[Service\]$/m);
    expect(unit).toMatch(/^TimeoutStopSec=40$/m);
  });

  it('grants only CAP_NET_BIND_SERVICE, and only for a port below 1024', () => {
    expect(unitFor(['--port', '80'])).toMatch(/^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    expect(unitFor(['--port', '8080'])).toMatch(/^CapabilityBoundingSet=$/m);
  });

  it.skipIf(!HAS_SYSTEMD_ANALYZE)(unless(HAS_SYSTEMD_ANALYZE, 'passes systemd-analyze verify', 'systemd-analyze is not installed'), () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-unit-'));
    const file = path.join(dir, 'gpu-agent.service');
    writeFileSync(file, unitFor(['--port', '18765']));
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
    const complaints = `${r.stdout}\n${r.stderr}`.split('\n')
      .filter((l) => l.includes('gpu-agent.service') && /ignoring|unknown|failed|invalid|not executable|bad/i.test(l));
    expect(complaints, `${r.stdout}${r.stderr}`).toEqual([]);
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });
});

describe('install-cuda-provider.sh --dry-run', () => {
  /** A project folder with an onnxruntime-node of the given version and no provider yet. */
  function fakeProject(version: string): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-ort-'));
    mkdirSync(path.join(dir, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64'), { recursive: true });
    writeFileSync(path.join(dir, 'node_modules/onnxruntime-node/package.json'), JSON.stringify({ name: 'onnxruntime-node', version }, null, 2));
    return dir;
  }
  const x64 = os.platform() === 'linux' && os.arch() === 'x64';

  it.skipIf(!x64)('plans the CUDA 13 provider from the npm registry and changes nothing', () => {
    const dir = fakeProject('1.29.0');
    const r = bash(PROVIDER, ['--dry-run', '--dir', dir], [bin.noGpu]);
    expect(r.status, r.out).toBe(0);
    const ortBin = `${dir}/node_modules/onnxruntime-node/bin/napi-v6/linux/x64`;
    expect(r.out).toMatch(/choosing the CUDA 13 provider \(the default; no driver to ask\)/);
    expect(r.out).toMatch(/\[dry-run\] npm pack --silent --pack-destination \S+ com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9/);
    expect(r.out).toContain(`package/Plugins/Linux/x64/libonnxruntime_providers_shared.so package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so`);
    expect(r.out).toContain(`${ortBin}/libonnxruntime_providers_cuda.so`);
    expect(r.out).toMatch(/would verify .* and list the CUDA libraries they cannot find \(ldd\)/);
    expect(existsSync(`${ortBin}/libonnxruntime_providers_cuda.so`)).toBe(false);
    expect(existsSync(`${ortBin}/.gpu-agent-cuda-provider`)).toBe(false);
  });

  it.skipIf(!x64)('auto picks CUDA 12 (onnxruntime-node\'s installer) on a CUDA 12 driver', () => {
    const dir = fakeProject('1.29.0');
    const r = bash(PROVIDER, ['--dry-run', '--dir', dir], [bin.cuda12]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/choosing the CUDA 12 provider \(driver supports CUDA 12\.8, below 13\)/);
    expect(r.out).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 node \S+\/node_modules\/onnxruntime-node\/script\/install/);
  });

  it.skipIf(!x64)('refuses the CUDA 13 build for an onnxruntime-node other than 1.29.0', () => {
    const r = bash(PROVIDER, ['--dry-run', '--cuda', '13', '--dir', fakeProject('1.28.0')], [bin.cuda13]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/is built for onnxruntime 1\.29\.0 exactly, but onnxruntime-node is 1\.28\.0/);
  });

  it.skipIf(!x64)('--strict fails without a GPU', () => {
    const r = bash(PROVIDER, ['--dry-run', '--strict', '--dir', fakeProject('1.29.0')], [bin.noGpu]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--strict: no NVIDIA driver on this host/);
  });

  it('rejects bad flags with exit 2', () => {
    for (const args of [['--cuda', '11'], ['--bogus']]) {
      const r = bash(PROVIDER, args, [bin.noGpu]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/run with --help for the options/);
    }
  });
});

describe('lint', () => {
  it.skipIf(!HAS_SHELLCHECK)(unless(HAS_SHELLCHECK, 'shellcheck passes on every script', 'shellcheck is not installed; apt-get install shellcheck'), () => {
    const scripts = readdirSync(path.join(ROOT, 'scripts')).filter((f) => f.endsWith('.sh')).map((f) => path.join(ROOT, 'scripts', f));
    expect(scripts).toEqual(expect.arrayContaining([INSTALL, PROVIDER]));
    const r = spawnSync('shellcheck', scripts, { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('Dockerfile.cuda uses the same provider, env names and drain as install.sh', () => {
    const docker = readFileSync(path.join(ROOT, 'Dockerfile.cuda'), 'utf8');
    expect(docker).toMatch(/^FROM \$\{NODE_IMAGE\} AS build$/m);
    expect(docker).toMatch(/^ARG NODE_IMAGE=node:22-bookworm-slim$/m);
    expect(docker).toMatch(/^ARG CUDA_IMAGE=nvidia\/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu24\.04$/m);
    expect(docker).toMatch(/scripts\/install-cuda-provider\.sh --cuda 13/);
    expect(docker).toMatch(/GPU_AGENT_HOST=0\.0\.0\.0/);
    expect(docker).toMatch(/GPU_AGENT_SHUTDOWN_GRACE_MS=30000/);
    expect(docker).toMatch(/--stop-timeout 40/);
    expect(docker).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(docker).toMatch(/^HEALTHCHECK .*\n?.*\/v2\/health\/ready/m);
    expect(docker).toMatch(/^USER 10001:10001$/m); // the gpu-agent user, numeric for runAsNonRoot (deploy/)
    expect(docker).toMatch(/useradd --system --uid 10001/);
    expect(docker).toMatch(/^EXPOSE 8000 8001$/m);
    // jemalloc in the image, preloaded by the launcher as the ENTRYPOINT (checked at build time)
    expect(docker).toMatch(/apt-get install -y --no-install-recommends libjemalloc2/);
    expect(docker).toMatch(/^COPY --from=build \/app\/scripts\/gpu-agent\.sh \.\/scripts\/gpu-agent\.sh$/m);
    expect(docker).toMatch(/^ENTRYPOINT \["\/bin\/sh", "\/opt\/gpu-agent\/scripts\/gpu-agent\.sh"\]$/m);
    expect(docker).toMatch(/sh scripts\/gpu-agent\.sh --print-allocator \| grep '\^jemalloc '/);
    const provider = readFileSync(PROVIDER, 'utf8');
    expect(provider).toMatch(/com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9/);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies['onnxruntime-node']).toBe('1.29.0');
  });
});
