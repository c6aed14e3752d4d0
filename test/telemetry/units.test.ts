import { describe, expect, it } from 'vitest';
import { decodeThrottleReasons, parseBytes, parseEnabled, parseMask, parseNumber, parseString } from '../../src/telemetry/units.js';

describe('nvidia-smi value parsing', () => {
  it('strips units', () => {
    expect(parseNumber('700.00 W')).toBe(700);
    expect(parseNumber('31 C')).toBe(31);
    expect(parseNumber('1980 MHz')).toBe(1980);
    expect(parseNumber('87 %')).toBe(87);
    expect(parseNumber('69.87')).toBe(69.87);
    expect(parseNumber('-5 C')).toBe(-5);
  });

  it('turns the N/A family into null', () => {
    for (const v of ['N/A', '[N/A]', '[Not Supported]', '[Unknown Error]', '[Insufficient Permissions]', '', '  ', undefined, {}, 'Requested functionality has been deprecated']) {
      expect(parseNumber(v)).toBeNull();
      expect(parseBytes(v)).toBeNull();
      expect(parseString(v)).toBeNull();
    }
    expect(parseMask('[N/A]')).toBeNull();
  });

  it('converts memory to bytes (bare numbers are MiB)', () => {
    expect(parseBytes('81559 MiB')).toBe(81559 * 1024 * 1024);
    expect(parseBytes('81559')).toBe(81559 * 1024 * 1024);
    expect(parseBytes('1 GiB')).toBe(1024 ** 3);
    expect(parseBytes('0 MiB')).toBe(0);
  });

  it('reads Enabled/Disabled', () => {
    expect(parseEnabled('Enabled')).toBe(true);
    expect(parseEnabled('Disabled')).toBe(false);
    expect(parseEnabled('N/A')).toBeNull();
  });

  it('decodes the throttle reasons mask', () => {
    expect(parseMask('0x0000000000000004')).toBe(4);
    expect(decodeThrottleReasons(4)).toEqual(['sw_power_cap']);
    expect(decodeThrottleReasons(0x1 | 0x40)).toEqual(['gpu_idle', 'hw_thermal_slowdown']);
    expect(decodeThrottleReasons(0)).toEqual([]);
    expect(decodeThrottleReasons(0x400)).toEqual(['unknown_0x400']);
    expect(decodeThrottleReasons(null)).toEqual([]);
  });
});
