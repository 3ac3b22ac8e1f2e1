import { invariant } from './assert.js';
import { CompactedError, UnavailableError, entrySize, type Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

/**
 * Entries (and possibly a snapshot) not yet handed to stable storage. `entries[i]` has index `offset + i`.
 * The unstable part always extends the stable one: `offset` may be below the stable last index when a
 * conflicting suffix was replaced, in which case the stable entries from `offset` on are superseded.
 */
class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot && this.snapshot.metadata.index === i ? this.snapshot.metadata.term : undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    // Only if the entry is still the one that was persisted (it may have been replaced meanwhile).
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces everything unstable (and supersedes stable entries from `after` on).
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }
}

/** The node's view of its log: stable storage plus the unstable tail. */
export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index handed to the state machine (and acknowledged by advance). */
  applied: number;

  constructor(
    readonly storage: Storage,
    private readonly maxCommittedBytes: number,
    private readonly bugs: { keepConflicts: boolean; applyUncommitted: boolean } = {
      keepConflicts: false,
      applyUncommitted: false,
    },
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Index of the last entry that is stable (persisted and not superseded). */
  stableLastIndex(): number {
    // While a received snapshot is pending, nothing stable extends it yet.
    if (this.unstable.snapshot) return 0;
    return this.unstable.offset - 1;
  }

  /** The term of entry `i`, or undefined if it is compacted away or beyond the log. */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    invariant(t !== undefined, 'term of the last index must be known');
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** A candidate's log (last index/term) is at least as up to date as ours. */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /**
   * Appends `ents` following (index, logTerm) if our log matches there, truncating any conflicting suffix.
   * Returns the index of the last new entry, or undefined if the log does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(ci > this.committed, () => `entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      if (this.bugs.keepConflicts) {
        // Planted bug: keep our conflicting entries and only add what lies beyond our log.
        const beyond = ents.filter((e) => e.index > this.lastIndex());
        if (beyond.length > 0 && beyond[0].index === this.lastIndex() + 1) this.append(beyond);
      } else {
        this.append(ents.slice(ci - (index + 1)));
      }
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    invariant(ents[0].index - 1 >= this.committed, () => `append at ${ents[0].index} below commit ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** The index of the first entry that is new or conflicts with ours, or 0 if all are already present. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: the fast-backtracking hint.
   * Stops at the first index whose term is unknown (compacted), returning it with term 0.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = index; i >= 0; i--) {
      const t = this.term(i);
      if (t === undefined) return [i, 0];
      if (t <= term) return [i, t];
    }
    return [0, 0];
  }

  commitTo(toCommit: number): void {
    if (toCommit > this.committed) {
      invariant(toCommit <= this.lastIndex(), () => `commit ${toCommit} beyond last index ${this.lastIndex()}`);
      this.committed = toCommit;
    }
  }

  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(
      this.bugs.applyUncommitted || i <= this.committed,
      () => `applied ${i} beyond committed ${this.committed}`,
    );
    if (i > this.applied) this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  hasNextCommittedEnts(): boolean {
    return !this.hasPendingSnapshot() && this.applyLimit() > this.applied;
  }

  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    return this.slice(this.applied + 1, this.applyLimit() + 1, this.maxCommittedBytes);
  }

  private applyLimit(): number {
    // Planted bug: hand out everything in the log, committed or not.
    return this.bugs.applyUncommitted ? this.lastIndex() : this.committed;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Entries from `i` on, up to maxBytes; undefined if `i` is compacted. */
  entries(i: number, maxBytes: number): Entry[] | undefined {
    if (i > this.lastIndex()) return [];
    if (i < this.firstIndex()) return undefined;
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** Entries in [lo, hi) limited to maxBytes (at least one). lo must not be compacted. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    invariant(lo >= this.firstIndex() && hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) out of bounds`);
    if (lo >= hi) return [];
    const out: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      const stable = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      for (const e of stable) out.push(e);
      if (stable.length < Math.min(hi, off) - lo) return out; // size limit reached
    }
    if (hi > off) {
      let size = 0;
      for (const e of out) size += entrySize(e);
      for (let i = Math.max(lo, off); i < hi; i++) {
        const e = this.unstable.entries[i - off];
        size += entrySize(e);
        if (out.length > 0 && size > maxBytes) break;
        out.push(e);
      }
    }
    return out;
  }

  /** Installs a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
