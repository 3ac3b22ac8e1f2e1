/**
 * The replicated state of one causal replica, free of I/O: the key-value store, the delivery clock and the
 * buffer of writes received ahead of their dependencies.
 *
 * Every write carries the vector clock of the replica that accepted it, taken right after counting the write
 * (so `clock[origin]` is the write's sequence number at its origin and the rest is everything that replica had
 * applied). A replica applies writes of each origin in sequence order and only after their dependencies:
 * the classic causal-broadcast rule `clock[origin] == vc[origin] + 1` and `clock[k] <= vc[k]` for the others.
 * Its `vc` therefore says exactly which writes it holds: the first `vc[o]` writes of every origin `o`.
 *
 * Concurrent writes to one key resolve by last-writer-wins on (sum of the clock, origin address): the sum
 * strictly grows along causality, so a write always beats the writes it depends on, and the address breaks ties
 * the same way everywhere. Deletes are kept as tombstones so they win and lose like any other write.
 */
import { clockSum, copyClock, leq, merge, type VectorClock } from './clock.js';

export interface Write {
  readonly key: string;
  /** The JSON value written; absent for a delete. */
  readonly value?: unknown;
  readonly deleted: boolean;
  /** Address of the replica that accepted the write. */
  readonly origin: string;
  /** The origin's clock right after counting this write. */
  readonly clock: VectorClock;
}

/** Total, deterministic order used to pick the winner among writes to one key. */
export function compareWrites(a: Write, b: Write): number {
  const sa = clockSum(a.clock);
  const sb = clockSum(b.clock);
  if (sa !== sb) return sa - sb;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  const sqa = a.clock[a.origin] ?? 0;
  const sqb = b.clock[b.origin] ?? 0;
  if (sqa !== sqb) return sqa - sqb;
  // Same origin and sequence: only possible if a replica lost its memory and reused a sequence number.
  // Keep replicas convergent anyway by ordering on the content.
  const ja = a.deleted ? '' : JSON.stringify(a.value);
  const jb = b.deleted ? '' : JSON.stringify(b.value);
  return ja < jb ? -1 : ja > jb ? 1 : 0;
}

export interface StateOptions {
  /** Most writes kept waiting for their dependencies; beyond it the oldest are dropped (anti-entropy refills). */
  readonly maxPending?: number;
}

export class CausalState {
  private vc: VectorClock = {};
  private readonly store = new Map<string, Write>();
  private readonly pending = new Map<string, Write>();
  private readonly maxPending: number;
  /** Times a key's entry changed (local writes, deliveries, merges); for status and metrics. */
  storeUpdates = 0;

  constructor(
    readonly self: string,
    opts: StateOptions = {},
  ) {
    this.maxPending = opts.maxPending ?? 10_000;
  }

  /** A copy of the delivery clock. */
  clock(): VectorClock {
    return copyClock(this.vc);
  }

  /** True when this replica holds every write in the causal past `deps`. */
  satisfies(deps: Readonly<VectorClock>): boolean {
    return leq(deps, this.vc);
  }

  /** The live entry of a key (undefined if absent or deleted). */
  get(key: string): Write | undefined {
    const w = this.store.get(key);
    return w === undefined || w.deleted ? undefined : w;
  }

  /** The latest write to a key, a tombstone included. */
  latest(key: string): Write | undefined {
    return this.store.get(key);
  }

  liveKeyCount(): number {
    let n = 0;
    for (const w of this.store.values()) if (!w.deleted) n++;
    return n;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  /** Accepts a client write here: counts it in this replica's clock and applies it. */
  localWrite(key: string, value: unknown, deleted: boolean): Write {
    this.vc[this.self] = (this.vc[this.self] ?? 0) + 1;
    const w: Write = deleted
      ? { key, deleted: true, origin: this.self, clock: copyClock(this.vc) }
      : { key, value, deleted: false, origin: this.self, clock: copyClock(this.vc) };
    this.install(w);
    return w;
  }

  /**
   * A write broadcast by a peer: applied at once if its dependencies are here, buffered otherwise, ignored if
   * already held. Returns how many writes were applied (it may release buffered ones).
   */
  receive(w: Write): number {
    const seq = w.clock[w.origin] ?? 0;
    if (seq <= (this.vc[w.origin] ?? 0)) return 0;
    const id = `${w.origin}#${seq}`;
    if (!this.pending.has(id)) {
      this.pending.set(id, w);
      if (this.pending.size > this.maxPending) {
        const oldest = this.pending.keys().next();
        if (!oldest.done) this.pending.delete(oldest.value);
      }
    }
    return this.drain();
  }

  /**
   * The entries a peer whose clock is `peerVc` lacks: those whose winning write it has not applied. Together
   * with this replica's clock they bring the peer's state up to (at least) this one's.
   */
  entriesSince(peerVc: Readonly<VectorClock>): Write[] {
    const out: Write[] = [];
    for (const w of this.store.values()) {
      if ((w.clock[w.origin] ?? 0) > (peerVc[w.origin] ?? 0)) out.push(w);
    }
    return out;
  }

  /**
   * Merges a peer's state: its entries (as returned by `entriesSince`) and its clock. Both states hold
   * causally closed sets of writes, so their union is causally closed too, and per-key last-writer-wins
   * gives what applying every write one by one would. Returns how many entries changed.
   */
  mergeState(peerVc: Readonly<VectorClock>, entries: readonly Write[]): number {
    let changed = 0;
    for (const w of entries) if (this.install(w)) changed++;
    this.vc = merge(this.vc, peerVc);
    for (const [id, w] of this.pending) {
      if ((w.clock[w.origin] ?? 0) <= (this.vc[w.origin] ?? 0)) this.pending.delete(id);
    }
    return changed + this.drain();
  }

  private deliverable(w: Write): boolean {
    for (const [k, v] of Object.entries(w.clock)) {
      const have = this.vc[k] ?? 0;
      if (k === w.origin ? v !== have + 1 : v > have) return false;
    }
    return true;
  }

  private drain(): number {
    let applied = 0;
    let progress = true;
    while (progress && this.pending.size > 0) {
      progress = false;
      for (const [id, w] of this.pending) {
        if ((w.clock[w.origin] ?? 0) <= (this.vc[w.origin] ?? 0)) {
          this.pending.delete(id);
        } else if (this.deliverable(w)) {
          this.pending.delete(id);
          this.vc[w.origin] = w.clock[w.origin] ?? 0;
          this.install(w);
          applied++;
          progress = true;
        }
      }
    }
    return applied;
  }

  /** Stores `w` if it beats the key's current write; true if it did. */
  private install(w: Write): boolean {
    const cur = this.store.get(w.key);
    if (cur !== undefined && compareWrites(w, cur) <= 0) return false;
    this.store.set(w.key, w);
    this.storeUpdates++;
    return true;
  }
}

/** Validates a write received from a peer (internal API); returns undefined when malformed. */
export function parseWrite(raw: unknown): Write | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  if (typeof o.key !== 'string' || typeof o.origin !== 'string' || typeof o.deleted !== 'boolean') return undefined;
  if (o.clock === null || typeof o.clock !== 'object' || Array.isArray(o.clock)) return undefined;
  const clock: VectorClock = {};
  for (const [k, v] of Object.entries(o.clock as Record<string, unknown>)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return undefined;
    clock[k] = v;
  }
  if ((clock[o.origin] ?? 0) < 1) return undefined;
  if (o.deleted) return { key: o.key, deleted: true, origin: o.origin, clock };
  if (!('value' in o)) return undefined;
  return { key: o.key, value: o.value, deleted: false, origin: o.origin, clock };
}
