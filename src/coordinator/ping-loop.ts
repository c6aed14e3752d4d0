/**
 * The WebSocket keepalive both ends of the agent link run (the agent's link-connection.ts and
 * the coordinator's agent-sockets.ts): every `intervalMs` a ping; a connection whose previous
 * ping got no pong by then is silent, and `onSilent` is told before it is terminated. The
 * pong handler of each side clears `awaitingPong`. `tick` wraps each timer callback (the
 * agent's guard and its is-this-still-the-current-connection check); it may skip the call.
 */
import type { Clock } from '../util/clock.js';

export interface Pinged {
  awaitingPong: boolean;
  cancelPing?: (() => void) | undefined;
  readonly ws: { ping(): void; terminate(): void };
}

export function schedulePing(conn: Pinged, clock: Clock, intervalMs: number, onSilent: () => void, tick: (fn: () => void) => void = (fn) => fn()): void {
  conn.cancelPing = clock.setTimer(intervalMs, () =>
    tick(() => {
      if (conn.awaitingPong) {
        onSilent();
        conn.ws.terminate();
        return;
      }
      conn.awaitingPong = true;
      try {
        conn.ws.ping();
      } catch {
        // closing already; the close handler takes over
      }
      schedulePing(conn, clock, intervalMs, onSilent, tick);
    }),
  );
}
