/**
 * A real HTTP server on 127.0.0.1 that serves model files the way the tests need: Range
 * requests, throttling, a connection cut mid-file, a stall (headers and some bytes, then
 * silence), wrong bytes; and Hugging Face's resolve route (`/<owner>/<repo>/resolve/<rev>/<path>`
 * → 302 to a content URL, with ETag / X-Linked-Etag / X-Linked-Size). Every request is recorded.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Behaviour {
  /** Bytes per second (approximately), for the whole response, sent in 50 ms slices. */
  throttle?: number;
  /** Destroy the socket after this many body bytes — for the next `times` requests (default 1). */
  cutAfter?: { bytes: number; times?: number };
  /** Send this many body bytes, then nothing (socket open) — for the next `times` requests (default 1). */
  stallAfter?: { bytes: number; times?: number };
  /** Serve these bytes instead (same length): a corrupt mirror. */
  wrong?: boolean;
  /** Ignore Range (always 200 with the whole body). */
  noRange?: boolean;
}

export interface Recorded { url: string; range: string | undefined; authorization: string | undefined; status: number }

export interface SourceServer {
  readonly url: string;
  readonly requests: Recorded[];
  add(path: string, data: Buffer, behaviour?: Behaviour): void;
  behave(path: string, behaviour: Behaviour): void;
  /** Bytes of body sent in total (what the transfer cost). */
  bodyBytesSent(path?: string): number;
  /** HF: files of a repo at a revision; `token` required when set. */
  addHf(repo: string, revision: string, path: string, data: Buffer, token?: string): void;
  close(): Promise<void>;
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export async function startSourceServer(): Promise<SourceServer> {
  const files = new Map<string, { data: Buffer; b: Behaviour }>();
  const hf = new Map<string, { sha: string; size: number; token: string | undefined }>();
  const sent = new Map<string, number>();
  const requests: Recorded[] = [];
  const open = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const rec: Recorded = { url, range: req.headers.range, authorization: req.headers.authorization, status: 0 };
    requests.push(rec);
    const hfMatch = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    if (hfMatch) {
      const key = `${hfMatch[1]}@${decodeURIComponent(hfMatch[2]!)}/${decodeURIComponent(hfMatch[3]!)}`;
      const f = hf.get(key);
      if (!f) return void res.writeHead((rec.status = 404), { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
      if (f.token && req.headers.authorization !== `Bearer ${f.token}`) return void res.writeHead((rec.status = 401)).end('Invalid credentials');
      rec.status = 302;
      res.writeHead(302, { location: `/cdn/${f.sha}`, etag: `"${f.sha}"`, 'x-linked-etag': `"${f.sha}"`, 'x-linked-size': String(f.size), 'x-repo-commit': 'deadbeef' }).end();
      return;
    }
    const f = files.get(url.split('?')[0]!);
    if (!f) return void res.writeHead((rec.status = 404)).end('no such file');
    const { data, b } = f;
    const body = b.wrong ? Buffer.from(data.map((x) => x ^ 0xff)) : data;
    let start = 0;
    const m = !b.noRange && req.headers.range ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range) : null;
    if (m) start = Number(m[1]);
    // The end of a ranged read (exclusive); the whole file when the Range is open-ended.
    const stop = m && m[2] ? Math.min(data.length, Number(m[2]) + 1) : data.length;
    if (start > data.length) return void res.writeHead((rec.status = 416), { 'content-range': `bytes */${data.length}` }).end();
    rec.status = m ? 206 : 200;
    res.writeHead(rec.status, {
      'content-type': 'application/octet-stream', 'content-length': String(stop - start), 'accept-ranges': 'bytes', etag: `"${sha256(data).slice(0, 16)}"`,
      ...(m ? { 'content-range': `bytes ${start}-${stop - 1}/${data.length}` } : {}),
    });
    const cut = b.cutAfter && (b.cutAfter.times ?? 1) > 0 ? b.cutAfter : undefined;
    const stall = b.stallAfter && (b.stallAfter.times ?? 1) > 0 ? b.stallAfter : undefined;
    if (cut) cut.times = (cut.times ?? 1) - 1;
    if (stall) stall.times = (stall.times ?? 1) - 1;
    // Throttled responses go out in 50 ms slices, so even a file of a few hundred bytes takes
    // (size ÷ rate) to arrive instead of leaving in one write.
    const chunk = b.throttle ? Math.max(1, Math.min(64 * 1024, Math.floor(b.throttle / 20))) : 64 * 1024;
    let pos = start;
    let bodySent = 0;
    const count = (n: number) => {
      bodySent += n;
      sent.set(url, (sent.get(url) ?? 0) + n);
    };
    const pump = () => {
      while (pos < stop) {
        let n = Math.min(chunk, stop - pos);
        const limit = cut?.bytes ?? stall?.bytes;
        if (limit !== undefined && bodySent + n > limit) n = Math.max(0, limit - bodySent);
        if (n > 0) {
          res.write(body.subarray(pos, pos + n));
          pos += n;
          count(n);
        }
        if (limit !== undefined && bodySent >= limit) {
          if (cut) setTimeout(() => res.socket?.destroy(), 20);
          return; // stall: keep the socket open, send nothing more
        }
        if (b.throttle) {
          setTimeout(pump, Math.max(1, (n / b.throttle) * 1000));
          return;
        }
        if (res.writableNeedDrain) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  server.on('connection', (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    add(path, data, behaviour = {}) {
      files.set(path, { data, b: behaviour });
    },
    behave(path, behaviour) {
      const f = files.get(path)!;
      f.b = behaviour;
    },
    bodyBytesSent(path) {
      return path ? sent.get(path) ?? 0 : [...sent.values()].reduce((a, b) => a + b, 0);
    },
    addHf(repo, revision, path, data, token) {
      const sha = sha256(data);
      hf.set(`${repo}@${revision}/${path}`, { sha, size: data.length, token });
      files.set(`/cdn/${sha}`, { data, b: {} });
    },
    close: () => new Promise<void>((r) => {
      for (const s of open) s.destroy();
      server.close(() => r());
    }),
  };
}
