/**
 * How late the event loop runs a timer: the pauses every request on this node waits through (a snapshot
 * serialised on the main thread, a long apply batch, a GC pause). Sampled by a 20 ms interval timer into a
 * fixed-bucket histogram, cumulative since start, exported on /metrics as
 * `quorumkv_event_loop_delay_seconds` (the bench reads it before and after a run).
 */
import { LatencyHistogram } from './latency.js';

export class LoopDelay {
  readonly histogram = new LatencyHistogram();
  /** The longest delay seen, in seconds. */
  max = 0;
  private expected: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly intervalMs = 20) {
    this.expected = performance.now() + intervalMs;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const now = performance.now();
    const late = Math.max(0, now - this.expected) / 1000;
    this.histogram.record(late);
    if (late > this.max) this.max = late;
    this.expected = now + this.intervalMs;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
