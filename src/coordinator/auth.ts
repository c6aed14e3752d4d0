/** The coordinator's admin token check (agents and the admin HTTP API present it as a bearer token). */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Constant-time comparison of `Authorization: Bearer <token>` with the expected token. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const given = createHash('sha256').update(m[1]!).digest();
  const wanted = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, wanted);
}
