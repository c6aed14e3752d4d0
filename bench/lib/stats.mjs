// Small numeric helpers: exact percentiles over recorded samples (no histogram bucketing).

/** Sorted copy of the samples as a Float64Array. */
export function sorted(samples) {
  const a = Float64Array.from(samples);
  a.sort();
  return a;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(asc, p) {
  if (asc.length === 0) return NaN;
  const rank = Math.min(asc.length, Math.max(1, Math.ceil((p / 100) * asc.length)));
  return asc[rank - 1];
}

export function mean(values) {
  let s = 0;
  for (const v of values) s += v;
  return values.length ? s / values.length : NaN;
}

/** Median; the mean of the two middle values for an even count. */
export function median(values) {
  const a = sorted(values);
  if (a.length === 0) return NaN;
  const mid = a.length >> 1;
  return a.length % 2 ? a[mid] : (a[mid - 1] + a[mid]) / 2;
}

/** Summary of latency samples in microseconds. */
export function summarize(samplesUs) {
  const a = sorted(samplesUs);
  return {
    n: a.length,
    mean_us: round(mean(a), 1),
    min_us: round(a[0], 1),
    p50_us: round(percentile(a, 50), 1),
    p90_us: round(percentile(a, 90), 1),
    p95_us: round(percentile(a, 95), 1),
    p99_us: round(percentile(a, 99), 1),
    max_us: round(a[a.length - 1], 1),
  };
}

export function round(x, digits = 0) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Human formatting: µs below 1 ms, ms above. */
export function fmtUs(us) {
  if (!Number.isFinite(us)) return '—';
  if (us < 1000) return `${us.toFixed(0)} µs`;
  return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
}

export function fmtRate(x) {
  if (!Number.isFinite(x)) return '—';
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
}
