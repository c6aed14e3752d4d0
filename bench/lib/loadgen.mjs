// Load generators for the throughput rows, cheaper per request than undici so that the client's
// CPU does not decide ratios on 2 cores: wrk (Debian package `wrk`, a separate C process) when it
// is installed, else autocannon (in this process). Every result says which one it used.
// Both are closed loops: N connections, each sends its next request when the reply arrives.
// Throughput counts 2xx replies only ("goodput"); refusals are counted apart.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let wrkPath;
export function hasWrk() {
  if (wrkPath === undefined) {
    try {
      wrkPath = execFileSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).trim() || null;
    } catch {
      wrkPath = null;
    }
  }
  return Boolean(wrkPath);
}

function luaString(s) {
  return `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** wrk with a Lua script that sends `req` (method, path, headers, body from a file) and counts statuses. */
async function runWrk(origin, req, { connections, durationS }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-agent-wrk-'));
  try {
    const bodyFile = path.join(dir, 'body.bin');
    fs.writeFileSync(bodyFile, req.body);
    const script = path.join(dir, 'req.lua');
    fs.writeFileSync(script, [
      `wrk.method = ${luaString(req.method)}`,
      ...Object.entries(req.headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
      `local f = io.open(${luaString(bodyFile)}, "rb"); wrk.body = f:read("*all"); f:close()`,
      'local ok = 0',
      'local statuses = {}',
      'response = function(status, headers, body) if status == 200 then ok = ok + 1 end end',
      'done = function(summary, latency, requests)',
      '  io.write(string.format("BENCH {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p95_us\\":%d,\\"p99_us\\":%d,\\"non2xx\\":%d,\\"errors\\":%d}\\n",',
      '    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99), summary.errors.status,',
      '    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))',
      'end',
    ].join('\n'));
    const threads = Math.max(1, Math.min(2, connections));
    const out = await new Promise((resolve, reject) => {
      execFile(wrkPath, ['-t', String(threads), '-c', String(connections), '-d', `${durationS}s`, '--timeout', '10s', '-s', script, origin + req.path], { encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const line = out.split('\n').find((l) => l.startsWith('BENCH '));
    if (!line) throw new Error(`wrk printed no summary:\n${out}`);
    const s = JSON.parse(line.slice(6));
    const seconds = s.duration_us / 1e6;
    const ok = s.requests - s.non2xx;
    return { tool: `wrk ${threads} thread(s)`, connections, seconds, ok, refused: s.non2xx, errors: s.errors, rps: ok / seconds, p50_us: s.p50_us, p95_us: s.p95_us, p99_us: s.p99_us, pid: undefined };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runAutocannon(origin, req, { connections, durationS }) {
  const { default: autocannon } = await import('autocannon');
  const r = await autocannon({ url: origin + req.path, method: req.method, headers: req.headers, body: req.body, connections, pipelining: 1, duration: durationS, timeout: 10 });
  const ok = r['2xx'];
  return {
    tool: 'autocannon (in the bench process)', connections, seconds: r.duration, ok, refused: r.non2xx, errors: r.errors + r.timeouts, rps: ok / r.duration,
    p50_us: r.latency.p50 * 1000, p95_us: null, p99_us: r.latency.p99 * 1000,
  };
}

/**
 * Closed-loop load for `durationS` after `warmupS` (run and discarded). tool: 'auto' (wrk if
 * installed), 'wrk' or 'autocannon'.
 */
export async function load(origin, req, { connections, durationS, warmupS = 0, tool = 'auto' }) {
  if (tool === 'wrk' && !hasWrk()) throw new Error('wrk is not installed (apt-get install wrk)');
  const useWrk = tool === 'wrk' || (tool === 'auto' && hasWrk());
  const run = useWrk ? runWrk : runAutocannon;
  if (warmupS > 0) await run(origin, req, { connections, durationS: warmupS });
  return run(origin, req, { connections, durationS });
}
