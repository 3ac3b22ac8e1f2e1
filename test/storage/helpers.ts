/** Shared helpers for the storage tests: state fingerprints and a Raft-like random workload. */
import type { Storage } from '../../src/raft/storage.js';
import type { Entry, HardState, NodeId, Snapshot } from '../../src/raft/types.js';
import { MemoryStorage } from '../../src/storage/memory.js';

export const PEERS: readonly NodeId[] = [1, 2, 3];

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Everything observable through the Storage interface, as a comparable string. */
export function fingerprint(s: Storage & { hardState(): HardState }): string {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const ents = last >= first ? s.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  const snap = s.snapshot();
  const init = s.initialState();
  return JSON.stringify({
    first,
    last,
    baseTerm: s.term(first - 1),
    hard: s.hardState(),
    peers: init.peers,
    snap: { ...snap.metadata, data: hex(snap.data) },
    ents: ents.map((e) => [e.index, e.term, e.type, hex(e.data)]),
  });
}

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Op =
  | { readonly kind: 'save'; readonly entries: Entry[]; readonly hardState?: HardState; readonly snapshot?: Snapshot }
  | { readonly kind: 'createSnapshot'; readonly index: number; readonly data: Uint8Array }
  | { readonly kind: 'compact'; readonly index: number };

/**
 * Generates plausible operations against the current model state: appends (sometimes overwriting an
 * uncommitted suffix), hard-state changes, local snapshots, compactions and received snapshots.
 */
export class Workload {
  private term = 1;
  private commit = 0;

  constructor(
    private readonly model: MemoryStorage,
    private readonly rand: () => number,
  ) {}

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  private bytes(max: number): Uint8Array {
    const b = new Uint8Array(this.int(0, max));
    for (let i = 0; i < b.length; i++) b[i] = this.int(0, 255);
    return b;
  }

  next(): Op {
    const m = this.model;
    const snapIndex = m.snapshot().metadata.index;
    const last = m.lastIndex();
    const r = this.rand();
    if (r < 0.55) {
      let start = last + 1;
      if (this.rand() < 0.2 && last > snapIndex) {
        start = this.int(Math.max(snapIndex + 1, this.commit + 1, last - 3), last + 1);
        this.term++;
      }
      const n = this.int(1, 4);
      const entries: Entry[] = [];
      for (let i = 0; i < n; i++) {
        const noop = this.rand() < 0.1;
        entries.push({
          index: start + i,
          term: this.term,
          type: noop ? 'noop' : 'normal',
          data: noop ? new Uint8Array(0) : this.bytes(48),
        });
      }
      const hs = this.rand() < 0.5 ? this.hard(start + n - 1) : undefined;
      return { kind: 'save', entries, ...(hs ? { hardState: hs } : {}) };
    }
    if (r < 0.75 && this.commit > snapIndex) {
      return { kind: 'createSnapshot', index: this.int(snapIndex + 1, this.commit), data: this.bytes(64) };
    }
    if (r < 0.9 && snapIndex >= m.firstIndex()) {
      return { kind: 'compact', index: this.int(m.firstIndex(), snapIndex) };
    }
    if (r < 0.96) return { kind: 'save', entries: [], hardState: this.hard(last) };
    // A snapshot from the leader, at or past our last index, possibly followed by entries.
    this.term++;
    const index = last + this.int(0, 5);
    this.commit = Math.max(this.commit, index);
    const snapshot: Snapshot = { metadata: { index, term: this.term, peers: [1, 2, 3, 4] }, data: this.bytes(64) };
    const entries: Entry[] = [];
    for (let i = 0; i < this.int(0, 2); i++)
      entries.push({ index: index + 1 + i, term: this.term, type: 'normal', data: this.bytes(16) });
    return { kind: 'save', snapshot, entries, hardState: { term: this.term, vote: 2, commit: this.commit } };
  }

  private hard(upTo: number): HardState {
    if (this.rand() < 0.3) this.term++;
    // Commit only what is in the log and never goes back (committed entries are not overwritten).
    this.commit = Math.max(this.commit, this.int(this.commit, Math.max(this.commit, upTo)));
    return { term: this.term, vote: this.int(0, 3), commit: this.commit };
  }
}

/** Applies an op to the model as a whole. */
export function applyToModel(m: MemoryStorage, op: Op): void {
  if (op.kind === 'save') m.saveSync(op);
  else if (op.kind === 'createSnapshot') m.createSnapshotSync(op.index, PEERS, op.data);
  else m.compactSync(op.index);
}

/**
 * Applies an op to the model one WAL record at a time and returns the fingerprint after each record:
 * what recovery may legitimately find if a crash cut the log inside this op.
 */
export function applyRecordwise(m: MemoryStorage, op: Op): string[] {
  const out: string[] = [];
  if (op.kind !== 'save') {
    applyToModel(m, op);
    return [fingerprint(m)];
  }
  if (op.snapshot && op.snapshot.metadata.index > m.snapshot().metadata.index) {
    m.applySnapshot(op.snapshot);
    out.push(fingerprint(m));
  }
  for (const e of op.entries) {
    const before = m.lastIndex();
    m.saveSync({ entries: [e] });
    if (e.index > m.firstIndex() - 1 || m.lastIndex() !== before) out.push(fingerprint(m));
  }
  if (op.hardState) {
    m.saveSync({ entries: [], hardState: op.hardState });
    out.push(fingerprint(m));
  }
  return out;
}
