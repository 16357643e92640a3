// Latency histograms (HdrHistogram, values recorded in microseconds) and their summaries in
// milliseconds.
import hdr from 'hdr-histogram-js';

export type Histogram = ReturnType<typeof hdr.build>;

/** Microsecond values from 1 µs to 10 minutes, 3 significant digits. */
export function histogram(): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

/** Records a duration given in milliseconds (performance.now() differences). */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.min(600_000_000, Math.round(ms * 1000))));
}

/** Milliseconds, to the microsecond. */
export interface Latency {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

const ms = (us: number) => Math.round(us) / 1000;

export function summarize(h: Histogram): Latency {
  if (h.totalCount === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  };
}

/**
 * The HdrHistogram percentile curve, [percentile, ms] at 10 points per decade of 1 / (1 - p):
 * p50, p60.2, p68.4, ..., p99, ..., p99.99, as far as the count supports (at least one value
 * above the percentile), for the latency charts.
 */
export function percentileCurve(h: Histogram): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 3; i <= 40; i++) {
    const inverse = 10 ** (i / 10);
    if (h.totalCount < inverse) break;
    const p = Math.round((100 - 100 / inverse) * 10_000) / 10_000;
    out.push([p, ms(h.getValueAtPercentile(p))]);
  }
  return out;
}
