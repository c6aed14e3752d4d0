/**
 * The service as the gRPC door registers it: every RPC of proto/grpc_service.proto by path,
 * with identity serializers (messages stay bytes), and the channel options and metadata rules
 * towards the nodes. No proto file is loaded: the door never decodes a message with it.
 */
import type * as grpc from '@grpc/grpc-js';

export const SERVICE = '/inference.GRPCInferenceService/';

/** Every RPC of the service (proto/grpc_service.proto), with whether it streams. */
export const METHODS: Readonly<Record<string, boolean>> = {
  ServerLive: false, ServerReady: false, ModelReady: false, ServerMetadata: false, ModelMetadata: false, ModelInfer: false,
  ModelStreamInfer: true, ModelConfig: false, ModelStatistics: false, RepositoryIndex: false, RepositoryModelLoad: false,
  RepositoryModelUnload: false, SystemSharedMemoryStatus: false, SystemSharedMemoryRegister: false, SystemSharedMemoryUnregister: false,
  CudaSharedMemoryStatus: false, CudaSharedMemoryRegister: false, CudaSharedMemoryUnregister: false, TraceSetting: false, LogSettings: false,
};

export const identity = (b: Buffer): Buffer => b;

/** The service with identity serializers: messages stay bytes on both sides. */
export function passThroughDefinition(): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const [name, streaming] of Object.entries(METHODS)) {
    def[name] = {
      path: `${SERVICE}${name}`, requestStream: streaming, responseStream: streaming, originalName: name,
      requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
    };
  }
  return def as grpc.ServiceDefinition;
}

/** Channel options towards the nodes (messages of any size: the node enforces its own limit). */
export const CLIENT_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
};

/** Metadata keys never forwarded: transport ones (grpc-js sets its own) and the credentials. */
export const DROP_METADATA = new Set(['authorization', 'user-agent', 'content-type', 'te', 'host', 'grpc-accept-encoding', 'grpc-encoding', 'grpc-timeout']);
