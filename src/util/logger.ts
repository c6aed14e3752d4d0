/** The logger the agent passes around: pino's (fastify's own), JSON lines on stdout. */
import { pino, type Logger as PinoLogger } from 'pino';
import { logSink } from './log-sink.js';

export type Logger = PinoLogger;

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'gpu-agent' },
    // Tokens never reach the logs, whatever object they ride in.
    redact: { paths: ['apiToken', 'coordinatorToken', 'req.headers.authorization', '*.apiToken', '*.coordinatorToken'], censor: '[redacted]' },
  }, logSink()); // never blocks on a stdout nobody reads (log-sink.ts)
}
