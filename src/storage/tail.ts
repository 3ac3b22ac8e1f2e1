import { CompactedError, UnavailableError } from '../raft/storage.js';
import type { Entry, EntryType } from '../raft/types.js';

/** Bytes per arena chunk; an entry larger than a quarter of this gets a chunk of its own. */
const CHUNK_BYTES = 1 << 20;
const INITIAL_CAPACITY = 1024;
const EMPTY = new Uint8Array(0);

/**
 * The uncompacted tail of the log, held in memory with exactly MemoryStorage's semantics (the disk tests
 * check DiskStorage against MemoryStorage through every operation).
 *
 * Compact on purpose: terms, types and data positions live in typed arrays and the entries' bytes are
 * copied into 1 MiB arena chunks, so the thousands of entries kept until the next compaction are not
 * thousands of live JS objects (which every young-generation GC would copy, and which would keep alive
 * whatever larger buffers the entries' bytes were views of: received frames, replayed segments).
 * `entries` builds Entry objects on demand, their data being views of the arena.
 *
 * Entry `i` (index `base + 1 + i`) sits in chunk number `chunkOf[i]` at `offs[i]`, `lens[i]` bytes. Chunk
 * numbers never decrease along the log (an entry with a chunk of its own closes the current chunk), so
 * a compaction frees every chunk below the first kept entry's.
 */
export class LogTail {
  /** Index and term of the last compacted entry (the dummy entry of MemoryStorage). */
  private base: number;
  private baseTerm: number;
  /** Entries after `base`. */
  private n = 0;
  private terms = new Float64Array(INITIAL_CAPACITY);
  private types = new Uint8Array(INITIAL_CAPACITY);
  private chunkOf = new Int32Array(INITIAL_CAPACITY);
  private offs = new Int32Array(INITIAL_CAPACITY);
  private lens = new Int32Array(INITIAL_CAPACITY);
  /** Chunks still referenced; `chunks[k]` has number `firstChunk + k`. */
  private chunks: Uint8Array[] = [];
  private firstChunk = 0;
  /** Free space in the last chunk (0 when it is closed). */
  private room = 0;

  constructor(index: number, term: number) {
    this.base = index;
    this.baseTerm = term;
  }

  get offset(): number {
    return this.base;
  }

  firstIndex(): number {
    return this.base + 1;
  }

  lastIndex(): number {
    return this.base + this.n;
  }

  /** Bytes of arena chunks held (entries' data plus the free and truncated space of their chunks). */
  get arenaBytes(): number {
    let b = 0;
    for (const c of this.chunks) b += c.length;
    return b;
  }

  term(index: number): number {
    if (index < this.base) throw new CompactedError(index, this.base + 1);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return index === this.base ? this.baseTerm : this.terms[index - this.base - 1];
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.base) throw new CompactedError(lo, this.base + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let size = 0;
    for (let index = lo; index < hi; index++) {
      const i = index - this.base - 1;
      const len = this.lens[i];
      size += len + 24; // entrySize
      if (out.length > 0 && size > maxBytes) break;
      const data = len === 0 ? EMPTY : this.chunk(this.chunkOf[i]).subarray(this.offs[i], this.offs[i] + len);
      out.push({ index, term: this.terms[i], type: this.types[i] === 1 ? 'noop' : 'normal', data });
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
    const skip = Math.max(0, this.base + 1 - entries[0].index);
    return skip === 0 ? entries : entries.slice(skip);
  }

  /** Appends after truncating any conflicting suffix; entries at or below the offset are ignored. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first + entries.length - 1 <= this.base) return;
    this.checkAppend(first);
    const skip = Math.max(0, this.base + 1 - first);
    this.n = first + skip - this.base - 1;
    this.reserve(this.n + entries.length - skip);
    for (let k = skip; k < entries.length; k++) this.push(entries[k]);
  }

  /** Drops every entry after the offset. */
  dropAll(): void {
    this.n = 0;
    this.freeChunks();
  }

  /** Replaces the whole log by a snapshot's point. */
  reset(index: number, term: number): void {
    this.base = index;
    this.baseTerm = term;
    this.dropAll();
  }

  /** Discards entries up to and including `index`, which must be in [offset, lastIndex]. */
  compact(index: number): void {
    if (index <= this.base) return;
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.dropThrough(index, this.terms[index - this.base - 1]);
  }

  /** Replay of a compaction record: like `compact`, but also valid when the log starts past `index`'s term. */
  compactTo(index: number, term: number): void {
    if (index < this.base) return;
    if (index > this.lastIndex()) {
      this.reset(index, term);
      return;
    }
    this.dropThrough(index, term);
  }

  // ---------------------------------------------------------------------------------------------------

  private chunk(num: number): Uint8Array {
    return this.chunks[num - this.firstChunk];
  }

  private dropThrough(index: number, term: number): void {
    const k = index - this.base;
    if (k > 0) {
      const rest = this.n - k;
      this.terms.copyWithin(0, k, this.n);
      this.types.copyWithin(0, k, this.n);
      this.chunkOf.copyWithin(0, k, this.n);
      this.offs.copyWithin(0, k, this.n);
      this.lens.copyWithin(0, k, this.n);
      this.n = rest;
    }
    this.base = index;
    this.baseTerm = term;
    if (this.n === 0) this.freeChunks();
    else if (this.chunkOf[0] > this.firstChunk) {
      this.chunks = this.chunks.slice(this.chunkOf[0] - this.firstChunk);
      this.firstChunk = this.chunkOf[0];
    }
  }

  /** Frees every chunk (no entry is left): the next entry starts a fresh one. */
  private freeChunks(): void {
    this.firstChunk += this.chunks.length;
    this.chunks = [];
    this.room = 0;
  }

  private reserve(count: number): void {
    if (count <= this.terms.length) return;
    let cap = this.terms.length * 2;
    while (cap < count) cap *= 2;
    const grow = <T extends Float64Array | Uint8Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const a = make(cap);
      a.set(old.subarray(0, this.n));
      return a;
    };
    this.terms = grow(this.terms, (c) => new Float64Array(c));
    this.types = grow(this.types, (c) => new Uint8Array(c));
    this.chunkOf = grow(this.chunkOf, (c) => new Int32Array(c));
    this.offs = grow(this.offs, (c) => new Int32Array(c));
    this.lens = grow(this.lens, (c) => new Int32Array(c));
  }

  private push(e: Entry): void {
    const i = this.n++;
    this.terms[i] = e.term;
    this.types[i] = typeCode(e.type);
    const len = e.data.byteLength;
    this.lens[i] = len;
    if (len === 0) {
      // No bytes: any chunk number that keeps the order will do.
      this.chunkOf[i] = this.firstChunk + Math.max(0, this.chunks.length - 1);
      this.offs[i] = 0;
      return;
    }
    if (len > CHUNK_BYTES / 4) {
      // A chunk of its own, which also closes the current one (chunk numbers must not decrease).
      this.chunks.push(new Uint8Array(len));
      this.room = 0;
    } else if (len > this.room) {
      this.chunks.push(new Uint8Array(CHUNK_BYTES));
      this.room = CHUNK_BYTES;
    }
    const chunk = this.chunks[this.chunks.length - 1];
    const off = chunk.length - (len > CHUNK_BYTES / 4 ? len : this.room);
    chunk.set(e.data, off);
    if (len <= CHUNK_BYTES / 4) this.room -= len;
    this.chunkOf[i] = this.firstChunk + this.chunks.length - 1;
    this.offs[i] = off;
  }
}

function typeCode(t: EntryType): number {
  return t === 'noop' ? 1 : 0;
}
