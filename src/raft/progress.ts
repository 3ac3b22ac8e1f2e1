import type { Snapshot } from './types.js';

/** Bounded window of in-flight appends to one follower: by count and by bytes. */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.indexes.length - this.head;
  }

  add(lastIndex: number, size: number): void {
    this.indexes.push(lastIndex);
    this.sizes.push(size);
    this.bytes += size;
  }

  /** Frees every in-flight append whose last index is <= `index`. */
  freeLE(index: number): void {
    while (this.head < this.indexes.length && this.indexes[this.head] <= index) {
      this.bytes -= this.sizes[this.head];
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.indexes.length) {
      this.indexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Frees the oldest in-flight append (it was probably lost): lets one more append go out. */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.indexes[this.head]);
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * The leader's view of one follower. In `probe` it sends one append at a time until it finds the match
 * point; in `replicate` it streams appends optimistically within the in-flight window; in `snapshot`
 * it sends a snapshot in chunks and waits for the follower to catch up from it.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding; cleared by any response. */
  probeSent = false;
  /** The leader's tick when this follower last answered (any response). */
  lastHeard = 0;
  /** Commit index last sent to this follower. */
  sentCommit = 0;
  /** The send tick of the latest heartbeat this follower acknowledged (for the leader lease). */
  ackedTick = -1;
  // Snapshot transfer.
  pendingSnapshot = 0;
  snapshot: Snapshot | undefined = undefined;
  /** Bytes of the snapshot the follower has acknowledged, and the offset of the next chunk to send. */
  snapOffset = 0;
  snapSent = 0;
  snapStall = 0;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshot = undefined;
    this.snapOffset = 0;
    this.snapSent = 0;
    this.snapStall = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshot.metadata.index;
    this.snapshot = snapshot;
  }

  /** Records an acknowledgement up to `n`; returns whether the match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * Handles a rejected append at `rejected`, with the follower's hint. Returns false if the rejection is
   * stale (out of order), true if `next` was moved back.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  sentEntries(count: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next += count;
        this.inflights.add(this.next - 1, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }
}
