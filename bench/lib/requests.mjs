// Prepared Open Inference Protocol requests (built once, sent many times) and reply decoding.

/** Deterministic FP32 test data. */
export function f32(n, fn) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = fn(i);
  return a;
}

/**
 * Binary tensor extension: JSON header, then each input's little-endian bytes. Outputs are
 * requested binary too (`binary_data_output`), as tritonclient does with binary_data=True.
 * inputs: [{ name, shape, data: Float32Array }]
 */
export function binaryRequest(model, inputs) {
  const header = Buffer.from(
    JSON.stringify({
      inputs: inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: 'FP32', parameters: { binary_data_size: t.data.byteLength } })),
      parameters: { binary_data_output: true },
    }),
  );
  const body = Buffer.concat([header, ...inputs.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]);
  return {
    kind: 'binary',
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body,
  };
}

/** Plain JSON request and JSON reply. */
export function jsonRequest(model, inputs) {
  const body = Buffer.from(
    JSON.stringify({ inputs: inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: 'FP32', data: Array.from(t.data) })) }),
  );
  return { kind: 'json', method: 'POST', path: `/v2/models/${model}/infer`, headers: { 'content-type': 'application/json' }, body };
}

/** The same bytes and headers, sent to another route (the empty route mirrors the agent's path). */
export function retarget(req, path) {
  return { ...req, path };
}

/** Decode an infer reply (JSON or binary) into { name: Float32Array }. */
export function decodeReply(headers, body) {
  const h = headers['inference-header-content-length'];
  const headerLen = h === undefined ? body.length : Number(Array.isArray(h) ? h[0] : h);
  const json = JSON.parse(body.subarray(0, headerLen).toString('utf8'));
  let off = headerLen;
  const out = {};
  for (const o of json.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size !== undefined) {
      const bytes = Buffer.from(body.subarray(off, off + size));
      out[o.name] = new Float32Array(bytes.buffer, bytes.byteOffset, size / 4);
      off += size;
    } else {
      out[o.name] = Float32Array.from(o.data);
    }
  }
  return out;
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
