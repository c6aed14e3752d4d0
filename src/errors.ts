/**
 * The one error table of the agent: every failure that reaches a client carries a stable
 * code, and the code alone decides the HTTP status and the gRPC status. Routes and RPC
 * handlers never pick a status themselves.
 */

export const ERROR_STATUS = {
  /** Malformed request: bad JSON, framing, shape, datatype, element count, unknown input. */
  INVALID_ARGUMENT: 400,
  /** Missing or wrong bearer token. */
  UNAUTHENTICATED: 401,
  /** Unknown model, version or route. */
  NOT_FOUND: 404,
  /** The operation conflicts with the model's current state or the control mode. */
  FAILED_PRECONDITION: 409,
  /** Body larger than --body-limit. */
  PAYLOAD_TOO_LARGE: 413,
  /** Unsupported Content-Type or Content-Encoding. */
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** The model's queue is full: retry after the Retry-After header. */
  QUEUE_FULL: 429,
  /** The client went away before its request ran (logged, never seen by that client). */
  CANCELLED: 499,
  /** A bug or a failure of the runtime that the request did not cause. */
  INTERNAL: 500,
  /** Not implemented by this agent (e.g. Triton's shared-memory extensions). */
  UNIMPLEMENTED: 501,
  /** The model (or the node, while draining) cannot take work right now. */
  UNAVAILABLE: 503,
  /** The request's deadline passed before it could run. */
  DEADLINE_EXCEEDED: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * The same codes as gRPC status codes (grpc/status.h numbers), for the gRPC service: one
 * table, so an error means the same on both transports. A full queue and an oversized
 * message are RESOURCE_EXHAUSTED (8), as gRPC itself reports message size limits.
 */
export const GRPC_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 3,
  UNAUTHENTICATED: 16,
  NOT_FOUND: 5,
  FAILED_PRECONDITION: 9,
  PAYLOAD_TOO_LARGE: 8,
  UNSUPPORTED_MEDIA_TYPE: 3,
  QUEUE_FULL: 8,
  CANCELLED: 1,
  INTERNAL: 13,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
  DEADLINE_EXCEEDED: 4,
};

export class AgentError extends Error {
  readonly code: ErrorCode;
  /** Seconds a client should wait before retrying (429/503); sent as Retry-After. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** The gRPC status code of this error (see GRPC_STATUS). */
  get grpcStatus(): number {
    return GRPC_STATUS[this.code];
  }
}

export function isAgentError(err: unknown): err is AgentError {
  return err instanceof AgentError;
}

/** Shorthand for the most common error: the request itself is wrong. */
export function invalid(message: string): AgentError {
  return new AgentError('INVALID_ARGUMENT', message);
}

/** The message of anything thrown, without a stack. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Messages clients compare text with. NVIDIA's example clients look for these prefixes
 * (`Request for unknown model`, `failed to load`), as Triton words them; our own detail
 * (the reason, the fix) follows in parentheses or after a colon.
 */
export const TRITON_MESSAGES = {
  /** No model of that name in the repository (404). */
  unknownModel: (name: string, hint: string) => `Request for unknown model: '${name}' is not found (${hint})`,
  /** The model exists but has no such version (404). */
  unknownVersion: (name: string, version: string, hint: string) => `Request for unknown model: '${name}' version ${version} is not found (${hint})`,
  /** The model exists but no version of it is READY (503). */
  noAvailableVersions: (name: string, why: string) => `Request for unknown model: '${name}' has no available versions (${why})`,
  /** That version exists but is not READY (503). */
  versionNotReady: (name: string, version: number | string, why: string) => `Request for unknown model: '${name}' version ${version} is not at ready state (${why})`,
  /** Any failed load, whatever the cause. */
  failedToLoad: (name: string, why: string) => `failed to load '${name}': ${why}`,
  /** Any failed unload. */
  failedToUnload: (name: string, why: string) => `failed to unload '${name}': ${why}`,
} as const;
