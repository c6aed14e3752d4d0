/**
 * s3://bucket/key with AWS Signature Version 4 (npm `aws4`: one small file, no dependencies,
 * against the ~100 packages of @aws-sdk/client-s3; a GET needs nothing more than a signed
 * request). Credentials, in order: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN),
 * then the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
 * AWS_PROFILE or `default`); none at all means an anonymous request (public buckets). Region:
 * AWS_REGION, AWS_DEFAULT_REGION, the profile's region in ~/.aws/config, else us-east-1.
 * AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL selects an S3-compatible store (path-style addressing).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import aws4 from 'aws4';
import { PullError } from '../errors.js';
import { openHttp, type GetOptions, type OpenedBody } from './http-get.js';

export interface S3Location { readonly bucket: string; readonly key: string }

export function parseS3Uri(uri: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,62})\/(.+)$/.exec(uri);
  if (!m) throw new PullError(`'${uri.slice(0, 200)}' is not an s3://bucket/key URI`, 'refused', false);
  return { bucket: m[1]!, key: m[2]! };
}

/** `[profile]` sections of an INI file → key/value maps. */
function readIni(file: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  let section: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (head) {
      section = {};
      out.set(head[1]!, section);
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv && section) section[kv[1]!.toLowerCase()] = kv[2]!;
  }
  return out;
}

export interface S3Credentials { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string }

export function s3Settings(env: NodeJS.ProcessEnv): { credentials: S3Credentials | undefined; region: string; endpoint: string | undefined } {
  const profile = env.AWS_PROFILE ?? 'default';
  const home = env.HOME ?? os.homedir();
  let credentials: S3Credentials | undefined;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
  } else {
    const p = readIni(env.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, '.aws', 'credentials')).get(profile);
    if (p?.aws_access_key_id && p.aws_secret_access_key) {
      credentials = { accessKeyId: p.aws_access_key_id, secretAccessKey: p.aws_secret_access_key, ...(p.aws_session_token ? { sessionToken: p.aws_session_token } : {}) };
    }
  }
  const configRegion = readIni(env.AWS_CONFIG_FILE ?? path.join(home, '.aws', 'config')).get(profile)?.region;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? configRegion ?? 'us-east-1';
  return { credentials, region, endpoint: env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL };
}

export function openS3(uri: string, env: NodeJS.ProcessEnv, opts: Omit<GetOptions, 'headers'>): Promise<OpenedBody> {
  const { bucket, key } = parseS3Uri(uri);
  const { credentials, region, endpoint } = s3Settings(env);
  const encodedKey = key.split('/').map(encodeURIComponent).join('/');
  const url = endpoint
    ? new URL(`${endpoint.replace(/\/+$/, '')}/${bucket}/${encodedKey}`)
    : new URL(`https://${bucket}.s3.${region}.amazonaws.com/${encodedKey}`);
  const headers: Record<string, string> = {};
  if (opts.offset > 0 || opts.end !== undefined) {
    headers.Range = `bytes=${opts.offset}-${opts.end !== undefined ? opts.end - 1 : ''}`;
    if (opts.ifRange) headers['If-Range'] = opts.ifRange;
  }
  if (credentials) {
    const signed = aws4.sign({ host: url.host, path: `${url.pathname}${url.search}`, method: 'GET', service: 's3', region, headers }, credentials);
    for (const [k, v] of Object.entries(signed.headers ?? {})) headers[k.toLowerCase()] = String(v);
  }
  return openHttp(url, { ...opts, headers });
}
