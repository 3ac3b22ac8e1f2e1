import { CompactedError, UnavailableError, entrySize, type Storage } from '../raft/storage.js';
import { EMPTY_HARD_STATE, type Entry, type HardState, type NodeId, type Snapshot } from '../raft/types.js';
import type { RaftStorage, StorageUpdate } from './types.js';

/**
 * Raft storage held in memory: the simulator's "disk" (it survives a simulated crash because the simulator
 * keeps the object) and a reference model for the durable implementation.
 *
 * `ents[0]` is a dummy entry standing for the snapshot's last entry (index and term).
 */
export class MemoryStorage implements Storage, RaftStorage {
  private hard: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot;
  private ents: Entry[];

  constructor(private readonly peers: readonly NodeId[]) {
    this.snap = { metadata: { index: 0, term: 0, peers }, data: new Uint8Array(0) };
    this.ents = [{ index: 0, term: 0, type: 'noop', data: new Uint8Array(0) }];
  }

  /** An independent copy (entries are immutable, so they are shared). */
  clone(): MemoryStorage {
    const c = new MemoryStorage(this.peers);
    c.hard = this.hard;
    c.snap = this.snap;
    c.ents = this.ents.slice();
    return c;
  }

  initialState(): { hardState: HardState; peers: readonly NodeId[] } {
    return { hardState: this.hard, peers: this.snap.metadata.index > 0 ? this.snap.metadata.peers : this.peers };
  }

  hardState(): HardState {
    return this.hard;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  term(index: number): number {
    const offset = this.ents[0].index;
    if (index < offset) throw new CompactedError(index, offset + 1);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return this.ents[index - offset].term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset];
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Synchronous form of `save`, used by the simulator. */
  saveSync(update: StorageUpdate): void {
    if (update.snapshot) this.applySnapshot(update.snapshot);
    if (update.entries.length > 0) this.append(update.entries);
    if (update.hardState) this.hard = update.hardState;
  }

  save(update: StorageUpdate): Promise<void> {
    this.saveSync(update);
    return Promise.resolve();
  }

  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    this.snap = snap;
    this.ents = [{ index: snap.metadata.index, term: snap.metadata.term, type: 'noop', data: new Uint8Array(0) }];
  }

  append(entries: readonly Entry[]): void {
    const first = entries[0].index;
    const offset = this.ents[0].index;
    if (first + entries.length - 1 <= offset) return; // all compacted already
    if (first > this.lastIndex() + 1) {
      throw new Error(`append would leave a gap: first ${first}, last ${this.lastIndex()}`);
    }
    const skip = Math.max(0, offset + 1 - first);
    this.ents.length = first + skip - offset; // truncate the conflicting suffix
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]);
  }

  createSnapshotSync(index: number, peers: readonly NodeId[], data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) return this.snap;
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.snap = { metadata: { index, term: this.term(index), peers }, data };
    return this.snap;
  }

  createSnapshot(index: number, peers: readonly NodeId[], data: Uint8Array): Promise<Snapshot> {
    return Promise.resolve(this.createSnapshotSync(index, peers, data));
  }

  compactSync(index: number): void {
    const offset = this.ents[0].index;
    if (index <= offset) return;
    if (index > this.snap.metadata.index)
      throw new Error(`compact ${index} beyond snapshot ${this.snap.metadata.index}`);
    const e = this.ents[index - offset];
    this.ents = [
      { index: e.index, term: e.term, type: 'noop', data: new Uint8Array(0) },
      ...this.ents.slice(index - offset + 1),
    ];
  }

  compact(index: number): Promise<void> {
    this.compactSync(index);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
