/**
 * The load API's pull parameters: `{"parameters": {"source": <manifest>}}` (an object or its
 * JSON string) pulls and loads a version; `{"parameters": {"version": N}}` rolls back to a
 * pulled version from the cache. Errors become the agent's 4xx/5xx with the reason.
 */
import { AgentError, invalid } from '../errors.js';
import { PullError } from './errors.js';
import { ManifestError, parseManifest, type Manifest } from './manifest.js';

export function pullParameters(model: string, body: Record<string, unknown>): { source?: Manifest; version?: number } | undefined {
  const p = body.parameters;
  if (typeof p !== 'object' || p === null) return undefined;
  const params = p as Record<string, unknown>;
  if (params.source === undefined && params.version === undefined) return undefined;
  if (params.config !== undefined) throw invalid("load parameter 'config' cannot be combined with 'source' or 'version'; put the config in the manifest");
  if (params.source !== undefined && params.version !== undefined) throw invalid("give either 'source' (pull a version) or 'version' (roll back to one), not both");
  if (params.version !== undefined) {
    const v = typeof params.version === 'string' && /^\d+$/.test(params.version) ? Number(params.version) : params.version;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw invalid("load parameter 'version' must be a version number");
    return { version: v };
  }
  let raw = params.source;
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch (err) {
      throw invalid(`load parameter 'source' is not valid JSON: ${(err as Error).message}`);
    }
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(raw, "load parameter 'source'");
  } catch (err) {
    throw invalid((err as ManifestError).message);
  }
  if (manifest.name !== model) throw invalid(`load parameter 'source' is a manifest for '${manifest.name}', the URL names '${model}'`);
  return { source: manifest };
}

/** Map a pull's failure onto the agent's error table. */
export async function asAgentError<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!(err instanceof PullError)) throw err;
    const code = ['refused', 'digest', 'size', 'http'].includes(err.kind) ? 'INVALID_ARGUMENT' : 'UNAVAILABLE';
    throw new AgentError(code, err.message);
  }
}
