/**
 * A real @grpc/grpc-js client of the agent's GRPCInferenceService (proto/grpc_service.proto
 * loaded with @grpc/proto-loader, as any Node client would), with promise helpers.
 */
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_DIR = path.resolve(import.meta.dirname, '../../proto');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function grpcClient(address: string, options: grpc.ChannelOptions = {}): any {
  const def = protoLoader.loadSync('grpc_service.proto', { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    ...options,
  });
}

export interface CallError extends Error {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

/** Call a unary RPC; resolves with the response or rejects with the status error. */
export function call(client: any, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<any> {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, (err: CallError | null, res: unknown) => (err ? reject(err) : resolve(res)));
  });
}

/** The status error of a failing call (fails the test if the call succeeds). */
export async function callError(client: any, method: string, request: unknown, metadata?: grpc.Metadata): Promise<CallError> {
  try {
    await call(client, method, request, metadata);
  } catch (err) {
    return err as CallError;
  }
  throw new Error(`${method} succeeded but an error was expected`);
}

export function bearer(token: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
}

/** BYTES elements in raw form: 4-byte little-endian length, then the bytes. */
export function rawBytes(items: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(items.flatMap((s) => {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return [len, b];
  }));
}

export function splitRawBytes(buf: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off < buf.length;) {
    const n = buf.readUInt32LE(off);
    out.push(buf.subarray(off + 4, off + 4 + n).toString('utf8'));
    off += 4 + n;
  }
  return out;
}

export function f32(b: Buffer): number[] {
  return [...new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length))];
}

export function buf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export { grpc };
