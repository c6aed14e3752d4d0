#!/usr/bin/env node
// The gRPC floor for bench/grpc.mjs: a grpc-js server with the agent's service definition
// (proto/grpc_service.proto through @grpc/proto-loader, the same options and server settings)
// whose ModelInfer does no work: it answers add_sub's response shape (two 64-byte raw outputs)
// to any request. Prints its port on stdout.
import * as grpc from '@grpc/grpc-js';
import { loadServiceDefinition, serverOptions } from '../dist/src/grpc/server.js';

const out = Buffer.alloc(64);
const reply = {
  model_name: 'add_sub', model_version: '1', id: '',
  outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [1, 16] }, { name: 'OUTPUT1', datatype: 'FP32', shape: [1, 16] }],
  raw_output_contents: [out, out],
};
const server = new grpc.Server(serverOptions(64 * 1024 * 1024));
server.addService(loadServiceDefinition(), {
  ModelInfer: (call, callback) => callback(null, { ...reply, id: call.request.id ?? '' }),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(String(port));
});
process.on('SIGTERM', () => server.forceShutdown());
