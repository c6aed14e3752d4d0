import { describe, expect, it } from 'vitest';
import { closeReason, refusalMessage, refusalOf, refusedRetryDelay, upgradeStatusOf } from '../../src/coordinator/link-close-policy.js';
import { CloseCode, PROTOCOL_VERSION } from '../../src/coordinator/protocol.js';

describe('link close policy (pure)', () => {
  it('reads the status of a refused upgrade from the ws error', () => {
    expect(upgradeStatusOf('Unexpected server response: 401')).toBe(401);
    expect(upgradeStatusOf('connect ECONNREFUSED 127.0.0.1:1')).toBeUndefined();
  });

  it('names the reason: upgrade status first, then the socket error of an abnormal close, then code and reason', () => {
    expect(closeReason({ code: 1006, reason: '', httpStatus: 403, error: 'Unexpected server response: 403' })).toBe('HTTP 403 on the upgrade');
    expect(closeReason({ code: 1006, reason: '', httpStatus: undefined, error: 'no pong from the coordinator within 50 ms' })).toBe('no pong from the coordinator within 50 ms');
    expect(closeReason({ code: 1006, reason: '', httpStatus: undefined, error: undefined })).toBe('connection lost');
    expect(closeReason({ code: 1001, reason: 'coordinator shutting down', httpStatus: undefined, error: undefined })).toBe("closed with 1001 'coordinator shutting down'");
    expect(closeReason({ code: 1011, reason: '', httpStatus: undefined, error: 'ignored' })).toBe('closed with 1011');
  });

  it('tells refusals (token, version, superseded) from closes a reconnect may fix', () => {
    expect(refusalOf({ code: CloseCode.INVALID_TOKEN, httpStatus: undefined })).toBe('token');
    expect(refusalOf({ code: 1006, httpStatus: 401 })).toBe('token');
    expect(refusalOf({ code: 1006, httpStatus: 403 })).toBe('token');
    expect(refusalOf({ code: CloseCode.UNSUPPORTED_VERSION, httpStatus: undefined })).toBe('version');
    expect(refusalOf({ code: CloseCode.SUPERSEDED, httpStatus: undefined })).toBe('superseded');
    expect(refusalOf({ code: 1006, httpStatus: 502 })).toBeUndefined();
    expect(refusalOf({ code: CloseCode.GOING_AWAY, httpStatus: undefined })).toBeUndefined();
    expect(refusalMessage('version', 'n1')).toContain(`protocol version ${PROTOCOL_VERSION}`);
    expect(refusalMessage('superseded', 'node-7')).toContain('node id node-7');
  });

  it('waits between half and all of the refused-retry interval', () => {
    expect(refusedRetryDelay(60_000, () => 0)).toBe(30_000);
    expect(refusedRetryDelay(60_000, () => 0.5)).toBe(45_000);
    expect(refusedRetryDelay(60_000, () => 0.999_999)).toBe(60_000);
  });
});
