import type { Entry, HardState, NodeId, Snapshot } from './types.js';

/** Thrown when the requested index has been compacted into a snapshot. */
export class CompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`index ${index} is compacted (first available index ${firstIndex})`);
    this.name = 'CompactedError';
  }
}

/** Thrown when the requested index is beyond the last stored entry. */
export class UnavailableError extends Error {
  constructor(index: number, lastIndex: number) {
    super(`index ${index} is not available (last index ${lastIndex})`);
    this.name = 'UnavailableError';
  }
}

/**
 * The stable storage the core reads from (the durable state the host wrote after earlier Ready's).
 * It is read-only from the core's point of view and every call is synchronous: implementations keep the
 * uncompacted log tail in memory (the write-ahead log only needs to be read at start-up).
 *
 * Indexes: entries [firstIndex(), lastIndex()] are available; `term(firstIndex() - 1)` is the term of the
 * snapshot's last entry; an empty log has firstIndex() === lastIndex() + 1.
 */
export interface Storage {
  initialState(): { hardState: HardState; peers: readonly NodeId[] };
  /** Entries in [lo, hi), stopping before the total data size exceeds maxBytes (but at least one entry). */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

/** Size of an entry as counted for flow control and message limits. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 24;
}
