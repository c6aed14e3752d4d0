#!/usr/bin/env node
/**
 * A static file server with Range support, for demos and air-gapped mirrors of model files:
 *   node scripts/serve-dir.mjs --dir ./models-mirror [--port 8080] [--host 127.0.0.1] [--throttle BYTES_PER_S]
 * Logs one line per request (path, Range, status). Plain http: agents need --allow-http for it.
 */
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i >= 0 ? process.argv[i + 1] : d;
};
const root = path.resolve(arg('dir', '.'));
const throttle = Number(arg('throttle', 0));
http.createServer((req, res) => {
  const rel = decodeURIComponent((req.url ?? '/').split('?')[0]);
  const file = path.resolve(root, `.${rel}`);
  const st = file.startsWith(root + path.sep) ? statSync(file, { throwIfNoEntry: false }) : undefined;
  if (!st?.isFile()) {
    console.log(`${req.method} ${rel} 404`);
    return void res.writeHead(404).end('not found');
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Math.min(Number(m[1]), st.size) : 0;
  res.writeHead(m ? 206 : 200, {
    'content-length': st.size - start, 'accept-ranges': 'bytes', etag: `"${st.size}-${Math.round(st.mtimeMs)}"`,
    ...(m ? { 'content-range': `bytes ${start}-${st.size - 1}/${st.size}` } : {}),
  });
  console.log(`${req.method} ${rel} ${m ? 206 : 200}${m ? ` from byte ${start}` : ''}`);
  const stream = createReadStream(file, { start, highWaterMark: 64 * 1024 });
  if (!throttle) return void stream.pipe(res);
  stream.on('data', (chunk) => {
    stream.pause();
    res.write(chunk);
    setTimeout(() => stream.resume(), (chunk.length / throttle) * 1000);
  });
  stream.on('end', () => res.end());
  res.on('close', () => stream.destroy());
}).listen(Number(arg('port', 8080)), arg('host', '127.0.0.1'), function () {
  console.log(`serving ${root} on http://${arg('host', '127.0.0.1')}:${this.address().port}${throttle ? ` at ${throttle} B/s` : ''}`);
});
