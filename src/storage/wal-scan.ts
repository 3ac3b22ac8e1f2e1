/**
 * Start-up scan of the segmented write-ahead log: names, record replay, and the torn-tail rules.
 *
 * Segments are named `wal-<seq, 10 digits>-<first index, 20 digits>.log`: sorting by name sorts by
 * sequence, and the second number is the first entry index the segment was started for.
 */
import { join } from 'node:path';
import type { HardState } from '../raft/types.js';
import { crc32c } from './crc32c.js';
import type { FileSystem } from './fs.js';
import {
  HEADER_SIZE,
  RecordType,
  decodeRecord,
  decodeSegment,
  readU32,
  type DecodeResult,
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
  /** Whatever follows `validLength` in the last segment is zeros (preallocated space), not a torn write. */
  readonly tailIsZero: boolean;
  readonly chain: number;
}

export type Logger = (message: string) => void;

function allZero(buf: Uint8Array, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Reads every segment in order and feeds the records to `visitor`. A segment's records end where only
 * zeros follow (preallocated space). A torn record at the very end of the last segment is reported (the
 * caller truncates it); any other damage throws WalCorruptionError. Returns null when there is no log.
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
  let tailIsZero = true;
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
    let zeroTail = false;
    while (off < buf.length) {
      const r = decodeRecord(buf, off, chain);
      if (r.kind !== 'record') {
        // Nothing but zeros from here: the preallocated rest of the segment (or, with a crash, space the
        // file system had extended but not yet filled). Not a record lost: the chain check of the next
        // segment, and the caller's acknowledgements, are what vouch for completeness.
        if (allZero(buf, off)) {
          zeroTail = true;
          break;
        }
        const torn = last ? tornRecord(buf, off, r) : null;
        if (torn !== null) {
          log(`wal: ${f.name}: torn record at offset ${off} (${torn}); truncating ${buf.length - off} bytes`);
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
    tailIsZero = zeroTail || off === buf.length;
  }
  if (segments.length === 0) return null;
  return { segments, validLength, fileLength, tailIsZero, chain };
}

/** The sector size torn writes are assumed to respect: a sector is either fully written or not at all. */
export const SECTOR_BYTES = 512;

/**
 * Whether the invalid record at `off`, the last thing in the file holding any non-zero byte, is a write
 * that a crash cut short, and why; null when it is damage instead.
 *
 * Cut short means: the file ends inside the record (an append that did not finish), or the record's
 * extent reaches whole sectors past the last non-zero byte of the file that read as zeros (an in-place
 * write into preallocated space of which the later sectors never reached the disk). A flipped bit in a
 * record that was written completely fits neither, so it is refused. (A record whose own last sector is
 * all zeros would be mistaken for a torn one; entry payloads are encoded commands, which have no such runs.)
 */
export function tornRecord(buf: Uint8Array, off: number, r: Exclude<DecodeResult, { kind: 'record' }>): string | null {
  if (r.kind === 'incomplete') return r.reason;
  let dataEnd = buf.length;
  while (dataEnd > off && buf[dataEnd - 1] === 0) dataEnd--;
  const headerOk = buf.length - off >= HEADER_SIZE && crc32c(buf, 0, off, off + 8) === readU32(buf, off + 8);
  const extentEnd = headerOk ? off + HEADER_SIZE + readU32(buf, off) : off + HEADER_SIZE;
  const firstUnwritten = Math.ceil(dataEnd / SECTOR_BYTES) * SECTOR_BYTES;
  if (firstUnwritten >= extentEnd) return null;
  return `${extentEnd - firstUnwritten} bytes of the record read as zeros: a write cut short`;
}
