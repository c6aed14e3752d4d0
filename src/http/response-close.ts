/**
 * One 'close' listener per response, shared by what needs to know that a response closed (the
 * drain's counts in shutdown.ts, the client-gone signal in inference.ts): each extra
 * `res.once('close')` costs a wrapper, a listener add and a remove per request.
 *
 * Contract: `trackClose(res, fn)` is called by the server's first 'request' listener (before
 * fastify's) and runs `fn` and then every `onClose` callback when the response closes;
 * `onClose(res, fn)` on a response nobody tracks (fastify's inject) falls back to its own listener.
 */
import type { ServerResponse } from 'node:http';

const CALLBACKS = Symbol('close callbacks');
type Tracked = ServerResponse & { [CALLBACKS]?: (() => void)[] | null };

export function trackClose(res: ServerResponse, fn: () => void): void {
  const r = res as Tracked;
  r[CALLBACKS] = null;
  res.once('close', () => {
    fn();
    const more = r[CALLBACKS];
    r[CALLBACKS] = undefined;
    if (more) for (const f of more) f();
  });
}

/** Run `fn` once when `res` closes (at once if it has closed already). */
export function onClose(res: ServerResponse, fn: () => void): void {
  const r = res as Tracked;
  if (r[CALLBACKS] === null) r[CALLBACKS] = [fn];
  else if (r[CALLBACKS]) r[CALLBACKS].push(fn);
  else if (res.closed) fn();
  else res.once('close', fn);
}
