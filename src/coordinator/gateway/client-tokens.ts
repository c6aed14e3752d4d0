/**
 * Client tokens for the gateway's inference routes, distinct from the coordinator's admin token
 * (which runs commands and is refused here). Each token has a name, the identity that cost
 * accounting and the audit trail record; the token itself is kept only as a SHA-256 digest.
 */
import { createHash } from 'node:crypto';
import { ID_PATTERN } from '../protocol.js';

export class ClientTokens {
  private readonly byDigest = new Map<string, string>();
  /** Authorization headers seen to match, → client name. */
  private readonly validHeaders = new Map<string, string>();

  /** `tokens`: name → token. Names follow the id pattern; tokens have at least 8 characters. */
  constructor(tokens: Readonly<Record<string, string>>, adminToken: string) {
    for (const [name, token] of Object.entries(tokens)) {
      if (!ID_PATTERN.test(name)) throw new RangeError(`client token name '${name}' must be 1-128 letters, digits, _ . : - (it names the client in costs and the audit trail)`);
      if (typeof token !== 'string' || token.length < 8) throw new RangeError(`client token '${name}' must be at least 8 characters`);
      if (token === adminToken) throw new RangeError(`client token '${name}' equals the admin token; inference clients must not hold the token that runs commands`);
      const digest = sha256(token);
      if (this.byDigest.has(digest)) throw new RangeError(`client tokens '${this.byDigest.get(digest)}' and '${name}' are the same token`);
      this.byDigest.set(digest, name);
    }
  }

  get size(): number {
    return this.byDigest.size;
  }

  /**
   * The client's name for an `Authorization: Bearer <token>` header, or undefined. Headers that
   * matched are remembered (at most VALID_HEADERS_KEPT), so a client's next request skips the
   * digest; a header that does not match is never remembered and always goes through it.
   */
  identify(header: string | undefined): string | undefined {
    if (header === undefined) return undefined;
    const known = this.validHeaders.get(header);
    if (known !== undefined) return known;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const name = m ? this.byDigest.get(sha256(m[1]!)) : undefined;
    if (name !== undefined) {
      if (this.validHeaders.size >= VALID_HEADERS_KEPT) this.validHeaders.clear();
      this.validHeaders.set(header, name);
    }
    return name;
  }
}

const VALID_HEADERS_KEPT = 1024;

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Parse `name=token,name2=token2` (the CLI flag / env var form). */
export function parseClientTokens(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new RangeError(`client token '${part.slice(0, 20)}…' must be written name=token`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}
