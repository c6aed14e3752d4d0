/**
 * hf://<owner>/<repo>[@<revision>]/<path>: a file of a Hugging Face repository through its
 * resolve route, `<HF_ENDPOINT>/<owner>/<repo>/resolve/<revision>/<path>` (HF_ENDPOINT defaults
 * to https://huggingface.co; a mirror or a local server can stand in). HF_TOKEN, when set, is
 * sent as a bearer token to the resolve URL only (the redirect to the content URL, pre-signed,
 * gets none — even on the same host, as a local mirror may serve both).
 * The resolve answer carries X-Linked-Etag (the LFS sha256) on its redirect: when it disagrees
 * with the manifest the pull stops before downloading — the manifest's digest still decides.
 */
import { PullError } from '../errors.js';
import { openHttp, type GetOptions, type OpenedBody } from './http-get.js';

export interface HfLocation { readonly owner: string; readonly repo: string; readonly revision: string; readonly path: string }

export function parseHfUri(uri: string): HfLocation {
  const m = /^hf:\/\/([A-Za-z0-9][\w.-]*)\/([A-Za-z0-9][\w.-]*?)(?:@([\w.-]+))?\/(.+)$/.exec(uri);
  if (!m || m[4]!.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw new PullError(`'${uri.slice(0, 200)}' is not an hf://owner/repo[@revision]/path URI`, 'refused', false);
  }
  return { owner: m[1]!, repo: m[2]!, revision: m[3] ?? 'main', path: m[4]! };
}

export function hfResolveUrl(uri: string, env: NodeJS.ProcessEnv): URL {
  const loc = parseHfUri(uri);
  const endpoint = (env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  return new URL(`${endpoint}/${loc.owner}/${loc.repo}/resolve/${encodeURIComponent(loc.revision)}/${loc.path.split('/').map(encodeURIComponent).join('/')}`);
}

/** The sha256 Hugging Face advertises for an LFS file, if any (X-Linked-Etag, else a 64-hex ETag). */
export function hfAdvertisedSha256(headers: OpenedBody['firstHeaders']): string | undefined {
  for (const h of [headers['x-linked-etag'], headers.etag]) {
    const v = typeof h === 'string' ? h.replace(/^W\//, '').replace(/"/g, '') : undefined;
    if (v && /^[0-9a-f]{64}$/.test(v)) return v;
  }
  return undefined;
}

export async function openHf(uri: string, expectedSha256: string, env: NodeJS.ProcessEnv, opts: Omit<GetOptions, 'headers'>): Promise<OpenedBody> {
  const token = env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  const opened = await openHttp(hfResolveUrl(uri, env), { ...opts, headers: token ? { authorization: `Bearer ${token}` } : {}, credentialsFirstHopOnly: true });
  const advertised = hfAdvertisedSha256(opened.firstHeaders);
  if (advertised && advertised !== expectedSha256) {
    opened.body.destroy();
    throw new PullError(`sha256 mismatch for ${uri}: the manifest says ${expectedSha256}, Hugging Face advertises ${advertised} (X-Linked-Etag); nothing was downloaded`, 'digest', false);
  }
  return opened;
}
