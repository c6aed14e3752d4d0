// The naive peer: what a Node user writes in an afternoon. fastify + onnxruntime-node, one
// session.run per request, intraOpNumThreads 1; JSON and the V2 binary extension. Started by
// the bench (child process, argv: model file, port); prints one JSON line with `url`.
import Fastify from 'fastify';
process.env.ORT_DISABLE_TELEMETRY = '1';
const ort = await import('onnxruntime-node');
const session = await ort.InferenceSession.create(process.argv[2], { intraOpNumThreads: 1 });
const app = Fastify({ bodyLimit: 64 << 20 });
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_r, b, done) => done(null, b));
app.post('/v2/models/:model/infer', async (req, reply) => {
  const hlen = Number(req.headers['inference-header-content-length'] ?? 0);
  const head = hlen ? JSON.parse(req.body.subarray(0, hlen).toString()) : req.body;
  const feeds = {};
  let off = hlen;
  for (const t of head.inputs) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    feeds[t.name] = new ort.Tensor('float32', hlen ? new Float32Array(req.body.buffer.slice(req.body.byteOffset + off, req.body.byteOffset + (off += 4 * n))) : Float32Array.from(t.data), t.shape);
  }
  const out = await session.run(feeds);
  const outputs = Object.entries(out).map(([name, t]) => ({ name, shape: t.dims, datatype: 'FP32', ...(hlen ? { parameters: { binary_data_size: t.data.byteLength } } : { data: Array.from(t.data) }) }));
  if (!hlen) return { model_name: req.params.model, outputs };
  const h = Buffer.from(JSON.stringify({ model_name: req.params.model, outputs }));
  reply.header('inference-header-content-length', h.length).type('application/octet-stream');
  return Buffer.concat([h, ...Object.values(out).map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]);
});
const url = await app.listen({ host: '127.0.0.1', port: Number(process.argv[3] ?? 0) });
console.log(JSON.stringify({ msg: 'naive server listening', url }));
process.stdin.on('end', () => process.exit(0)).resume();
