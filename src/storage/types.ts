import type { Storage } from '../raft/storage.js';
import type { Entry, HardState, NodeId, Snapshot } from '../raft/types.js';

/** What one Ready asks the host to make durable. */
export interface StorageUpdate {
  readonly hardState?: HardState;
  /** Appended after truncating any conflicting suffix (entries[0].index may be <= lastIndex()). */
  readonly entries: readonly Entry[];
  /** Replaces the whole log: after it, firstIndex() = snapshot.index + 1. */
  readonly snapshot?: Snapshot;
}

/**
 * The host's side of Raft storage: the core reads through `Storage`, the host writes through this.
 */
export interface RaftStorage extends Storage {
  /**
   * Applies the update to what the `Storage` methods return at once (in call order), and resolves once it
   * is durable; updates become durable in call order. (A leader's host advances the core before the write
   * is durable: the core then reads the entries back from storage.)
   */
  save(update: StorageUpdate): Promise<void>;
  /**
   * Records a snapshot of the state machine as of `index` (which must be applied, hence committed) and
   * makes it durable. Does not compact the log by itself.
   */
  createSnapshot(index: number, peers: readonly NodeId[], data: Uint8Array): Promise<Snapshot>;
  /** Discards log entries up to and including `index` (which must be covered by a snapshot). */
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}
