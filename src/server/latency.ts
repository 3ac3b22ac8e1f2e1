/** Fixed-bucket latency histograms of the host and the HTTP layer (seconds). */
export const LATENCY_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 3];

/** Fixed-bucket latency counts (non-cumulative; the last slot is +Inf), cheap enough for every event. */
export class LatencyHistogram {
  readonly buckets: number[] = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;

  record(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    this.buckets[i]++;
    this.sum += seconds;
    this.count++;
  }
}
