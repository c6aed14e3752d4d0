import { Writable } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyServerOptions } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { lazyChildLoggerFactory } from '../../src/http/lazy-logger.js';

/** A real fastify on 127.0.0.1 whose request loggers come from the lazy factory; lines are collected. */
async function server(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const logger = pino({ level, redact: { paths: ['apiToken'], censor: '[redacted]' } }, sink);
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLoggerFactory as unknown as FastifyServerOptions['childLoggerFactory'],
  });
  app.get('/info', async (req) => {
    req.log.info({ apiToken: 'secret', n: 1 }, 'info line');
    req.log.debug('debug line');
    return { level: req.log.level, debug: (req.log as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled('debug') };
  });
  app.get('/child', async (req) => {
    req.log.child({ extra: 'x' }).warn('from a grandchild');
    return {};
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url, lines, logger };
}

let close: (() => Promise<unknown>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('lazy request logger', () => {
  it('writes enabled lines with the request id and redaction, and skips disabled levels', async () => {
    const s = await server('info');
    close = () => s.app.close();
    const r = await fetch(`${s.url}/info`);
    expect(await r.json()).toEqual({ level: 'info', debug: false });
    const written = s.lines.filter((l) => l.msg === 'info line' || l.msg === 'debug line');
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ msg: 'info line', n: 1, apiToken: '[redacted]', level: 30 });
    expect(typeof written[0]!.reqId).toBe('string');
  });

  it('follows the parent level and makes real children on request', async () => {
    const s = await server('warn');
    close = () => s.app.close();
    s.logger.level = 'debug';
    await fetch(`${s.url}/info`);
    expect(s.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['info line', 'debug line']));
    await fetch(`${s.url}/child`);
    const g = s.lines.find((l) => l.msg === 'from a grandchild');
    expect(g).toMatchObject({ extra: 'x', level: 40 });
    expect(typeof g!.reqId).toBe('string');
  });
});
