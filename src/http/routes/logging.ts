/**
 * Triton's logging extension: `GET /v2/logging` shows the log settings, `POST /v2/logging`
 * changes them at run time (any subset of the fields). The agent logs JSON lines to stdout
 * with pino, so Triton's settings map onto one pino level:
 *   log_verbose_level > 0 → debug; else log_info → info; else log_warning → warn;
 *   else log_error → error; else silent.
 * `log_file` and `log_format` other than their defaults are refused (stdout, JSON only).
 * The trace extension is not implemented: `/v2/trace/setting` answers 400 in Triton's error
 * shape, saying so.
 */
import type { FastifyPluginAsync } from 'fastify';
import { invalid } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import { jsonBody } from '../body.js';
import type { HttpContext } from '../context.js';

interface LogSettings {
  log_file: string;
  log_info: boolean;
  log_warning: boolean;
  log_error: boolean;
  log_verbose_level: number;
  log_format: string;
}

function settingsOf(level: string): LogSettings {
  const rank = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, fatal: 5, silent: 6 }[level] ?? 2;
  return { log_file: '', log_info: rank <= 2, log_warning: rank <= 3, log_error: rank <= 4, log_verbose_level: rank <= 1 ? 1 : 0, log_format: 'default' };
}

function levelOf(s: LogSettings): string {
  if (s.log_verbose_level > 0) return 'debug';
  if (s.log_info) return 'info';
  if (s.log_warning) return 'warn';
  if (s.log_error) return 'error';
  return 'silent';
}

export const loggingRoutes = (_ctx: HttpContext, logger: Logger): FastifyPluginAsync => async (app) => {
  app.get('/v2/logging', async () => settingsOf(logger.level));

  app.post('/v2/logging', async (req) => {
    const body = jsonBody(req);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the request body must be a JSON object of log settings');
    const next = settingsOf(logger.level);
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      switch (k) {
        case 'log_info':
        case 'log_warning':
        case 'log_error':
          if (typeof v !== 'boolean') throw invalid(`log setting '${k}' must be a boolean`);
          next[k] = v;
          break;
        case 'log_verbose_level':
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`log setting '${k}' must be a non-negative integer`);
          next.log_verbose_level = v;
          break;
        case 'log_file':
          if (v !== '') throw invalid("log setting 'log_file' is not supported: the agent logs JSON lines to stdout (redirect it, or use journald)");
          break;
        case 'log_format':
          if (v !== 'default') throw invalid("log setting 'log_format' is not supported: the agent logs JSON lines (pino)");
          break;
        default:
          throw invalid(`unknown log setting '${k}'; the settings are log_file, log_info, log_warning, log_error, log_verbose_level, log_format`);
      }
    }
    const level = levelOf(next);
    if (level !== logger.level) {
      logger.warn({ from: logger.level, to: level }, 'log level changed through POST /v2/logging');
      logger.level = level;
    }
    return settingsOf(logger.level);
  });

  const TRACE = 'the trace extension is not supported by gpu-node-agent; use the statistics extension (/v2/models/stats) and /metrics for timings';
  app.get('/v2/trace/setting', async () => { throw invalid(TRACE); });
  app.post('/v2/trace/setting', async () => { throw invalid(TRACE); });
  app.get('/v2/models/:model/trace/setting', async () => { throw invalid(TRACE); });
  app.post('/v2/models/:model/trace/setting', async () => { throw invalid(TRACE); });
};
