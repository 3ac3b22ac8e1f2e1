/**
 * The group-commit writer of the segmented write-ahead log (the start-up scan is in wal-scan.ts).
 *
 * Segment files are opened with O_DSYNC where the file layer offers it, so one write is one durable
 * batch (no separate fdatasync round trip), and kept zero-filled ahead of the write position: writing
 * over allocated, initialised blocks changes no file metadata, so making a batch durable needs no journal
 * commit of the file system (on ext4 this halves the cost and latency of a durable write).
 */
import { join } from 'node:path';
import type { FileSystem, StorageFile } from './fs.js';
import { RecordEncoder, SEGMENT_RECORD_SIZE } from './records.js';
import { segmentFileName, type LogPoint, type SegmentMeta, type WalScan } from './wal-scan.js';

export {
  WalCorruptionError,
  scanWal,
  segmentFileName,
  type LogPoint,
  type Logger,
  type SegmentMeta,
  type WalScan,
  type WalVisitor,
} from './wal-scan.js';

export interface WalStats {
  /** Durable batch writes and segment creations (each an fdatasync, or one O_DSYNC write). */
  fsyncs: number;
  /** Directory fsyncs (segment creation and deletion, snapshots). */
  dirSyncs: number;
  /** Write batches (each one durable write). */
  batches: number;
  records: number;
  bytesWritten: number;
  segmentsCreated: number;
  segmentsDeleted: number;
  /** Zero-filled extensions of the active segment, and their bytes. */
  preallocations: number;
  preallocatedBytes: number;
  /** Writes that found the disk full (ENOSPC, EDQUOT) and were retried later. */
  noSpaceRetries: number;
}

/** While the disk is full: since when (ms since the epoch) and the error of the last attempt. */
export interface WalStall {
  readonly since: number;
  readonly error: string;
}

/** A write that failed because the disk (or the quota) is full: retried once there is room again. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Retries of a write that found the disk full: from 50 ms, doubling, at most this long apart. */
const MAX_RETRY_MS = 1000;

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
  /**
   * Largest zero-filled extension kept ahead of the write position (0: none, the file grows with every
   * batch). Extensions start at 64 KiB and double with the segment, so small logs stay small.
   */
  readonly preallocateBytes: number;
  /** Where a failed preallocation is reported. */
  readonly log?: (message: string) => void;
}

const MIN_PREALLOCATION = 64 * 1024;

/**
 * The append side. Records are encoded synchronously by `append` (so the order of calls is the order in
 * the log) and queued; one flusher writes everything queued so far with a single write and a single
 * fdatasync, resolves those appends, and starts again with what arrived meanwhile (group commit).
 * Tasks (snapshot files) run in queue order between batches. A full disk (ENOSPC, EDQUOT) stalls the
 * queue: the failed batch or task stays at its front and is tried again, with backoff, at the same file
 * offset (so whatever part of it did reach the file is overwritten); nothing behind it is written and no
 * append resolves meanwhile, so the node acknowledges nothing it has not made durable, and it goes on by
 * itself once there is room. Any other I/O error is fatal: the WAL refuses all further work, since memory
 * and disk may then disagree.
 *
 * Preallocation runs beside the flusher: when less than half an extension is left ahead of the write
 * position, zeros are written (durably) after the zero-filled end. A batch never writes into a region
 * being zero-filled: one that would cross the zero-filled end while an extension runs waits for it.
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
    preallocations: 0,
    preallocatedBytes: 0,
    noSpaceRetries: 0,
  };
  /** Set while the disk is full: the front of the queue waits for room, nothing after it is written. */
  private stall: WalStall | null = null;
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** End of the zero-filled (or written) part of the active segment: writes below it change no metadata. */
  private zeroedEnd: number;
  /** The zero-filling in progress on the active segment, if any. */
  private extending: Promise<void> | null = null;
  /** Set once zero-filling failed (say, the disk is full): the log then grows with its writes. */
  private preallocationOff = false;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly options: WalOptions,
    private readonly segments: SegmentMeta[],
    private active: StorageFile,
    private activeSize: number,
    fileSize: number,
    chain: number,
    point: LogPoint,
  ) {
    this.chain = chain;
    this.durableChain = chain;
    this.durablePoint = point;
    this.zeroedEnd = fileSize;
    this.maybeExtend();
  }

  /** Creates the first segment of a new log. */
  static async create(fs: FileSystem, dir: string, options: WalOptions, point: LogPoint): Promise<Wal> {
    const { file, meta, size } = await Wal.newSegment(fs, dir, 1, 0, point);
    const wal = new Wal(fs, dir, options, [meta], file, size, size, 0, point);
    wal.stats.fsyncs++;
    wal.stats.dirSyncs++;
    wal.stats.segmentsCreated++;
    return wal;
  }

  /** Continues a scanned log, cutting a torn tail off the last segment first (zeros after it stay). */
  static async resume(fs: FileSystem, dir: string, options: WalOptions, scan: WalScan, point: LogPoint): Promise<Wal> {
    const last = scan.segments[scan.segments.length - 1];
    const file = await fs.openWrite(join(dir, last.name), { dsync: true });
    let fileSize = scan.fileLength;
    if (!scan.tailIsZero) {
      await file.truncate(scan.validLength);
      await file.datasync();
      fileSize = scan.validLength;
    }
    return new Wal(fs, dir, options, scan.segments, file, scan.validLength, fileSize, scan.chain, point);
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
    const file = await fs.create(join(dir, name), { dsync: true });
    await file.write(enc.bytes(), 0);
    if (!file.syncsWrites) await file.datasync();
    await fs.syncDir(dir);
    return { file, meta: { seq, name, startLastIndex: p.lastIndex }, size: enc.size };
  }

  get failed(): Error | null {
    return this.failure;
  }

  /** Bytes of records in the active segment (its preallocated zeros not counted). */
  get activeBytes(): number {
    return this.activeSize;
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
    if (!this.running && this.retryTimer === null) void this.flush();
  }

  /** Set while a write waits for room on a full disk. */
  get stalled(): WalStall | null {
    return this.stall;
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
        if (this.extending && this.activeSize + bytes > this.zeroedEnd) await this.extending;
        await this.active.write(buf, this.activeSize);
        if (!this.active.syncsWrites) await this.active.datasync();
        this.activeSize += bytes;
        if (this.activeSize > this.zeroedEnd) this.zeroedEnd = this.activeSize;
        this.maybeExtend();
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
      if (this.stall !== null) {
        this.options.log?.(`wal: the disk has room again; writes resumed after ${Date.now() - this.stall.since} ms`);
        this.stall = null;
        this.retryMs = 0;
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      if (isNoSpace(err) && !this.closed) {
        this.waitForRoom(batch, err);
        return;
      }
      this.failure = err;
      for (const it of batch) it.reject(err);
      while (this.head < this.queue.length) this.take().reject(err);
    } finally {
      this.running = false;
      for (const f of this.idle.splice(0)) f();
    }
  }

  /** Puts `batch` back at the front of the queue and tries again later (the disk is full). */
  private waitForRoom(batch: Item[], err: Error): void {
    this.queue = [...batch, ...this.queue.slice(this.head)];
    this.head = 0;
    this.stats.noSpaceRetries++;
    if (this.stall === null) {
      this.stall = { since: Date.now(), error: err.message };
      this.options.log?.(`wal: the disk is full (${err.message}); writes wait and are retried until there is room`);
    } else this.stall = { since: this.stall.since, error: err.message };
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs === 0 ? 50 : this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick();
    }, this.retryMs);
  }

  /** Starts zero-filling ahead of the write position when less than half an extension is left. */
  private maybeExtend(): void {
    const max = this.options.preallocateBytes;
    if (max <= 0 || this.extending || this.preallocationOff || this.closed) return;
    const want = Math.min(max, Math.max(MIN_PREALLOCATION, this.activeSize));
    if (this.zeroedEnd - this.activeSize >= want / 2) return;
    const from = this.zeroedEnd;
    const len = Math.min(want, this.options.segmentBytes - from);
    if (len <= 0) return;
    const file = this.active;
    const run = async (): Promise<void> => {
      await file.write(new Uint8Array(len), from);
      if (!file.syncsWrites) await file.datasync();
    };
    this.extending = run().then(
      () => {
        this.extending = null;
        if (this.active !== file) return;
        this.zeroedEnd = Math.max(this.zeroedEnd, from + len);
        this.stats.preallocations++;
        this.stats.preallocatedBytes += len;
      },
      (e: unknown) => {
        // Not fatal: the zeros are only an optimisation, and a write that truly fails fails the log.
        this.extending = null;
        this.preallocationOff = true;
        this.options.log?.(`wal: preallocation stopped: ${e instanceof Error ? e.message : String(e)}`);
      },
    );
  }

  private async roll(): Promise<void> {
    if (this.extending) await this.extending;
    const seq = this.segments[this.segments.length - 1].seq + 1;
    let created: Awaited<ReturnType<typeof Wal.newSegment>>;
    try {
      created = await Wal.newSegment(this.fs, this.dir, seq, this.durableChain, this.durablePoint);
    } catch (e) {
      // A segment that could not be created whole is removed, so that the retry can create it again.
      if (isNoSpace(e))
        await this.fs
          .unlink(join(this.dir, segmentFileName(seq, this.durablePoint.lastIndex + 1)))
          .catch(() => undefined);
      throw e;
    }
    const { file, meta, size } = created;
    const old = this.active;
    this.active = file;
    this.activeSize = size;
    this.zeroedEnd = size;
    this.segments.push(meta);
    this.stats.fsyncs++;
    this.stats.dirSyncs++;
    this.stats.segmentsCreated++;
    await old.close();
    this.maybeExtend();
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
    if (this.retryTimer !== null) {
      // Closed while waiting for room: what was not written is not durable, and is refused.
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      const err = new Error(`storage closed while the disk was full (${this.stall?.error ?? 'no space'})`);
      while (this.head < this.queue.length) this.take().reject(err);
    }
    if (this.extending) await this.extending;
    await this.active.close();
  }
}
