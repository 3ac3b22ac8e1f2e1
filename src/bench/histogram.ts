/** Latency histograms for the load generator: HDR histograms in microseconds, summarised in milliseconds. */
import * as hdr from 'hdr-histogram-js';

/** The median of `xs` (the mean of the middle two for an even count); undefined when empty. */
export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export class LatencyHistogram {
  private readonly h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /** Records one latency given in milliseconds (kept with microsecond resolution). */
  record(ms: number): void {
    this.h.recordValue(Math.min(120_000_000, Math.max(1, Math.round(ms * 1000))));
  }

  get count(): number {
    return this.h.totalCount;
  }

  summary(): LatencySummary {
    // HDR percentiles report their bucket's upper edge, which may pass the exact maximum: clamp to it.
    const at = (p: number): number =>
      this.h.totalCount === 0 ? 0 : Math.min(this.h.getValueAtPercentile(p), this.h.maxValue) / 1000;
    return {
      count: this.h.totalCount,
      meanMs: this.h.totalCount === 0 ? 0 : this.h.mean / 1000,
      p50Ms: at(50),
      p90Ms: at(90),
      p99Ms: at(99),
      p999Ms: at(99.9),
      maxMs: this.h.totalCount === 0 ? 0 : this.h.maxValue / 1000,
    };
  }
}
