/**
 * The handlers of `inference.GRPCInferenceService`: each translates its message to and from
 * the transport-free core (inference/) and maps errors through the one table (errors.ts).
 *
 * Contracts:
 * - Auth: with --api-token every RPC but ServerLive and ServerReady needs the metadata
 *   `authorization: Bearer <token>` (as HTTP exempts /v2/health/live and /ready).
 * - Errors: an AgentError's code → its gRPC status, its message as the details; a retry hint
 *   (full queue, draining) goes in the trailing metadata as `retry-after` (seconds).
 * - ModelStreamInfer answers every request on the stream, in completion order, each with the
 *   request's id; a failed request is a message with `error_message` (the stream goes on).
 *   The stream ends when the client ends it and every answer is written, or at shutdown.
 * - Every inference answer carries the parameter `compute_time_us` (int64, µs), and ModelInfer
 *   also the initial metadata `x-compute-time-us` (HTTP's header), for cost accounting.
 * - Inference (ModelInfer and every stream request) is counted in flight from its arrival
 *   to its answer; while the node drains new inference is refused with UNAVAILABLE and the
 *   reason, and a drain waits for what is in flight (see server.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { AgentError, isAgentError } from '../errors.js';
import type { ServingContext } from '../inference/context.js';
import { checkToken } from '../inference/auth.js';
import { inferModel, refuseWhileDraining, type InferReply } from '../inference/infer.js';
import { modelConfig, modelMetadata, modelReadiness, modelStatistics, serverMetadata, serverReadiness } from '../inference/health.js';
import { loadModel, loadRefusal, repositoryIndex, unloadModel } from '../inference/model-control.js';
import { systemShmFor } from '../shm/index.js';
import { CancelSource } from '../util/cancel.js';
import type { Logger } from '../util/logger.js';
import { COMPUTE_TIME_HEADER, COMPUTE_TIME_PARAMETER } from '../protocol/compute-time.js';
import { decodeGrpcRequest, encodeGrpcResponse, usesRawContents, type WireInferRequest } from './codec.js';


const CUDA_SHM = 'CUDA shared memory is not supported by gpu-node-agent (onnxruntime-node cannot open CUDA IPC handles); use system shared memory or send the data in the request';

/** RPCs open without a token: probes must work before anyone has one. */
const PUBLIC_RPCS = new Set(['ServerLive', 'ServerReady']);

export interface ServiceError {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

/** Any error → the status a client can act on (AgentError codes through errors.ts). */
export function grpcError(err: unknown, logger: Logger): ServiceError {
  const e = isAgentError(err) ? err : new AgentError('INTERNAL', `internal error: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  if (e.code === 'INTERNAL') logger.error({ err, code: e.code }, e.message);
  const metadata = new grpc.Metadata();
  if (e.retryAfterSeconds !== undefined) metadata.set('retry-after', String(e.retryAfterSeconds));
  return { code: e.grpcStatus as grpc.status, details: e.message, metadata };
}

/** Tracks inference in flight and the open streams, for the drain (server.ts). */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];
  readonly streams = new Set<{ endWhenIdle(): void }>();

  enter(): void {
    this.count++;
  }

  leave(): void {
    this.count--;
    if (this.count === 0) for (const w of this.waiters.splice(0)) w();
  }

  get size(): number {
    return this.count;
  }

  whenNone(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }
}

type Handler = (request: any, call: grpc.ServerUnaryCall<any, any>) => unknown;

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Repository parameters → the plain load parameters of model-control.ts (files in base64). */
function repositoryParameters(map: Record<string, any> | undefined): Record<string, unknown> | undefined {
  if (!map || Object.keys(map).length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(map)) {
    switch (p.parameter_choice) {
      case 'string_param': out[k] = p.string_param ?? ''; break;
      case 'bytes_param': out[k] = Buffer.from(p.bytes_param ?? []).toString(k.startsWith('file:') ? 'base64' : 'utf8'); break;
      case 'bool_param': out[k] = p.bool_param === true; break;
      case 'int64_param': out[k] = Number(p.int64_param); break;
      default: out[k] = undefined;
    }
  }
  return out;
}

export function buildService(ctx: ServingContext, logger: Logger, inFlight: InFlight): grpc.UntypedServiceImplementation {
  const token = ctx.config.apiToken;
  const shm = systemShmFor(ctx);

  const authorize = (name: string, metadata: grpc.Metadata): void => {
    if (PUBLIC_RPCS.has(name)) return;
    const v = metadata.get('authorization')[0];
    checkToken(typeof v === 'string' ? v : v?.toString(), token, 'the metadata authorization');
  };

  const unary = (name: string, fn: Handler): grpc.handleUnaryCall<any, any> => (call, callback) => {
    let result: unknown;
    try {
      authorize(name, call.metadata);
      result = fn(call.request, call);
    } catch (err) {
      callback(grpcError(err, logger));
      return;
    }
    Promise.resolve(result).then((r) => callback(null, r), (err: unknown) => callback(grpcError(err, logger)));
  };

  /** One inference from a ModelInferRequest: what ModelInfer and each stream message run. */
  type Answer = ReturnType<typeof encodeGrpcResponse> & { parameters?: Record<string, { int64_param: string }> };
  const infer = async (msg: WireInferRequest, signal: CancelSource, deadline: number | undefined): Promise<Answer> => {
    refuseWhileDraining(ctx);
    const model = str(msg.model_name);
    if (model === '') throw new AgentError('INVALID_ARGUMENT', 'the request has no model_name');
    inFlight.enter();
    try {
      const reply: InferReply = await inferModel(ctx, { model, version: str(msg.model_version) }, (_spec, reader) => decodeGrpcRequest(msg, reader), { signal, deadline });
      const encoded: Answer = encodeGrpcResponse(reply, usesRawContents(msg));
      // The request's share of its batch's compute time, for cost accounting (as HTTP's
      // compute_time_us parameter; the coordinator's gRPC gateway reads it from the bytes).
      if (reply.computeMs === undefined) return encoded;
      return { ...encoded, parameters: { [COMPUTE_TIME_PARAMETER]: { int64_param: String(Math.round(reply.computeMs * 1000)) } } };
    } finally {
      inFlight.leave();
    }
  };

  const deadlineOf = (call: { getDeadline(): grpc.Deadline }): number | undefined => {
    const d = call.getDeadline();
    const ms = d instanceof Date ? d.getTime() : d;
    return Number.isFinite(ms) ? ms : undefined;
  };

  return {
    ServerLive: unary('ServerLive', () => ({ live: true })),
    ServerReady: unary('ServerReady', () => ({ ready: serverReadiness(ctx).ready })),
    ModelReady: unary('ModelReady', (r) => ({ ready: modelReadiness(ctx, str(r.name), str(r.version)).ready })),
    ServerMetadata: unary('ServerMetadata', () => serverMetadata(ctx)),
    ModelMetadata: unary('ModelMetadata', (r) => {
      const m = modelMetadata(ctx, str(r.name), str(r.version));
      return { name: m.name, versions: m.versions, platform: m.platform, inputs: m.inputs, outputs: m.outputs };
    }),
    ModelConfig: unary('ModelConfig', (r) => ({ config: modelConfig(ctx, str(r.name), str(r.version)) })),
    ModelStatistics: unary('ModelStatistics', (r) => modelStatistics(ctx, str(r.name) || undefined, str(r.version) || undefined, false)),
    RepositoryIndex: unary('RepositoryIndex', async (r) => ({ models: await repositoryIndex(ctx, r.ready === true) })),
    RepositoryModelLoad: unary('RepositoryModelLoad', async (r) => {
      const name = str(r.model_name);
      let params: Record<string, unknown> | undefined;
      try {
        params = repositoryParameters(r.parameters);
      } catch (err) {
        throw loadRefusal(name, err);
      }
      await loadModel(ctx, name, params);
      return {};
    }),
    RepositoryModelUnload: unary('RepositoryModelUnload', async (r) => {
      await unloadModel(ctx, str(r.model_name));
      return {};
    }),
    ModelInfer: unary('ModelInfer', async (r: WireInferRequest, call) => {
      const cancel = new CancelSource();
      call.on('cancelled', () => cancel.cancel());
      const resp = await infer(r, cancel, deadlineOf(call));
      const us = resp.parameters?.[COMPUTE_TIME_PARAMETER]?.int64_param;
      if (us !== undefined) {
        const md = new grpc.Metadata();
        md.set(COMPUTE_TIME_HEADER, us);
        call.sendMetadata(md);
      }
      return resp;
    }),
    ModelStreamInfer: (call: grpc.ServerDuplexStream<WireInferRequest, unknown>) => {
      try {
        authorize('ModelStreamInfer', call.metadata);
      } catch (err) {
        call.emit('error', grpcError(err, logger));
        return;
      }
      const cancel = new CancelSource();
      let pending = 0;
      let ended = false;
      let closed = false;
      const finish = () => {
        if (closed) return;
        closed = true;
        inFlight.streams.delete(stream);
        call.end();
      };
      const stream = {
        /** Shutdown: end the stream once its answers are written. */
        endWhenIdle: () => {
          ended = true;
          if (pending === 0) finish();
        },
      };
      inFlight.streams.add(stream);
      call.on('cancelled', () => {
        cancel.cancel();
        closed = true;
        inFlight.streams.delete(stream);
      });
      call.on('data', (msg: WireInferRequest) => {
        pending++;
        infer(msg, cancel, deadlineOf(call)).then(
          (resp) => ({ error_message: '', infer_response: resp }),
          (err: unknown) => ({
            error_message: grpcError(err, logger).details,
            infer_response: { model_name: str(msg.model_name), model_version: str(msg.model_version), id: str(msg.id) },
          }),
        ).then((out) => {
          if (!closed) call.write(out);
          pending--;
          if (ended && pending === 0) finish();
        });
      });
      call.on('end', () => stream.endWhenIdle());
      call.on('error', () => undefined);
    },
    SystemSharedMemoryStatus: unary('SystemSharedMemoryStatus', (r) => {
      const regions: Record<string, unknown> = {};
      for (const s of shm.status(str(r.name) || undefined)) regions[s.name] = s;
      return { regions };
    }),
    SystemSharedMemoryRegister: unary('SystemSharedMemoryRegister', (r) => {
      shm.register(str(r.name), { key: r.key, offset: Number(r.offset ?? 0), byte_size: Number(r.byte_size ?? 0) });
      return {};
    }),
    SystemSharedMemoryUnregister: unary('SystemSharedMemoryUnregister', (r) => {
      shm.unregister(str(r.name) || undefined);
      return {};
    }),
    CudaSharedMemoryStatus: unary('CudaSharedMemoryStatus', (r) => {
      if (str(r.name)) throw new AgentError('INVALID_ARGUMENT', `Unable to find cuda shared memory region: '${str(r.name)}' (${CUDA_SHM})`);
      return { regions: {} };
    }),
    CudaSharedMemoryRegister: unary('CudaSharedMemoryRegister', () => {
      throw new AgentError('INVALID_ARGUMENT', CUDA_SHM);
    }),
    CudaSharedMemoryUnregister: unary('CudaSharedMemoryUnregister', (r) => {
      if (str(r.name)) throw new AgentError('INVALID_ARGUMENT', `Unable to find cuda shared memory region: '${str(r.name)}' (${CUDA_SHM})`);
      return {};
    }),
    TraceSetting: unary('TraceSetting', () => {
      throw new AgentError('UNIMPLEMENTED', 'tracing is not implemented by gpu-node-agent; use the statistics (ModelStatistics) and the Prometheus metrics (GET /metrics on the HTTP port)');
    }),
    LogSettings: unary('LogSettings', () => {
      throw new AgentError('UNIMPLEMENTED', 'log settings over gRPC are not implemented by gpu-node-agent; use GET/POST /v2/logging on the HTTP port');
    }),
  };
}
