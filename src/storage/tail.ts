import { CompactedError, UnavailableError, entrySize } from '../raft/storage.js';
import type { Entry } from '../raft/types.js';

/**
 * The uncompacted tail of the log, held in memory with exactly MemoryStorage's semantics (the property
 * tests check this). `ents[0]` is a dummy standing for the last compacted entry (index and term).
 */
export class LogTail {
  private ents: Entry[];

  constructor(index: number, term: number) {
    this.ents = [dummy(index, term)];
  }

  get offset(): number {
    return this.ents[0].index;
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

  /** Throws if appending `entries` (indexes consecutive from entries[0]) would leave a gap. */
  checkAppend(first: number): void {
    if (first > this.lastIndex() + 1) {
      throw new Error(`append would leave a gap: first ${first}, last ${this.lastIndex()}`);
    }
  }

  /** Entries of `entries` that are not compacted away (what `append` actually stores). */
  live(entries: readonly Entry[]): readonly Entry[] {
    const skip = Math.max(0, this.ents[0].index + 1 - entries[0].index);
    return skip === 0 ? entries : entries.slice(skip);
  }

  /** Appends after truncating any conflicting suffix; entries at or below the offset are ignored. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    const offset = this.ents[0].index;
    if (first + entries.length - 1 <= offset) return;
    this.checkAppend(first);
    const skip = Math.max(0, offset + 1 - first);
    this.ents.length = first + skip - offset;
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]);
  }

  /** Drops every entry after the offset. */
  dropAll(): void {
    this.ents.length = 1;
  }

  /** Replaces the whole log by a snapshot's point. */
  reset(index: number, term: number): void {
    this.ents = [dummy(index, term)];
  }

  /** Discards entries up to and including `index`, which must be in [offset, lastIndex]. */
  compact(index: number): void {
    const offset = this.ents[0].index;
    if (index <= offset) return;
    const e = this.ents[index - offset];
    if (!e) throw new UnavailableError(index, this.lastIndex());
    this.ents = [dummy(e.index, e.term), ...this.ents.slice(index - offset + 1)];
  }

  /** Replay of a compaction record: like `compact`, but also valid when the log starts past `index`'s term. */
  compactTo(index: number, term: number): void {
    const offset = this.ents[0].index;
    if (index < offset) return;
    if (index > this.lastIndex()) {
      this.reset(index, term);
      return;
    }
    this.ents = [dummy(index, term), ...this.ents.slice(index - offset + 1)];
  }
}

function dummy(index: number, term: number): Entry {
  return { index, term, type: 'noop', data: new Uint8Array(0) };
}
