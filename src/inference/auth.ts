/**
 * The bearer token check, one implementation for both transports: HTTP's `Authorization`
 * header and gRPC's `authorization` metadata carry the same `Bearer <token>`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { AgentError } from '../errors.js';

/**
 * `Bearer <token>`, the scheme case-insensitive (RFC 9110 §11.1). Both sides are hashed
 * first so the comparison takes the same time whatever the given length.
 */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = header === undefined ? null : /^bearer +(\S+) *$/i.exec(header);
  if (!m) return false;
  const given = createHash('sha256').update(m[1]!).digest();
  const want = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, want);
}

/** The refusal both transports send (HTTP 401 + WWW-Authenticate; gRPC UNAUTHENTICATED). */
export function checkToken(header: string | undefined, token: string | undefined, how: string): void {
  if (token === undefined || token === '') return;
  if (!tokenMatches(header, token)) {
    throw new AgentError('UNAUTHENTICATED', `missing or wrong bearer token: send ${how}: Bearer <api token>`);
  }
}
