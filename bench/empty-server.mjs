// The HTTP limit: the agent's own fastify (same version, from node_modules) with an "empty"
// infer route that accepts the body as raw bytes, exactly as the agent does (one '*' buffer
// parser), and answers a small JSON without looking at it. No logger (the agent logs at warn,
// nothing per request). Started by bench/run.mjs as a child process; prints one JSON line with
// `url` on stdout once listening; exits on SIGTERM/SIGINT or when its parent goes away.
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

const REPLY = { model_name: 'empty', model_version: '1', outputs: [] };
let served = 0; // read by the bench to normalise --profile output per request
app.post('/v2/models/:model/infer', async () => {
  served++;
  return REPLY;
});
app.get('/v2/health/ready', async () => ({ ready: true }));
app.get('/bench/served', async () => ({ served }));

const url = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`${JSON.stringify({ msg: 'empty server listening', url, pid: process.pid })}\n`);

const stop = () => app.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Orphan guard: the parent holds our stdin open; when it dies, stdin ends.
process.stdin.on('end', stop);
process.stdin.resume();
