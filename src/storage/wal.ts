/**
 * The segmented write-ahead log: start-up scan (with torn-tail repair) and the group-commit writer.
 *
 * Segments are named `wal-<seq, 10 digits>-<first index, 20 digits>.log`: sorting by name sorts by
 * sequence, and the second number is the first entry index the segment was started for.
 */
import { join } from 'node:path';
import type { HardState } from '../raft/types.js';
import type { FileSystem, StorageFile } from './fs.js';
import {
  RecordEncoder,
  RecordType,
  SEGMENT_RECORD_SIZE,
  decodeRecord,
  decodeSegment,
  type RecordTypeCode,
  type SegmentHeader,
} from './records.js';

const SEGMENT_RE = /^wal-(\d{10})-(\d{20})\.log$/;

export function segmentFileName(seq: number, firstIndex: number): string {
  return `wal-${String(seq).padStart(10, '0')}-${String(firstIndex).padStart(20, '0')}.log`;
}

/** A checksum mismatch or inconsistency in the log that recovery must not paper over. */
export class WalCorruptionError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`write-ahead log ${file} is damaged at offset ${offset}: ${reason}`);
    this.name = 'WalCorruptionError';
  }
}

/** The state of the log as of some point in the record stream (used for segment headers and compaction). */
export interface LogPoint {
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Last compacted index (firstIndex - 1). */
  readonly offset: number;
  readonly snapIndex: number;
  readonly snapTerm: number;
  readonly hardState: HardState;
}

export interface SegmentMeta {
  readonly seq: number;
  readonly name: string;
  /** Last log index when the segment was started. */
  readonly startLastIndex: number;
}

export interface WalVisitor {
  /** The first (oldest) segment's header, or a later one to check against the replayed state. */
  segment(header: SegmentHeader, first: boolean): void;
  record(type: RecordTypeCode, buf: Uint8Array, start: number, end: number): void;
}

export interface WalScan {
  readonly segments: SegmentMeta[];
  /** Valid length of the last segment, its size on disk and the chain CRC after its last record. */
  readonly validLength: number;
  readonly fileLength: number;
  readonly chain: number;
}

export type Logger = (message: string) => void;

function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Reads every segment in order and feeds the records to `visitor`. A torn record at the very end of the
 * last segment is reported (the caller truncates it); any other damage throws WalCorruptionError.
 * Returns null when there is no log at all.
 */
export async function scanWal(fs: FileSystem, dir: string, visitor: WalVisitor, log: Logger): Promise<WalScan | null> {
  const files = (await fs.readdir(dir))
    .map((name) => ({ name, m: SEGMENT_RE.exec(name) }))
    .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null)
    .map((f) => ({ name: f.name, seq: Number(f.m[1]), firstIndex: Number(f.m[2]) }))
    .sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < files.length; i++) {
    if (files[i].seq !== files[i - 1].seq + 1) {
      throw new WalCorruptionError(files[i].name, 0, `segment ${files[i - 1].seq + 1} is missing`);
    }
  }
  const segments: SegmentMeta[] = [];
  let chain = 0;
  let validLength = 0;
  let fileLength = 0;
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    const last = i === files.length - 1;
    const buf = await fs.readFile(join(dir, f.name));
    const head = buf.length > 0 ? decodeRecord(buf, 0, 0) : ({ kind: 'incomplete', reason: 'empty file' } as const);
    if (head.kind !== 'record' || head.type !== RecordType.segment) {
      // A crash while the segment was being created: it never held a record. (Only possible for the
      // newest segment, and not once it is the only one left unless it is the very first.)
      if (last && (i > 0 || f.seq === 1) && (head.kind === 'incomplete' || allZero(buf, 0))) {
        log(`wal: ${f.name}: incomplete segment header (a crash while creating it); removing the file`);
        await fs.unlink(join(dir, f.name));
        await fs.syncDir(dir);
        break;
      }
      const reason = head.kind === 'record' ? 'first record is not a segment header' : head.reason;
      throw new WalCorruptionError(f.name, 0, reason);
    }
    const header = decodeSegment(buf, head.start);
    if (!header) throw new WalCorruptionError(f.name, 0, 'bad segment magic or version');
    if (header.seq !== f.seq || header.lastIndex + 1 !== f.firstIndex) {
      throw new WalCorruptionError(
        f.name,
        0,
        `header (seq ${header.seq}, last index ${header.lastIndex}) does not match the name`,
      );
    }
    if (i > 0 && header.prevCrc !== chain) {
      throw new WalCorruptionError(f.name, 0, 'checksum chain broken: the previous segment lost records');
    }
    try {
      visitor.segment(header, i === 0);
    } catch (e) {
      throw new WalCorruptionError(f.name, 0, (e as Error).message);
    }
    chain = header.prevCrc;
    let off = head.end;
    while (off < buf.length) {
      const r = decodeRecord(buf, off, chain);
      if (r.kind !== 'record') {
        if (last && (r.kind === 'incomplete' || allZero(buf, off))) {
          log(`wal: ${f.name}: torn record at offset ${off} (${r.reason}); truncating ${buf.length - off} bytes`);
          break;
        }
        throw new WalCorruptionError(f.name, off, r.reason);
      }
      if (r.type === RecordType.segment) throw new WalCorruptionError(f.name, off, 'segment header in mid-segment');
      try {
        visitor.record(r.type, buf, r.start, r.end);
      } catch (e) {
        throw new WalCorruptionError(f.name, off, (e as Error).message);
      }
      chain = r.crc;
      off = r.end;
    }
    segments.push({ seq: f.seq, name: f.name, startLastIndex: header.lastIndex });
    validLength = off;
    fileLength = buf.length;
  }
  if (segments.length === 0) return null;
  return { segments, validLength, fileLength, chain };
}

export interface WalStats {
  /** fdatasync calls on log segments (one per batch, plus one per new segment). */
  fsyncs: number;
  /** Directory fsyncs (segment creation and deletion, snapshots). */
  dirSyncs: number;
  /** Write batches (each one write + one fdatasync). */
  batches: number;
  records: number;
  bytesWritten: number;
  segmentsCreated: number;
  segmentsDeleted: number;
}

interface RecordsItem {
  readonly kind: 'records';
  readonly buf: Buffer;
  readonly records: number;
  readonly chain: number;
  readonly point: LogPoint;
  resolve(): void;
  reject(e: Error): void;
}

interface TaskItem {
  readonly kind: 'task';
  readonly run: () => Promise<void>;
  resolve(): void;
  reject(e: Error): void;
}

type Item = RecordsItem | TaskItem;

export interface WalOptions {
  /** Segments are rolled before they would exceed this size (unless a single batch is larger). */
  readonly segmentBytes: number;
}

/**
 * The append side. Records are encoded synchronously by `append` (so the order of calls is the order in
 * the log) and queued; one flusher writes everything queued so far with a single write and a single
 * fdatasync, resolves those appends, and starts again with what arrived meanwhile (group commit).
 * Tasks (snapshot files) run in queue order between batches. Any I/O error is fatal: the WAL refuses all
 * further work, since memory and disk may then disagree.
 */
export class Wal {
  private queue: Item[] = [];
  private head = 0;
  private running = false;
  private failure: Error | null = null;
  private closed = false;
  private idle: Array<() => void> = [];
  /** Chain CRC after the last encoded record. */
  private chain: number;
  /** Chain CRC and log state after the last durable record. */
  private durableChain: number;
  private durablePoint: LogPoint;
  readonly stats: WalStats = {
    fsyncs: 0,
    dirSyncs: 0,
    batches: 0,
    records: 0,
    bytesWritten: 0,
    segmentsCreated: 0,
    segmentsDeleted: 0,
  };

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly options: WalOptions,
    private readonly segments: SegmentMeta[],
    private active: StorageFile,
    private activeSize: number,
    chain: number,
    point: LogPoint,
  ) {
    this.chain = chain;
    this.durableChain = chain;
    this.durablePoint = point;
  }

  /** Creates the first segment of a new log. */
  static async create(fs: FileSystem, dir: string, options: WalOptions, point: LogPoint): Promise<Wal> {
    const { file, meta, size } = await Wal.newSegment(fs, dir, 1, 0, point);
    const wal = new Wal(fs, dir, options, [meta], file, size, 0, point);
    wal.stats.fsyncs++;
    wal.stats.dirSyncs++;
    wal.stats.segmentsCreated++;
    return wal;
  }

  /** Continues a scanned log, cutting a torn tail off the last segment first. */
  static async resume(fs: FileSystem, dir: string, options: WalOptions, scan: WalScan, point: LogPoint): Promise<Wal> {
    const last = scan.segments[scan.segments.length - 1];
    const file = await fs.openWrite(join(dir, last.name));
    if (scan.fileLength !== scan.validLength) {
      await file.truncate(scan.validLength);
      await file.datasync();
    }
    return new Wal(fs, dir, options, scan.segments, file, scan.validLength, scan.chain, point);
  }

  private static async newSegment(
    fs: FileSystem,
    dir: string,
    seq: number,
    prevCrc: number,
    p: LogPoint,
  ): Promise<{ file: StorageFile; meta: SegmentMeta; size: number }> {
    const name = segmentFileName(seq, p.lastIndex + 1);
    const enc = new RecordEncoder(0, SEGMENT_RECORD_SIZE);
    enc.segment({
      seq,
      prevCrc,
      lastIndex: p.lastIndex,
      lastTerm: p.lastTerm,
      snapIndex: p.snapIndex,
      snapTerm: p.snapTerm,
      hardState: p.hardState,
    });
    const file = await fs.create(join(dir, name));
    await file.write(enc.bytes(), 0);
    await file.datasync();
    await fs.syncDir(dir);
    return { file, meta: { seq, name, startLastIndex: p.lastIndex }, size: enc.size };
  }

  get failed(): Error | null {
    return this.failure;
  }

  get segmentNames(): readonly string[] {
    return this.segments.map((s) => s.name);
  }

  /** Throws if the log has failed or is closed. */
  assertUsable(): void {
    if (this.failure) throw new Error(`storage has failed: ${this.failure.message}`);
    if (this.closed) throw new Error('storage is closed');
  }

  /**
   * Encodes records with `encode` and queues them; resolves once they are durable. `point` is the log
   * state right after these records.
   */
  append(encode: (enc: RecordEncoder) => void, records: number, point: LogPoint, sizeHint = 4096): Promise<void> {
    this.assertUsable();
    const enc = new RecordEncoder(this.chain, sizeHint);
    encode(enc);
    this.chain = enc.chain;
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'records', buf: enc.bytes(), records, chain: enc.chain, point, resolve, reject });
      this.kick();
    });
  }

  /** Runs `run` in queue order: after every record queued before it is durable, before any queued after. */
  task(run: () => Promise<void>): Promise<void> {
    this.assertUsable();
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'task', run, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (!this.running) void this.flush();
  }

  /** Takes the next queued item (the queue is consumed from `head` to avoid O(n) shifts). */
  private take(): Item {
    const it = this.queue[this.head];
    this.queue[this.head++] = undefined as unknown as Item;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return it;
  }

  private async flush(): Promise<void> {
    this.running = true;
    let batch: Item[] = [];
    try {
      while (this.head < this.queue.length) {
        const first = this.queue[this.head];
        if (first.kind === 'task') {
          batch = [this.take()];
          await first.run();
          first.resolve();
          batch = [];
          continue;
        }
        if (this.activeSize > SEGMENT_RECORD_SIZE && this.activeSize + first.buf.length > this.options.segmentBytes) {
          await this.roll();
        }
        // Everything queued up to the next task (or the segment bound) goes into one write + fdatasync.
        const records: RecordsItem[] = [];
        let bytes = 0;
        while (this.head < this.queue.length) {
          const it = this.queue[this.head];
          if (it.kind !== 'records') break;
          if (records.length > 0 && this.activeSize + bytes + it.buf.length > this.options.segmentBytes) break;
          records.push(this.take() as RecordsItem);
          bytes += it.buf.length;
        }
        batch = records;
        const buf =
          records.length === 1
            ? records[0].buf
            : Buffer.concat(
                records.map((r) => r.buf),
                bytes,
              );
        await this.active.write(buf, this.activeSize);
        await this.active.datasync();
        this.activeSize += bytes;
        const s = this.stats;
        s.fsyncs++;
        s.batches++;
        s.bytesWritten += bytes;
        const lastItem = records[records.length - 1];
        this.durableChain = lastItem.chain;
        this.durablePoint = lastItem.point;
        for (const r of records) {
          s.records += r.records;
          r.resolve();
        }
        batch = [];
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.failure = err;
      for (const it of batch) it.reject(err);
      while (this.head < this.queue.length) this.take().reject(err);
    } finally {
      this.running = false;
      for (const f of this.idle.splice(0)) f();
    }
  }

  private async roll(): Promise<void> {
    const seq = this.segments[this.segments.length - 1].seq + 1;
    const { file, meta, size } = await Wal.newSegment(this.fs, this.dir, seq, this.durableChain, this.durablePoint);
    const old = this.active;
    this.active = file;
    this.activeSize = size;
    this.segments.push(meta);
    this.stats.fsyncs++;
    this.stats.dirSyncs++;
    this.stats.segmentsCreated++;
    await old.close();
  }

  /**
   * Queues the deletion of the oldest segments whose successors start at or below the durable compacted
   * index: replay can then start from the successor's header, every entry it needs being in that segment
   * or later ones. Resolves when done (after everything queued before it is durable).
   */
  dropCovered(): Promise<void> {
    return this.task(async () => {
      const compacted = this.durablePoint.offset;
      let dropped = 0;
      while (this.segments.length >= 2 && this.segments[1].startLastIndex <= compacted) {
        await this.fs.unlink(join(this.dir, this.segments[0].name));
        this.segments.shift();
        dropped++;
      }
      if (dropped > 0) {
        await this.fs.syncDir(this.dir);
        this.stats.dirSyncs++;
        this.stats.segmentsDeleted += dropped;
      }
    });
  }

  /** Waits for queued work, then closes the active segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.running) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.closed = true;
    await this.active.close();
  }
}
