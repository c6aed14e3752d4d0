/**
 * Credentials never leave the agent: URIs are shown without user-info and without their query
 * string (pre-signed URLs carry signatures and tokens there), and known secret values are
 * replaced wherever they might appear in a message.
 */

/** `https://user:pw@host/a?X-Amz-Signature=…` → `https://host/a?…`. Never throws. */
export function redactUri(uri: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)([^?#]*)([?#].*)?$/i.exec(uri);
  if (!m) return '(unparseable uri)';
  const authority = m[2]!.includes('@') ? m[2]!.slice(m[2]!.lastIndexOf('@') + 1) : m[2]!;
  return `${m[1]}${authority}${m[3]}${m[4] ? '?…' : ''}`;
}

/** Replace each secret (at least 4 characters) in `text` with ***. */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}

/** The secret values of an environment that a message must never contain. */
export function envSecrets(env: NodeJS.ProcessEnv): string[] {
  return ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID']
    .map((k) => env[k]).filter((v): v is string => typeof v === 'string' && v.length >= 4);
}
