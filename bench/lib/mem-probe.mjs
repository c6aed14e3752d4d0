// Preloaded into the agent by bench/load-cycles.mjs (`node --expose-gc --import <this> cli.js
// serve ...`, with an IPC channel): on {type:'mem'} it answers the process's memory — VmRSS as
// it is, then after full GCs: VmRSS, V8's heapTotal/heapUsed/external/arrayBuffers, malloc's own figures
// (mallinfo2, through the agent's allocator module) and the onnxruntime sessions alive. The
// GCs make the figures about what is held, not about garbage not yet collected; the probe holds
// nothing between calls (the measurement itself must not grow).
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = path.resolve(import.meta.dirname, '../../dist/src');
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.on('message', async (msg) => {
  if (msg?.type !== 'mem') return;
  const asRead = rss();
  // Twice, with a turn of the event loop between: finalizers (FinalizationRegistry, N-API)
  // run after the GC that found their objects, and what they free is collected by the next.
  for (let i = 0; i < 2; i++) {
    globalThis.gc();
    await sleep(20);
  }
  globalThis.gc();
  await sleep(20);
  const u = process.memoryUsage();
  const c = v8.getHeapCodeStatistics();
  const space = (name) => v8.getHeapSpaceStatistics().find((x) => x.space_name === name);
  const { mallocInfo, allocatorStatus } = await import(pathToFileURL(path.join(dist, 'memory/allocator.js')).href);
  const { liveSessions } = await import(pathToFileURL(path.join(dist, 'execution/live-sessions.js')).href);
  process.send({
    type: 'mem', id: msg.id, asRead, rss: rss(), heapTotal: u.heapTotal, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers,
    code: c.code_and_metadata_size + c.bytecode_and_metadata_size, newSpace: space('new_space')?.physical_space_size ?? 0, oldSpace: space('old_space')?.space_used_size ?? 0,
    malloc: mallocInfo() ?? null, allocator: allocatorStatus(), liveSessions: liveSessions.count,
  });
});
process.channel?.unref(); // the agent exits on SIGTERM as it would without the probe
