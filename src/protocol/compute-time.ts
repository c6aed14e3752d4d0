/**
 * A request's share of its batch's compute time, integer µs, as the agent reports it with every
 * inference answer and the coordinator's cost accounting reads it: the HTTP header (and gRPC
 * ModelInfer's initial metadata), and the V2 / gRPC response parameter. One place for both names,
 * because the two sides must agree on the wire.
 */
export const COMPUTE_TIME_HEADER = 'x-compute-time-us';
export const COMPUTE_TIME_PARAMETER = 'compute_time_us';
