/**
 * Why a pull failed. `retryable` decides whether the download loop tries again (network cuts,
 * stalls, 5xx, 429) or gives up at once (4xx, digest mismatch, out of disk, a refused URI).
 * Messages never contain credentials: URIs in them pass through redactUri first.
 */
export class PullError extends Error {
  override readonly name = 'PullError';
  constructor(
    message: string,
    readonly kind: 'refused' | 'http' | 'network' | 'stall' | 'digest' | 'disk' | 'size' | 'budget' | 'aborted',
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** The bytes did not hash to the manifest's sha256: the download was deleted. */
export function digestMismatch(file: string, expected: string, actual: string): PullError {
  return new PullError(`sha256 mismatch for ${file}: the manifest says ${expected}, the downloaded bytes hash to ${actual}; the download was deleted`, 'digest', false);
}

/** Transient network failures worth another try (connection reset, cut mid-file, DNS hiccup). */
export function isTransientNetworkError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code);
}
