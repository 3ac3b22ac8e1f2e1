/**
 * Staleness accounting. Every write the generator makes is acknowledged with an *order*: a tuple the store
 * itself uses to order the writes of one key (raft: the revision; quorum: the per-key version; eventual: the
 * hybrid-clock timestamp; causal: the generator's own per-key sequence, carried in the value). A read is
 * stale if the order it returned is below the newest order of that key acknowledged before the read was
 * issued; it is that many versions behind as there are acknowledged writes between the two.
 */
export type Order = readonly number[];

export function compareOrder(a: Order, b: Order): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export interface StalenessSummary {
  /** Reads that were checked (successful reads of keys with at least one acknowledged write). */
  readonly reads: number;
  readonly stale: number;
  /** stale / reads, 0 when there were no reads. */
  readonly fraction: number;
  /** Over the stale reads. */
  readonly meanVersionsBehind: number;
  readonly maxVersionsBehind: number;
}

export class StalenessTracker {
  /** Per key: acknowledged write orders, sorted ascending. */
  private readonly acked = new Map<string, Order[]>();
  private reads = 0;
  private stale = 0;
  private behindSum = 0;
  private behindMax = 0;

  /** A write of `key` was acknowledged with `order`. */
  ack(key: string, order: Order): void {
    let list = this.acked.get(key);
    if (list === undefined) {
      list = [];
      this.acked.set(key, list);
    }
    // Acks come nearly in order: insert from the back.
    let i = list.length;
    while (i > 0 && compareOrder(list[i - 1], order) > 0) i--;
    list.splice(i, 0, order);
  }

  /** What a read issued now must at least see: the newest acknowledged order of `key` (undefined: none yet). */
  snapshot(key: string): Order | undefined {
    const list = this.acked.get(key);
    return list === undefined || list.length === 0 ? undefined : list[list.length - 1];
  }

  /**
   * A read issued when `snapshot(key)` was `required` returned `got` (undefined: key not found).
   * Returns the number of versions it was behind (0: fresh).
   */
  observe(key: string, required: Order | undefined, got: Order | undefined): number {
    if (required === undefined) return 0;
    this.reads++;
    if (got !== undefined && compareOrder(got, required) >= 0) return 0;
    const list = this.acked.get(key) ?? [];
    // Acknowledged writes newer than what was returned and not newer than what was required.
    let behind = 0;
    for (let i = list.length - 1; i >= 0; i--) {
      const o = list[i];
      if (compareOrder(o, required) > 0) continue;
      if (got !== undefined && compareOrder(o, got) <= 0) break;
      behind++;
    }
    behind = Math.max(1, behind);
    this.stale++;
    this.behindSum += behind;
    this.behindMax = Math.max(this.behindMax, behind);
    return behind;
  }

  summary(): StalenessSummary {
    return {
      reads: this.reads,
      stale: this.stale,
      fraction: this.reads === 0 ? 0 : this.stale / this.reads,
      meanVersionsBehind: this.stale === 0 ? 0 : this.behindSum / this.stale,
      maxVersionsBehind: this.behindMax,
    };
  }
}
