/**
 * One entry point for every scheme: `openSource(uri, …)` returns the body from a byte offset.
 * https:// always; http:// only with allowHttp; s3:// and hf:// as in their modules. No
 * file://: a manifest must not read the agent's own disk.
 */
import { PullError } from '../errors.js';
import { redactUri } from '../redact.js';
import { openHf } from './hf.js';
import { openHttp, type OpenedBody } from './http-get.js';
import { openS3 } from './s3.js';

export interface SourceRequest {
  readonly uri: string;
  readonly sha256: string;
  readonly offset: number;
  /** Exclusive end of a byte range; undefined = to the end of the file. */
  readonly end?: number | undefined;
  readonly ifRange?: string | undefined;
  readonly allowHttp: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly signal: AbortSignal;
}

export type SourceOpener = (req: SourceRequest) => Promise<OpenedBody>;

export const openSource: SourceOpener = (req) => {
  const opts = { offset: req.offset, end: req.end, ifRange: req.ifRange, allowHttp: req.allowHttp, signal: req.signal };
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(req.uri)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'https':
    case 'http': {
      let url: URL;
      try {
        url = new URL(req.uri);
      } catch {
        return Promise.reject(new PullError(`'${redactUri(req.uri)}' is not a valid URL`, 'refused', false));
      }
      const headers: Record<string, string> = {};
      if (url.username || url.password) {
        headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
        url.username = '';
        url.password = '';
      }
      return openHttp(url, { ...opts, headers });
    }
    case 's3':
      return openS3(req.uri, req.env, opts);
    case 'hf':
      return openHf(req.uri, req.sha256, req.env, opts);
    default:
      return Promise.reject(new PullError(`unsupported source scheme in '${redactUri(req.uri)}': use https://, http:// (with --allow-http), s3:// or hf://`, 'refused', false));
  }
};
