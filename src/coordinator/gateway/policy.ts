/**
 * The gateway's decisions as pure functions (no I/O, no clock of their own: every time is an
 * argument), so each is tested with a fake clock and a seeded random source:
 * - {@link pickTwoChoices}: power-of-two-choices on load among the candidates;
 * - {@link classifyAttempt}: whether an attempt's outcome may be retried on another node;
 * - the circuit breaker ({@link breakerAllows}, {@link breakerRecord}): a node that keeps
 *   failing is taken out of rotation for a while, then tried again with one request;
 * - {@link resolveDeadlineMs} and {@link admit}: a request's deadline, and whether it can still
 *   be met (refused early with 504 / 429 instead of being queued to die).
 */

/** A node that may take the request, with what the choice needs to know. */
export interface Candidate {
  readonly nodeId: string;
  /**
   * Load on this node for the model: queue depth + in-flight from the latest heartbeat, plus
   * the requests this coordinator has outstanding on the node right now.
   */
  readonly load: number;
}

/**
 * Power-of-two-choices: draw two distinct candidates at random and take the less loaded one
 * (ties: the first drawn). One candidate is returned as is; none gives undefined. Compared to
 * "least loaded overall" it avoids every gateway instance herding onto the same node between
 * two heartbeats, and it costs O(1).
 */
export function pickTwoChoices<C extends Candidate>(candidates: readonly C[], rng: () => number = Math.random): C | undefined {
  const n = candidates.length;
  if (n === 0) return undefined;
  if (n === 1) return candidates[0];
  const i = Math.min(n - 1, Math.floor(rng() * n));
  let j = Math.min(n - 2, Math.floor(rng() * (n - 1)));
  if (j >= i) j++;
  const a = candidates[i]!;
  const b = candidates[j]!;
  return b.load < a.load ? b : a;
}

/** What happened to one forwarded attempt. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'connection_error'; readonly code?: string }
  | { readonly kind: 'timeout' }
  /** The client's streamed body passed the gateway's maximum while it was being sent: the client's fault. */
  | { readonly kind: 'body_too_large' };

/**
 * - `final`: answer the client with this (2xx, 3xx, every 4xx: the request itself is wrong or
 *   refused, another node would say the same; a body past the gateway's maximum).
 * - `retry`: the node failed before answering (connection refused/reset, 503 draining or
 *   unavailable, any other 5xx): another node may succeed.
 * - `deadline`: the deadline passed; no time is left for another node.
 * Every `retry` and `deadline` outcome counts as a failure for the node's circuit breaker.
 */
export function classifyAttempt(outcome: AttemptOutcome): 'final' | 'retry' | 'deadline' {
  switch (outcome.kind) {
    case 'timeout':
      return 'deadline';
    case 'body_too_large':
      return 'final';
    case 'connection_error':
      return 'retry';
    case 'response':
      return outcome.status >= 500 ? 'retry' : 'final';
  }
}

/** Circuit breaker settings. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. Default 3. */
  readonly failureThreshold: number;
  /** How long an open breaker keeps the node out of rotation, ms. Default 10000. */
  readonly openMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = Object.freeze({ failureThreshold: 3, openMs: 10_000 });

/**
 * closed: in rotation. open: out of rotation until `openUntil`. half_open: the open time is
 * over and one trial request is in flight; its outcome closes or re-opens the breaker.
 */
export interface BreakerState {
  readonly state: 'closed' | 'open' | 'half_open';
  readonly consecutiveFailures: number;
  /** Monotonic ms; meaningful while open. */
  readonly openUntil: number;
  /** Total times this breaker opened (shown in /nodes). */
  readonly opened: number;
}

export const CLOSED_BREAKER: BreakerState = Object.freeze({ state: 'closed', consecutiveFailures: 0, openUntil: 0, opened: 0 });

/** Whether the node may take a request at `now` (an open breaker whose time is over allows one trial). */
export function breakerAllows(b: BreakerState, now: number): boolean {
  if (b.state === 'closed') return true;
  if (b.state === 'open') return now >= b.openUntil;
  return false; // half_open: the trial is in flight
}

/** The state once a request is sent: an open breaker past its time turns half-open (one trial). */
export function breakerOnSend(b: BreakerState, now: number): BreakerState {
  return b.state === 'open' && now >= b.openUntil ? { ...b, state: 'half_open' } : b;
}

/** The state after an attempt's outcome (`ok` = the node answered, even with a 4xx). */
export function breakerRecord(b: BreakerState, ok: boolean, now: number, opts: BreakerOptions = DEFAULT_BREAKER): BreakerState {
  if (ok) return b.state === 'closed' && b.consecutiveFailures === 0 ? b : { ...b, state: 'closed', consecutiveFailures: 0, openUntil: 0 };
  const failures = b.consecutiveFailures + 1;
  if (b.state === 'half_open' || failures >= opts.failureThreshold) {
    return { state: 'open', consecutiveFailures: failures, openUntil: now + opts.openMs, opened: b.opened + 1 };
  }
  return { ...b, consecutiveFailures: failures };
}

/**
 * The request's time budget in ms, first that applies: the `x-timeout-ms` header, the V2
 * `timeout` parameter (microseconds, Triton's unit), the model's default, the gateway default.
 * Returns an error string for a value that is not a positive number.
 */
export function resolveDeadlineMs(input: {
  readonly headerMs?: string | undefined;
  readonly parameterUs?: unknown;
  readonly modelDefaultMs?: number | undefined;
  readonly defaultMs: number;
}): { ok: true; ms: number } | { ok: false; error: string } {
  if (input.headerMs !== undefined) {
    const v = Number(input.headerMs);
    if (!Number.isFinite(v) || v <= 0) return { ok: false, error: `x-timeout-ms must be a positive number of milliseconds, got '${String(input.headerMs).slice(0, 40)}'` };
    return { ok: true, ms: v };
  }
  if (input.parameterUs !== undefined) {
    const v = input.parameterUs;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return { ok: false, error: 'parameters.timeout must be a positive number of microseconds' };
    return { ok: true, ms: v / 1000 };
  }
  return { ok: true, ms: input.modelDefaultMs ?? input.defaultMs };
}

/**
 * Early refusal: `expired` (504) when nothing is left of the deadline; `overloaded` (429) when
 * the expected wait on the chosen node, (load + 1) × its recent latency for this model, is past
 * what is left: queueing the request would only make it time out there. Without a latency
 * estimate yet, the request is admitted.
 */
export function admit(remainingMs: number, load: number, latencyEstimateMs: number | undefined): 'ok' | 'expired' | 'overloaded' {
  if (remainingMs <= 0) return 'expired';
  if (latencyEstimateMs === undefined) return 'ok';
  return (load + 1) * latencyEstimateMs > remainingMs ? 'overloaded' : 'ok';
}

/** Exponentially weighted moving average (weight of the new sample: alpha). */
export function ewma(previous: number | undefined, sample: number, alpha = 0.2): number {
  return previous === undefined ? sample : previous + alpha * (sample - previous);
}
