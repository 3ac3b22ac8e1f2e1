import type { SnapshotChunk, SnapshotMetadata, Snapshot } from './types.js';

/** What the follower answers to one snapshot chunk. */
export type ChunkOutcome =
  /** The chunk was taken; ask for the bytes from `next` on. */
  | { readonly kind: 'ack'; readonly next: number }
  /** Out of order or unknown transfer: ask the leader to resume from `next` (`restart` if it must rewind). */
  | { readonly kind: 'resume'; readonly next: number; readonly restart: boolean }
  /** The last chunk arrived: here is the whole snapshot. */
  | { readonly kind: 'complete'; readonly snapshot: Snapshot };

/**
 * Assembles a snapshot sent in chunks, in order. Chunks of another snapshot, or out of order, are refused
 * with the offset the receiver wants next, so the leader can resume from there.
 */
export class SnapshotReceiver {
  private meta: SnapshotMetadata | null = null;
  private total = 0;
  private parts: Uint8Array[] = [];
  private received = 0;

  reset(): void {
    this.meta = null;
    this.parts = [];
    this.received = 0;
  }

  accept(c: SnapshotChunk): ChunkOutcome {
    const meta = c.metadata;
    if (!this.meta || this.meta.index !== meta.index || this.meta.term !== meta.term) {
      if (c.offset !== 0) return { kind: 'resume', next: 0, restart: true };
      this.meta = meta;
      this.total = c.totalSize;
      this.parts = [];
      this.received = 0;
    }
    if (c.offset !== this.received) {
      return { kind: 'resume', next: this.received, restart: c.offset > this.received };
    }
    this.parts.push(c.data);
    this.received += c.data.byteLength;
    if (this.received < this.total) return { kind: 'ack', next: this.received };
    const data = new Uint8Array(this.total);
    let off = 0;
    for (const p of this.parts) {
      data.set(p, off);
      off += p.byteLength;
    }
    this.reset();
    return { kind: 'complete', snapshot: { metadata: meta, data } };
  }
}
