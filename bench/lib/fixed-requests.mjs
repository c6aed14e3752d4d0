// node bench/lib/fixed-requests.mjs PORT binary|json CONCURRENCY N
// Sends exactly N add_sub batch-1 requests (CONCURRENCY closed loops over keep-alive
// connections, undici) to 127.0.0.1:PORT and exits; used by bench/hot-path-callgrind.sh, where
// a fixed count (not a duration) makes instruction counts per request comparable.
import { Agent, request } from 'undici';
import { binaryRequest, f32, jsonRequest } from './requests.mjs';

const [port, kind, conc, n] = process.argv.slice(2);
const inputs = [{ name: 'INPUT0', shape: [1, 16], data: f32(16, (i) => i) }, { name: 'INPUT1', shape: [1, 16], data: f32(16, () => 1) }];
const req = kind === 'json' ? jsonRequest('add_sub', inputs) : binaryRequest('add_sub', inputs);
const d = new Agent({ connections: Number(conc), pipelining: 1 });
let left = Number(n);
let bad = 0;
async function loop() {
  while (left-- > 0) {
    const r = await request(`http://127.0.0.1:${port}${req.path}`, { method: 'POST', headers: req.headers, body: req.body, dispatcher: d });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) bad++;
  }
}
await Promise.all(Array.from({ length: Number(conc) }, loop));
await d.close();
if (bad) {
  console.error(`${bad} of ${n} requests did not answer 200`);
  process.exit(1);
}
