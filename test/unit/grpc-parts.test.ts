/**
 * Pieces of the gRPC transport without a server: the generated model_config.proto is current,
 * the error table maps every code to a gRPC status, the coordinator advertises a usable address.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, GRPC_STATUS, AgentError } from '../../src/errors.js';
import { modelConfigProto } from '../../src/grpc/model-config-proto.js';
import { advertisedGrpc } from '../../src/node-controller.js';
import { parametersOf } from '../../src/grpc/codec.js';

describe('gRPC parts', () => {
  it('proto/model_config.proto is what scripts/gen-model-config-proto.mjs writes from triton-schema.ts', () => {
    const file = readFileSync(path.resolve(import.meta.dirname, '../../proto/model_config.proto'), 'utf8');
    expect(file).toBe(modelConfigProto());
    expect(file).toMatch(/int32 max_batch_size = 4;/);
    expect(file).toMatch(/repeated ModelInput input = 5;/);
  });

  it('every error code has a gRPC status; queue full and too large are RESOURCE_EXHAUSTED', () => {
    expect(Object.keys(GRPC_STATUS).sort()).toEqual(Object.keys(ERROR_STATUS).sort());
    expect(new AgentError('QUEUE_FULL', 'x').grpcStatus).toBe(8);
    expect(new AgentError('NOT_FOUND', 'x').grpcStatus).toBe(5);
    expect(new AgentError('UNAVAILABLE', 'x').grpcStatus).toBe(14);
    expect(new AgentError('INVALID_ARGUMENT', 'x').grpcStatus).toBe(3);
  });

  it('the advertised gRPC address is the advertised HTTP host with the bound gRPC port', () => {
    expect(advertisedGrpc('http://10.0.0.5:8000', '0.0.0.0:8001')).toBe('10.0.0.5:8001');
    expect(advertisedGrpc('http://[::1]:8000', '[::]:9001')).toBe('[::1]:9001');
  });

  it('InferParameter values become the protocol parameters; inexact 64-bit integers are refused', () => {
    expect(parametersOf({ a: { parameter_choice: 'int64_param', int64_param: '5' }, b: { parameter_choice: 'bool_param', bool_param: true }, c: { parameter_choice: 'string_param', string_param: 'x' }, d: { parameter_choice: 'double_param', double_param: 0.5 } }, 'request'))
      .toEqual({ a: 5, b: true, c: 'x', d: 0.5 });
    expect(() => parametersOf({ t: { parameter_choice: 'uint64_param', uint64_param: '18446744073709551615' } }, 'request')).toThrow(/beyond/);
    expect(() => parametersOf({ t: {} }, 'request')).toThrow(/has no value/);
  });
});
