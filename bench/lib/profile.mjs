// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per area
// (agent code in dist/src, fastify & co, node core, onnxruntime-node, GC, idle).
import fs from 'node:fs';
import path from 'node:path';

function area(url, name) {
  if (name === '(garbage collector)') return 'gc';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'program (native, unattributed)';
  if (!url) return 'native/builtin';
  if (url.includes('/dist/src/')) return 'agent (dist/src)';
  if (url.includes('/onnxruntime-node/') || url.includes('/onnxruntime-common/')) return 'onnxruntime-node';
  if (/\/node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|fast-uri|toad-cache|secure-json-parse|process-warning|abstract-logging|rfdc|fastq)\//.test(url)) return 'fastify';
  if (/\/node_modules\/(pino|sonic-boom|thread-stream|on-exit-leak-free|quick-format-unescaped|atomic-sleep|safe-stable-stringify)\//.test(url)) return 'pino';
  if (url.startsWith('node:')) return 'node core';
  if (url.includes('/node_modules/')) return 'other node_modules';
  return 'other';
}

/**
 * window: optional { from, to } in µs of CLOCK_MONOTONIC (process.hrtime.bigint() / 1000n in
 * any process of this machine: V8 stamps profiles with the same clock), to keep only the
 * samples of a measured phase (no start-up, model loading or warm-up).
 */
export function summarizeProfile(file, top = 20, window = undefined) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (window && (t < window.from || t > window.to)) continue;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const areas = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const a = area(cf.url, name);
    if (a === 'idle') idle += us;
    total += us;
    const where = cf.url ? `${cf.url.includes('/node_modules/') ? cf.url.slice(cf.url.lastIndexOf('/node_modules/') + 14) : cf.url.includes('/dist/src/') ? 'dist/src/' + cf.url.split('/dist/src/')[1] : path.basename(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const f = fns.get(key) ?? { function: name, where, area: a, self_ms: 0 };
    f.self_ms += us / 1000;
    fns.set(key, f);
    areas.set(a, (areas.get(a) ?? 0) + us / 1000);
  }
  const busy = (total - idle) / 1000;
  const pct = (ms) => Math.round((ms / busy) * 1000) / 10;
  return {
    file,
    wall_ms: Math.round(total / 1000),
    busy_ms: Math.round(busy),
    areas: [...areas.entries()].filter(([a]) => a !== 'idle').sort((x, y) => y[1] - x[1]).map(([a, ms]) => ({ area: a, self_ms: Math.round(ms), pct_of_busy: pct(ms) })),
    top: [...fns.values()].filter((f) => f.area !== 'idle').sort((x, y) => y.self_ms - x.self_ms).slice(0, top)
      .map((f) => ({ ...f, self_ms: Math.round(f.self_ms * 10) / 10, pct_of_busy: pct(f.self_ms) })),
  };
}
