/**
 * nvidia-smi values → typed numbers.
 *
 * nvidia-smi writes unit-laden strings in XML ("81559 MiB", "700.00 W", "33 C", "1980 MHz",
 * "0 %") and bare numbers in `--format=csv,nounits`. What it cannot read it writes as "N/A",
 * "[N/A]", "[Not Supported]", "[Unknown Error]", "[Insufficient Permissions]", "[GPU is lost]",
 * "Requested functionality has been deprecated", ... All of those become `null`.
 */

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kib: 1024,
  kb: 1024, // nvidia-smi's "KB" means KiB
  mib: 1024 ** 2,
  mb: 1024 ** 2,
  gib: 1024 ** 3,
  gb: 1024 ** 3,
};

const NUMBER_WITH_UNIT = /^([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([A-Za-z%]*)$/;

/** The text of an xml2js node (string, or `{_: text, $: attrs}`), or undefined. */
export function text(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  if (typeof node === 'number') return String(node);
  if (node && typeof node === 'object' && '_' in node) {
    const t = (node as { _: unknown })._;
    return typeof t === 'string' ? t : undefined;
  }
  return undefined;
}

/** "81559 MiB" → 81559, "700.00 W" → 700, "N/A" → null. Units are not checked here. */
export function parseNumber(value: unknown): number | null {
  const s = text(value)?.trim();
  if (!s) return null;
  const m = NUMBER_WITH_UNIT.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

/** An integer count ("0", "12"), or null. */
export function parseInteger(value: unknown): number | null {
  const n = parseNumber(value);
  return n === null ? null : Math.trunc(n);
}

/** "81559 MiB" → bytes. A bare number is read as `defaultUnit` (MiB: nvidia-smi's memory unit). */
export function parseBytes(value: unknown, defaultUnit = 'MiB'): number | null {
  const s = text(value)?.trim();
  if (!s) return null;
  const m = NUMBER_WITH_UNIT.exec(s);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] || defaultUnit).toLowerCase();
  const factor = BYTE_UNITS[unit];
  if (!Number.isFinite(n) || factor === undefined) return null;
  return Math.round(n * factor);
}

/** "Enabled"/"Disabled" (also "On"/"Off", "Yes"/"No") → boolean; anything else → null. */
export function parseEnabled(value: unknown): boolean | null {
  const s = text(value)?.trim().toLowerCase();
  if (s === 'enabled' || s === 'on' || s === 'yes' || s === 'active') return true;
  if (s === 'disabled' || s === 'off' || s === 'no' || s === 'not active') return false;
  return null;
}

/** A string value, or null for the N/A family. */
export function parseString(value: unknown): string | null {
  const s = text(value)?.trim();
  if (!s || isNotAvailable(s)) return null;
  return s;
}

export function isNotAvailable(s: string): boolean {
  return s === 'N/A' || (s.startsWith('[') && s.endsWith(']')) || /deprecated|not supported/i.test(s);
}

/**
 * NVML's clocks event (throttle) reason bits (`nvmlClocksEventReason*` / `nvmlClocksThrottleReason*`),
 * named like the elements of `<clocks_event_reasons>` without their prefix.
 */
export const THROTTLE_REASON_BITS: readonly (readonly [bit: number, name: string])[] = [
  [0x1, 'gpu_idle'],
  [0x2, 'applications_clocks_setting'],
  [0x4, 'sw_power_cap'],
  [0x8, 'hw_slowdown'],
  [0x10, 'sync_boost'],
  [0x20, 'sw_thermal_slowdown'],
  [0x40, 'hw_thermal_slowdown'],
  [0x80, 'hw_power_brake_slowdown'],
  [0x100, 'display_clocks_setting'],
];

/** "0x0000000000000004" → 4 (nvidia-smi prints the 64-bit mask in hex); null for N/A. */
export function parseMask(value: unknown): number | null {
  const s = text(value)?.trim();
  if (!s) return null;
  if (/^0x[0-9a-f]+$/i.test(s)) {
    // The defined bits are all below 2^53; BigInt keeps an odd high bit from making it NaN.
    const big = BigInt(s);
    return Number(big & BigInt(Number.MAX_SAFE_INTEGER));
  }
  if (/^\d+$/.test(s)) return Number(s);
  return null;
}

export function decodeThrottleReasons(mask: number | null): string[] {
  if (mask === null) return [];
  const out: string[] = [];
  let known = 0;
  for (const [bit, name] of THROTTLE_REASON_BITS) {
    known |= bit;
    if (mask & bit) out.push(name);
  }
  // Bits this table does not know (new drivers add some) are kept visible rather than dropped.
  const unknown = mask - (mask & known);
  if (unknown > 0) out.push(`unknown_0x${unknown.toString(16)}`);
  return out;
}
