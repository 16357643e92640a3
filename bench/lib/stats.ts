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
