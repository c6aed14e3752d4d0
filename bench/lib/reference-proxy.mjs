// The floor the gateway is measured against: the least a fastify + undici reverse proxy does
// (the gateway's own stack), with no auth, routing, deadlines, retries, streaming or
// accounting. Each request body is read whole, sent to one fixed node over a kept-alive undici
// Pool, and the answer is read whole and sent back. It shows what any Node proxy on this
// machine costs, so the gateway's figures can be read against it (fleet-scale.mjs,
// gateway-cpu.mjs). Run as a child: `fork(reference-proxy.mjs, [nodeUrl])`; it sends its URL
// over IPC and exits on the message 'close'.
import Fastify from 'fastify';
import { Pool } from 'undici';

const pool = new Pool(process.argv[2], { connections: 128 });
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 256 * 1024 * 1024 }, (_req, body, done) => done(null, body));
app.post('/v2/models/:model/infer', async (req, reply) => {
  const r = await pool.request({ method: 'POST', path: req.url, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, body: req.body });
  const bytes = Buffer.from(await r.body.arrayBuffer());
  return reply.code(r.statusCode).header('content-type', r.headers['content-type']).send(bytes);
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.on('message', (m) => {
  if (m === 'close') void app.close().then(() => pool.close()).then(() => process.exit(0));
});
process.send({ url: `http://127.0.0.1:${app.server.address().port}` });
