/** Simulated network delay and small timing helpers shared by the quorum and eventual modes. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A one-way delay drawn uniformly from [min, max] milliseconds (fractions allowed). Node timers have a
 * resolution of about 1 ms, so a sub-millisecond draw waits for the next timer turn (about 1 ms); a zero
 * range (max = 0) does not wait at all.
 */
export class SimulatedDelay {
  constructor(
    readonly minMs: number,
    readonly maxMs: number,
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
    return sleep(this.draw());
  }
}
