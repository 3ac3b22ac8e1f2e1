/**
 * Durable Raft storage: a segmented write-ahead log plus snapshot files, with the uncompacted log tail
 * kept in memory so that the core's reads stay synchronous. The log is read only by `open`.
 *
 * `save`, `createSnapshot` and `compact` apply their change to memory at once (in call order, with exactly
 * MemoryStorage's semantics) and resolve when it is durable; concurrent calls share one fdatasync.
 */
import { UnavailableError } from '../raft/storage.js';
import { EMPTY_HARD_STATE, type Entry, type HardState, type NodeId, type Snapshot } from '../raft/types.js';
import { NodeFileSystem, type FileSystem } from './fs.js';
import {
  HARD_STATE_RECORD_SIZE,
  MARK_RECORD_SIZE,
  RecordType,
  decodeEntry,
  decodeHardState,
  decodeMark,
  entryRecordSize,
  type RecordTypeCode,
  type SegmentHeader,
} from './records.js';
import { LogTail } from './tail.js';
import type { RaftStorage, StorageUpdate } from './types.js';
import { Wal, scanWal, type LogPoint, type Logger, type WalStall, type WalStats } from './wal.js';
import { loadSnapshots, pruneSnapshots } from './recovery.js';
import { writeSnapshotFile } from './snapfile.js';

export interface DiskStorageOptions {
  /** File layer (default: the real file system). */
  readonly fs?: FileSystem;
  /** Segment size bound in bytes (default 64 MiB). */
  readonly segmentBytes?: number;
  /** Largest zero-filled extension of the active segment kept ahead of writes (default 16 MiB; 0: none). */
  readonly preallocateBytes?: number;
  /** Where recovery notes (torn tails, damaged snapshots) go; default stderr. */
  readonly log?: Logger;
}

export interface DiskStorageStats extends WalStats {
  /** Set while the disk is full and writes wait for room (see Wal). */
  readonly diskFull: WalStall | null;
  readonly segments: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
}

/**
 * Replays WAL records into the in-memory state.
 *
 * When older segments were deleted, replay starts from the oldest remaining segment's header, whose
 * last index L stands in for the compacted log (the segments were only deleted once the log was
 * compacted to L or beyond, and that compaction record follows). Entries at or below L that appear in
 * the replay are rewrites by a later leader: as on the live log, they truncate every entry after them.
 */
class Replay {
  tail: LogTail | null = null;
  /** Replay started from a segment header rather than from the beginning of the log. */
  synthetic = false;
  hard: HardState = EMPTY_HARD_STATE;
  snapIndex = 0;
  snapTerm = 0;

  segment(h: SegmentHeader, first: boolean): void {
    if (first || !this.tail) {
      this.tail = new LogTail(h.lastIndex, h.lastTerm);
      this.synthetic = h.seq > 1;
      this.hard = h.hardState;
      this.snapIndex = h.snapIndex;
      this.snapTerm = h.snapTerm;
      return;
    }
    const t = this.tail;
    const last = t.lastIndex();
    // Below a synthetic base the replayed log cannot know the live one's last index.
    const comparable = !this.synthetic || h.lastIndex > t.offset;
    if ((comparable && (h.lastIndex !== last || h.lastTerm !== t.term(last))) || h.snapIndex !== this.snapIndex) {
      throw new Error(
        `segment header (last ${h.lastIndex}/${h.lastTerm}, snapshot ${h.snapIndex}) disagrees with the replayed log (last ${last}/${t.term(last)}, snapshot ${this.snapIndex})`,
      );
    }
    if (h.hardState.term !== this.hard.term || h.hardState.vote !== this.hard.vote) {
      throw new Error('segment header hard state disagrees with the replayed log');
    }
  }

  record(type: RecordTypeCode, buf: Uint8Array, start: number, end: number): void {
    const t = this.tail as LogTail;
    switch (type) {
      case RecordType.entry: {
        const e = decodeEntry(buf, start, end);
        // The live log never logs compacted entries, so this is a rewrite below a synthetic base.
        if (e.index <= t.offset) t.dropAll();
        else t.append([e]);
        break;
      }
      case RecordType.hardState:
        this.hard = decodeHardState(buf, start);
        break;
      case RecordType.snapshot: {
        const m = decodeMark(buf, start);
        if (m.index > this.snapIndex) {
          t.reset(m.index, m.term);
          this.snapIndex = m.index;
          this.snapTerm = m.term;
        }
        break;
      }
      case RecordType.snapMark: {
        const m = decodeMark(buf, start);
        if (m.index > this.snapIndex) {
          this.snapIndex = m.index;
          this.snapTerm = m.term;
        }
        break;
      }
      case RecordType.compact: {
        const m = decodeMark(buf, start);
        if (m.index > this.snapIndex) throw new Error(`compaction to ${m.index} beyond snapshot ${this.snapIndex}`);
        t.compactTo(m.index, m.term);
        break;
      }
      default:
        throw new Error(`unexpected record type ${type}`);
    }
  }
}

export class DiskStorage implements RaftStorage {
  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly peers: readonly NodeId[],
    private readonly wal: Wal,
    private readonly tail: LogTail,
    private hard: HardState,
    private snap: Snapshot,
    /** The latest snapshot the log refers to (differs from `snap` only after falling back from a damaged file). */
    private walSnap: { index: number; term: number },
  ) {}

  /** Opens (creating if needed) the storage in `dir`, replaying its log. Throws on damaged data. */
  static async open(dir: string, peers: readonly NodeId[], options: DiskStorageOptions = {}): Promise<DiskStorage> {
    const fs = options.fs ?? new NodeFileSystem();
    const log = options.log ?? ((m: string) => process.stderr.write(`[storage] ${m}\n`));
    const walOptions = {
      segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
      preallocateBytes: options.preallocateBytes ?? 16 * 1024 * 1024,
      log,
    };
    await fs.mkdirp(dir);
    const replay = new Replay();
    const scan = await scanWal(fs, dir, replay, log);
    if (!scan || !replay.tail) {
      const names = await fs.readdir(dir);
      if (names.some((n) => n.startsWith('snap-') && n.endsWith('.snap'))) {
        throw new Error(`${dir} holds snapshots but no write-ahead log: refusing to start from an empty log`);
      }
      const tail = new LogTail(0, 0);
      const empty: Snapshot = { metadata: { index: 0, term: 0, peers }, data: new Uint8Array(0) };
      const point: LogPoint = {
        lastIndex: 0,
        lastTerm: 0,
        offset: 0,
        snapIndex: 0,
        snapTerm: 0,
        hardState: EMPTY_HARD_STATE,
      };
      const wal = await Wal.create(fs, dir, walOptions, point);
      return new DiskStorage(fs, dir, peers, wal, tail, EMPTY_HARD_STATE, empty, { index: 0, term: 0 });
    }
    const tail = replay.tail;
    const walSnap = { index: replay.snapIndex, term: replay.snapTerm };
    const snap = await loadSnapshots(fs, dir, walSnap, tail, peers, log);
    const last = tail.lastIndex();
    const point: LogPoint = {
      lastIndex: last,
      lastTerm: tail.term(last),
      offset: tail.offset,
      snapIndex: walSnap.index,
      snapTerm: walSnap.term,
      hardState: replay.hard,
    };
    const wal = await Wal.resume(fs, dir, walOptions, scan, point);
    await wal.dropCovered(); // in case a crash came between a compaction and the deletions
    return new DiskStorage(fs, dir, peers, wal, tail, replay.hard, snap, walSnap);
  }

  // --- Storage (synchronous reads of the in-memory state) ---

  initialState(): { hardState: HardState; peers: readonly NodeId[] } {
    return { hardState: this.hard, peers: this.snap.metadata.index > 0 ? this.snap.metadata.peers : this.peers };
  }

  hardState(): HardState {
    return this.hard;
  }

  firstIndex(): number {
    return this.tail.firstIndex();
  }

  lastIndex(): number {
    return this.tail.lastIndex();
  }

  term(index: number): number {
    return this.tail.term(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.tail.entries(lo, hi, maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  stats(): DiskStorageStats {
    return {
      ...this.wal.stats,
      diskFull: this.wal.stalled,
      segments: this.wal.segmentNames.length,
      firstIndex: this.tail.firstIndex(),
      lastIndex: this.tail.lastIndex(),
      snapshotIndex: this.snap.metadata.index,
    };
  }

  /** Names of the live log segments, oldest first. */
  segmentNames(): readonly string[] {
    return this.wal.segmentNames;
  }

  /** Bytes of records in the newest segment, which may be longer on disk (preallocated zeros). */
  activeSegmentBytes(): number {
    return this.wal.activeBytes;
  }

  private point(): LogPoint {
    const last = this.tail.lastIndex();
    return {
      lastIndex: last,
      lastTerm: this.tail.term(last),
      offset: this.tail.offset,
      snapIndex: this.walSnap.index,
      snapTerm: this.walSnap.term,
      hardState: this.hard,
    };
  }

  // --- RaftStorage (writes) ---

  save(update: StorageUpdate): Promise<void> {
    try {
      return this.saveUnchecked(update);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private saveUnchecked(update: StorageUpdate): Promise<void> {
    this.wal.assertUsable();
    const snap = update.snapshot && update.snapshot.metadata.index > this.snap.metadata.index ? update.snapshot : null;
    let entries: readonly Entry[] = update.entries;
    if (entries.length > 0) {
      const offset = snap ? snap.metadata.index : this.tail.offset;
      const last = snap ? snap.metadata.index : this.tail.lastIndex();
      const first = entries[0].index;
      if (first + entries.length - 1 <= offset) entries = [];
      else if (first > last + 1) throw new Error(`append would leave a gap: first ${first}, last ${last}`);
    }
    const hs = update.hardState;
    if (!snap && entries.length === 0 && !hs) return Promise.resolve();
    // Validated: change memory (in call order), then queue the durable records in the same order.
    let snapDone: Promise<void> | null = null;
    if (snap) {
      snapDone = this.wal.task(() => this.writeSnapshot(snap));
      this.snap = snap;
      this.walSnap = { index: snap.metadata.index, term: snap.metadata.term };
      this.tail.reset(snap.metadata.index, snap.metadata.term);
    }
    if (entries.length > 0) {
      entries = this.tail.live(entries);
      this.tail.append(entries);
    }
    if (hs) this.hard = hs;
    let size = (snap ? MARK_RECORD_SIZE : 0) + (hs ? HARD_STATE_RECORD_SIZE : 0);
    for (const e of entries) size += entryRecordSize(e);
    const count = (snap ? 1 : 0) + entries.length + (hs ? 1 : 0);
    const durable = this.wal.append(
      (enc) => {
        if (snap) enc.mark(RecordType.snapshot, snap.metadata.index, snap.metadata.term);
        for (const e of entries) enc.entry(e);
        if (hs) enc.hardState(hs);
      },
      count,
      this.point(),
      size,
    );
    if (!snapDone) return durable;
    void snapDone.catch(() => undefined); // its failure fails the WAL, hence `durable`, too
    const prune = this.wal.task(() => this.prune());
    const drop = this.wal.dropCovered();
    return Promise.all([snapDone, durable, prune, drop]).then(() => undefined);
  }

  async createSnapshot(index: number, peers: readonly NodeId[], data: Uint8Array): Promise<Snapshot> {
    this.wal.assertUsable();
    if (index <= this.snap.metadata.index) return this.snap;
    if (index > this.tail.lastIndex()) throw new UnavailableError(index, this.tail.lastIndex());
    const snap: Snapshot = { metadata: { index, term: this.tail.term(index), peers: [...peers] }, data };
    const written = this.wal.task(() => this.writeSnapshot(snap));
    this.snap = snap;
    this.walSnap = { index, term: snap.metadata.term };
    const marked = this.wal.append(
      (enc) => enc.mark(RecordType.snapMark, index, snap.metadata.term),
      1,
      this.point(),
      MARK_RECORD_SIZE,
    );
    void written.catch(() => undefined);
    const prune = this.wal.task(() => this.prune());
    await Promise.all([written, marked, prune]);
    return snap;
  }

  async compact(index: number): Promise<void> {
    this.wal.assertUsable();
    if (index <= this.tail.offset) return;
    if (index > this.snap.metadata.index)
      throw new Error(`compact ${index} beyond snapshot ${this.snap.metadata.index}`);
    const term = this.tail.term(index);
    this.tail.compact(index);
    const durable = this.wal.append(
      (enc) => enc.mark(RecordType.compact, index, term),
      1,
      this.point(),
      MARK_RECORD_SIZE,
    );
    await Promise.all([durable, this.wal.dropCovered()]);
  }

  private async writeSnapshot(snap: Snapshot): Promise<void> {
    await writeSnapshotFile(this.fs, this.dir, snap);
    this.wal.stats.dirSyncs++;
  }

  private prune(): Promise<void> {
    return pruneSnapshots(this.fs, this.dir, this.walSnap.index);
  }

  async close(): Promise<void> {
    await this.wal.close();
  }
}
