/**
 * gRPC statuses in the gateway's terms (pure): which outcome an upstream status is for the
 * retry and breaker policy (gateway/policy.ts classifyAttempt), and which HTTP-like status the
 * cost ledger and metrics count it as (so HTTP and gRPC requests add up in one report).
 */
import { status as Status } from '@grpc/grpc-js';
import type { AttemptOutcome } from '../gateway/policy.js';

/**
 * UNAVAILABLE (connection refused or reset, a draining node) is a connection error: retried on
 * another candidate. DEADLINE_EXCEEDED is the deadline. Every other status, OK included, is the
 * node's answer: final, as an HTTP 4xx is (INTERNAL counts as a 5xx answer, so it is retried,
 * as the HTTP route retries a 500).
 */
export function attemptOutcome(code: Status): AttemptOutcome {
  switch (code) {
    case Status.UNAVAILABLE:
      return { kind: 'connection_error', code: 'UNAVAILABLE' };
    case Status.DEADLINE_EXCEEDED:
      return { kind: 'timeout' };
    default:
      return { kind: 'response', status: httpStatusOf(code) };
  }
}

/** The HTTP status that means the same (Triton's own mapping, as errors.ts uses it). */
export function httpStatusOf(code: Status): number {
  switch (code) {
    case Status.OK: return 200;
    case Status.INVALID_ARGUMENT: case Status.FAILED_PRECONDITION: case Status.OUT_OF_RANGE: return 400;
    case Status.UNAUTHENTICATED: return 401;
    case Status.PERMISSION_DENIED: return 403;
    case Status.NOT_FOUND: return 404;
    case Status.ALREADY_EXISTS: case Status.ABORTED: return 409;
    case Status.RESOURCE_EXHAUSTED: return 429;
    case Status.CANCELLED: return 499;
    case Status.UNIMPLEMENTED: return 501;
    case Status.UNAVAILABLE: return 503;
    case Status.DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

/** The gRPC status for one of the gateway's own HTTP refusals (401, 429, 503, 504, …). */
export function grpcStatusOf(http: number): Status {
  switch (http) {
    case 400: case 413: return Status.INVALID_ARGUMENT;
    case 401: return Status.UNAUTHENTICATED;
    case 404: return Status.NOT_FOUND;
    case 429: return Status.RESOURCE_EXHAUSTED;
    case 502: case 503: return Status.UNAVAILABLE;
    case 504: return Status.DEADLINE_EXCEEDED;
    default: return http >= 500 ? Status.INTERNAL : Status.FAILED_PRECONDITION;
  }
}
