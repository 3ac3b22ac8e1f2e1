/** Simulated network delay and small timing helpers shared by the quorum and eventual modes. */
import { preciseScheduler, type PreciseScheduler } from './precise-timer.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Whether simulated delays use plain `setTimeout` (about 1 ms resolution, no polling) instead of the precise
 * scheduler: `QKV_COARSE_DELAY=1`, for comparisons and for machines where the polling costs too much.
 */
export const coarseDelayRequested = (env: NodeJS.ProcessEnv = process.env): boolean =>
  env.QKV_COARSE_DELAY === '1' || env.QKV_COARSE_DELAY === 'true';

/**
 * A one-way delay drawn uniformly from [min, max] milliseconds (fractions allowed), waited with
 * microsecond precision on the precise scheduler (./precise-timer.ts: a clock-ordered heap polled with
 * setImmediate only while a wait is due within ~1.5 ms, a plain setTimeout before that), or with
 * `setTimeout` when `coarse` (default: `QKV_COARSE_DELAY=1` in the environment). A zero range (max = 0) does
 * not wait at all.
 */
export class SimulatedDelay {
  constructor(
    readonly minMs: number,
    readonly maxMs: number,
    private readonly scheduler: PreciseScheduler = preciseScheduler,
    readonly coarse: boolean = coarseDelayRequested(),
  ) {
    if (!Number.isFinite(minMs) || !Number.isFinite(maxMs) || minMs < 0 || maxMs < minMs) {
      throw new RangeError(`invalid delay range [${minMs}, ${maxMs}]`);
    }
  }

  draw(): number {
    return this.minMs + Math.random() * (this.maxMs - this.minMs);
  }

  wait(): Promise<void> {
    if (this.maxMs === 0) return Promise.resolve();
    return this.coarse ? sleep(this.draw()) : this.scheduler.wait(this.draw());
  }
}
