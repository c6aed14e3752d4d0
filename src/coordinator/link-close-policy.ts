/**
 * What a lost connection means, as pure functions: the reason the link reports (`lastError`)
 * and whether the coordinator refused the node (then retrying fast cannot help).
 *
 * A refusal is close 4001 (invalid token), 4003 (unsupported version), 4004 (superseded) or
 * HTTP 401/403 on the upgrade. The link retries a refusal only every `refusedRetryMs`, with
 * jitter between half and all of it ({@link refusedRetryDelay}), so a rotated token is picked up
 * without restarting the agent and without hammering the coordinator; anything else reconnects
 * with the backoff of link-backoff.ts.
 */
import { CloseCode, PROTOCOL_VERSION, REFUSAL_CLOSE_CODES } from './protocol.js';

/** What the link knows when its socket closes. */
export interface CloseFacts {
  readonly code: number;
  readonly reason: string;
  /** The status of a refused upgrade (from ws's "Unexpected server response: N"). */
  readonly httpStatus: number | undefined;
  /** The last socket error, or the link's own reason for terminating. */
  readonly error: string | undefined;
}

export type Refusal = 'token' | 'version' | 'superseded';

/** The status code in ws's error for a refused upgrade, if `message` is one. */
export function upgradeStatusOf(message: string): number | undefined {
  const status = /Unexpected server response: (\d+)/.exec(message);
  return status ? Number(status[1]) : undefined;
}

/** The human-readable reason for a close (what `status().lastError` says). */
export function closeReason(f: CloseFacts): string {
  if (f.httpStatus) return `HTTP ${f.httpStatus} on the upgrade`;
  if (f.code === 1006) return f.error ?? 'connection lost';
  return `closed with ${f.code}${f.reason ? ` '${f.reason}'` : ''}`;
}

/** Which refusal a close is, or undefined for one that a reconnect may fix. */
export function refusalOf(f: Pick<CloseFacts, 'code' | 'httpStatus'>): Refusal | undefined {
  if (f.code === CloseCode.INVALID_TOKEN || f.httpStatus === 401 || f.httpStatus === 403) return 'token';
  if (!REFUSAL_CLOSE_CODES.includes(f.code)) return undefined;
  return f.code === CloseCode.UNSUPPORTED_VERSION ? 'version' : 'superseded';
}

/** The error the link logs for a refusal: what the operator should fix. */
export function refusalMessage(refusal: Refusal, nodeId: string): string {
  switch (refusal) {
    case 'token':
      return 'the coordinator refused our token; check the coordinator token';
    case 'version':
      return `the coordinator does not support protocol version ${PROTOCOL_VERSION}; upgrade the agent or the coordinator`;
    case 'superseded':
      return `another agent registered with node id ${nodeId} (two agents sharing one state dir?)`;
  }
}

/** The wait after a refusal: uniformly between half and all of `refusedRetryMs`, rounded (`rng()` in [0, 1)). */
export function refusedRetryDelay(refusedRetryMs: number, rng: () => number): number {
  return Math.round(refusedRetryMs * (0.5 + 0.5 * rng()));
}
