/**
 * The gRPC door's wire reading (grpc-gateway/wire.ts) against messages serialized by
 * @grpc/proto-loader from proto/grpc_service.proto, and its status mapping (status.ts).
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { classifyAttempt } from '../../src/coordinator/gateway/policy.js';
import { attemptOutcome, grpcStatusOf, httpStatusOf } from '../../src/coordinator/grpc-gateway/status.js';
import { computeTimeUs, encodeSimple, routeFields, streamResponseFields, timeoutParameterUs } from '../../src/coordinator/grpc-gateway/wire.js';

const def = protoLoader.loadSync('grpc_service.proto', { includeDirs: [path.resolve(import.meta.dirname, '../../proto')], keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
const service = (grpc.loadPackageDefinition(def) as any).inference.GRPCInferenceService.service;
const serialize = (method: string, msg: unknown): Buffer => service[method].requestSerialize(msg);
const serializeResponse = (method: string, msg: unknown): Buffer => service[method].responseSerialize(msg);
const decodeResponse = (method: string, buf: Buffer): any => service[method].responseDeserialize(buf);

describe('grpc-gateway wire reading', () => {
  const big = Buffer.alloc(1 << 20, 7);
  const request = {
    model_name: 'resnet', model_version: '3', id: 'r1',
    parameters: { priority: { int64_param: '2' }, timeout: { int64_param: '250000' }, note: { string_param: 'x' } },
    inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 262144], parameters: { timeout: { int64_param: '9' } } }],
    raw_input_contents: [big],
  };

  it('reads model, version and the timeout parameter, skipping the tensors', () => {
    const bytes = serialize('ModelInfer', request);
    expect(routeFields(bytes)).toEqual({ model: 'resnet', version: '3' });
    expect(timeoutParameterUs(bytes)).toBe(250_000); // the request's, not the input's
    expect(timeoutParameterUs(serialize('ModelInfer', { model_name: 'm' }))).toBeUndefined();
    expect(routeFields(serialize('ModelMetadata', { name: 'm', version: '' }))).toEqual({ model: 'm', version: '' });
    expect(routeFields(serialize('ModelReady', { name: 'm2', version: '1' }))).toEqual({ model: 'm2', version: '1' });
  });

  it('gives undefined for bytes that are not a message', () => {
    const bytes = serialize('ModelInfer', request);
    expect(routeFields(bytes.subarray(0, bytes.length - 10))).toBeUndefined(); // truncated tensor
    expect(routeFields(Buffer.from([0x0a, 0x05, 0x61]))).toBeUndefined(); // length past the end
    expect(routeFields(Buffer.from([0x0b]))).toBeUndefined(); // a group
    expect(routeFields(Buffer.alloc(0))).toEqual({ model: '', version: '' });
  });

  it('reads compute_time_us from answers, unary and streamed', () => {
    const answer = { model_name: 'resnet', model_version: '3', parameters: { compute_time_us: { int64_param: '1234' } }, raw_output_contents: [big] };
    expect(computeTimeUs(serializeResponse('ModelInfer', answer))).toBe(1234);
    expect(streamResponseFields(serializeResponse('ModelStreamInfer', { error_message: '', infer_response: answer }))).toEqual({ error: '', model: 'resnet', computeUs: 1234 });
    expect(streamResponseFields(serializeResponse('ModelStreamInfer', { error_message: 'bad input', infer_response: { model_name: 'm' } }))).toEqual({ error: 'bad input', model: 'm', computeUs: undefined });
  });

  it('encodes the answers it gives itself as the proto does', () => {
    expect(decodeResponse('ServerLive', encodeSimple([[1, true]]))).toEqual({ live: true });
    expect(decodeResponse('ModelReady', encodeSimple([[1, false]]))).toEqual({});
    const long = 'n'.repeat(300); // a two-byte length
    expect(decodeResponse('ServerMetadata', encodeSimple([[1, long], [3, ['a', 'b']]]))).toEqual({ name: long, extensions: ['a', 'b'] });
  });
});

describe('grpc-gateway status mapping', () => {
  it('retries UNAVAILABLE and INTERNAL, stops at the deadline, passes every other answer through', () => {
    expect(classifyAttempt(attemptOutcome(grpc.status.UNAVAILABLE))).toBe('retry');
    expect(classifyAttempt(attemptOutcome(grpc.status.INTERNAL))).toBe('retry');
    expect(classifyAttempt(attemptOutcome(grpc.status.DEADLINE_EXCEEDED))).toBe('deadline');
    for (const code of [grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.RESOURCE_EXHAUSTED, grpc.status.UNAUTHENTICATED]) {
      expect(classifyAttempt(attemptOutcome(code))).toBe('final');
    }
    expect(httpStatusOf(grpc.status.INVALID_ARGUMENT)).toBe(400);
    expect(grpcStatusOf(429)).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(grpcStatusOf(504)).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(grpcStatusOf(503)).toBe(grpc.status.UNAVAILABLE);
  });
});
