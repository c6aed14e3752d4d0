import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { onClose, trackClose } from '../../src/http/response-close.js';

/** A real HTTP server on 127.0.0.1 whose first 'request' listener tracks each response's close. */
function serve(handler: (res: http.ServerResponse, order: string[]) => void) {
  const order: string[] = [];
  const server = http.createServer();
  server.on('request', (_req, res) => trackClose(res, () => order.push('tracker')));
  server.on('request', (_req, res) => handler(res, order));
  return new Promise<{ url: string; order: string[]; close: () => Promise<void> }>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({ url: `http://127.0.0.1:${port}`, order, close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }) });
    });
  });
}

describe('one close listener per response', () => {
  it('runs the tracker, then every onClose callback, once, when the response is written', async () => {
    let listeners = -1;
    const s = await serve((res, order) => {
      onClose(res, () => order.push('a'));
      onClose(res, () => order.push('b'));
      listeners = res.listenerCount('close');
      res.end('ok');
    });
    await (await fetch(s.url)).text();
    await new Promise((r) => setTimeout(r, 50));
    expect(listeners).toBe(1);
    expect(s.order).toEqual(['tracker', 'a', 'b']);
    await s.close();
  });

  it('calls back for a client that hung up before the answer, and at once after the close', async () => {
    let later: (() => void) | undefined;
    const closed = new Promise<void>((resolve) => (later = resolve));
    const s = await serve((res, order) => {
      onClose(res, () => {
        order.push(`gone finished=${res.writableFinished}`);
        setImmediate(() => onClose(res, () => { order.push('after'); later!(); }));
      });
    });
    const ac = new AbortController();
    const pending = fetch(s.url, { signal: ac.signal }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await pending;
    await closed;
    expect(s.order).toEqual(['tracker', 'gone finished=false', 'after']);
    await s.close();
  });

  it('falls back to its own listener on a response nobody tracks', async () => {
    const server = http.createServer((_req, res) => {
      onClose(res, () => seen.push('own'));
      res.end('ok');
    });
    const seen: string[] = [];
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)).text();
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual(['own']);
    await new Promise((r) => server.close(() => r(undefined)));
  });
});
