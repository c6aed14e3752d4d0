/**
 * The gRPC listener: @grpc/grpc-js with the service from proto/grpc_service.proto, loaded
 * with @grpc/proto-loader at start (no generated code to keep in step with the .proto).
 *
 * Contracts:
 * - Binds --host:--grpc-port (the HTTP host rule); a port already taken fails the start.
 * - Messages up to --body-limit are received (gRPC's default 4 MiB is too small for image
 *   batches); larger ones get RESOURCE_EXHAUSTED from grpc-js. Replies have no size limit.
 * - Keepalive: the server pings an idle connection every 30 s (below the 60 s idle timeout
 *   of common load balancers, so they do not drop it) and closes it when a ping is not
 *   answered in 10 s; clients may ping without calls in flight (every 10 s at most).
 * - `drain()` resolves when no inference is in flight; `close(deadline)` ends the open streams
 *   once their answers are written, lets running calls finish and stops listening; whatever
 *   is still running at the deadline is cut. `destroy()` cuts at once.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ServingContext } from '../inference/context.js';
import type { Logger } from '../util/logger.js';
import { buildService, InFlight } from './service.js';

/** proto/ at the package root, from src/grpc (tests) or dist/src/grpc (built). */
export function protoDir(): string {
  const here = import.meta.dirname;
  for (const up of ['../..', '../../..']) {
    const dir = path.resolve(here, up, 'proto');
    if (existsSync(path.join(dir, 'grpc_service.proto'))) return dir;
  }
  throw new Error(`proto/grpc_service.proto not found above ${here} (the package is incomplete)`);
}

/** The options the service's messages are decoded with (codec.ts relies on them). */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };

export function loadServiceDefinition(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync('grpc_service.proto', { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
  return pkg.inference.GRPCInferenceService.service;
}

export function serverOptions(bodyLimit: number): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': bodyLimit,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  };
}

/** host:port for grpc-js (IPv6 literals in brackets). */
function bindAddress(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class GrpcServer {
  private constructor(
    private readonly server: grpc.Server,
    private readonly inFlight: InFlight,
    /** The bound port (the one asked for, or the one the OS chose). */
    readonly port: number,
    readonly address: string,
  ) {}

  static async start(ctx: ServingContext, logger: Logger, host: string, port: number): Promise<GrpcServer> {
    const server = new grpc.Server(serverOptions(ctx.config.bodyLimit));
    const inFlight = new InFlight();
    server.addService(loadServiceDefinition(), buildService(ctx, logger, inFlight));
    const address = bindAddress(host, port);
    const bound = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => {
        if (err) reject(new Error(`cannot listen for gRPC on ${address}: ${err.message} (choose another --grpc-port, or 0 for no gRPC)`));
        else resolve(p);
      });
    });
    return new GrpcServer(server, inFlight, bound, bindAddress(host, bound));
  }

  /** Inference calls (unary and stream requests) accepted and not answered yet. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Resolves once no inference is in flight (new inference is refused while the node drains). */
  drain(): Promise<void> {
    return this.inFlight.whenNone();
  }

  /** End streams after their last answer, let running calls finish, stop; cut what is left at `deadline` (epoch ms). */
  async close(deadline: number): Promise<void> {
    for (const s of [...this.inFlight.streams]) s.endWhenIdle();
    let timer: NodeJS.Timeout | undefined;
    const graceful = new Promise<boolean>((resolve) => this.server.tryShutdown(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
    const clean = await Promise.race([graceful, late]);
    clearTimeout(timer);
    if (!clean) this.server.forceShutdown();
  }

  destroy(): void {
    this.server.forceShutdown();
  }
}
