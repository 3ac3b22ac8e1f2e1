/**
 * Binary framing of write-ahead-log records.
 *
 * Every record is a 16-byte header followed by its payload (all integers little-endian):
 *
 *   0  u32  payload length
 *   4  u8   record type, then 3 reserved bytes that must be zero
 *   8  u32  header check: CRC-32C of bytes 0..8 (a damaged length is never mistaken for a torn write)
 *  12  u32  record CRC: CRC-32C of bytes 0..8 and the payload, seeded with the previous record's CRC
 *  16       payload
 *
 * The record CRCs form a chain through the whole log: a record is valid only in its place. Each segment
 * starts with a `segment` record whose own CRC is seeded with 0 and which carries the chain value the
 * segment continues from (`prevCrc`), plus the state of the log at the point the segment was started, so
 * a segment can be replayed without its predecessors once they have been compacted away.
 */
import type { Entry, EntryType, HardState } from '../raft/types.js';
import { crc32c } from './crc32c.js';

export const HEADER_SIZE = 16;
export const MAX_RECORD_PAYLOAD = 0x7fff_ffff;

export const RecordType = {
  segment: 1,
  entry: 2,
  hardState: 3,
  /** A snapshot received from the leader replaced the log: payload index, term. */
  snapshot: 4,
  /** A local snapshot was made durable (the log is unchanged): payload index, term. */
  snapMark: 5,
  /** The log was compacted up to index (whose term is given). */
  compact: 6,
} as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const SEGMENT_MAGIC = 0x57564b51; // "QKVW"
const WAL_VERSION = 1;
const SEGMENT_PAYLOAD = 4 + 4 + 8 + 4 + 4 + 8 * 7;

/** The log state a segment starts from. */
export interface SegmentHeader {
  readonly seq: number;
  /** Last chain CRC of the previous segment. */
  readonly prevCrc: number;
  /** Last index of the log (and its term) when the segment was started: later entries are in this segment. */
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapIndex: number;
  readonly snapTerm: number;
  readonly hardState: HardState;
}

const TWO_32 = 0x1_0000_0000;

export function writeU64(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v >>> 0, off);
  buf.writeUInt32LE(Math.floor(v / TWO_32), off + 4);
}

export function readU64(buf: Uint8Array, off: number): number {
  const lo = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24);
  const hi = buf[off + 4] | (buf[off + 5] << 8) | (buf[off + 6] << 16) | (buf[off + 7] << 24);
  return (hi >>> 0) * TWO_32 + (lo >>> 0);
}

export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)) >>> 0;
}

export function entryRecordSize(e: Entry): number {
  return HEADER_SIZE + 17 + e.data.byteLength;
}
export const HARD_STATE_RECORD_SIZE = HEADER_SIZE + 24;
export const MARK_RECORD_SIZE = HEADER_SIZE + 16;
export const SEGMENT_RECORD_SIZE = HEADER_SIZE + SEGMENT_PAYLOAD;

/** Encodes a run of records into one buffer, continuing the CRC chain from `chain`. */
export class RecordEncoder {
  private buf: Buffer;
  private len = 0;

  constructor(
    public chain: number,
    capacity = 4096,
  ) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get size(): number {
    return this.len;
  }

  private begin(payloadLen: number): number {
    const need = this.len + HEADER_SIZE + payloadLen;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    return this.len + HEADER_SIZE;
  }

  private end(type: RecordTypeCode, payloadLen: number, seed: number): number {
    const b = this.buf;
    const o = this.len;
    b.writeUInt32LE(payloadLen, o);
    b.writeUInt32LE(type, o + 4); // type byte + three zero bytes
    b.writeUInt32LE(crc32c(b, 0, o, o + 8), o + 8);
    let crc = crc32c(b, seed, o, o + 8);
    crc = crc32c(b, crc, o + HEADER_SIZE, o + HEADER_SIZE + payloadLen);
    b.writeUInt32LE(crc, o + 12);
    this.len = o + HEADER_SIZE + payloadLen;
    return crc;
  }

  entry(e: Entry): void {
    const n = 17 + e.data.byteLength;
    const p = this.begin(n);
    writeU64(this.buf, p, e.index);
    writeU64(this.buf, p + 8, e.term);
    this.buf[p + 16] = e.type === 'noop' ? 1 : 0;
    this.buf.set(e.data, p + 17);
    this.chain = this.end(RecordType.entry, n, this.chain);
  }

  hardState(h: HardState): void {
    const p = this.begin(24);
    writeU64(this.buf, p, h.term);
    writeU64(this.buf, p + 8, h.vote);
    writeU64(this.buf, p + 16, h.commit);
    this.chain = this.end(RecordType.hardState, 24, this.chain);
  }

  mark(
    type: typeof RecordType.snapshot | typeof RecordType.snapMark | typeof RecordType.compact,
    index: number,
    term: number,
  ): void {
    const p = this.begin(16);
    writeU64(this.buf, p, index);
    writeU64(this.buf, p + 8, term);
    this.chain = this.end(type, 16, this.chain);
  }

  /** The segment record: not chained itself (seed 0); the chain continues from `h.prevCrc`. */
  segment(h: SegmentHeader): void {
    const p = this.begin(SEGMENT_PAYLOAD);
    const b = this.buf;
    b.writeUInt32LE(SEGMENT_MAGIC, p);
    b.writeUInt32LE(WAL_VERSION, p + 4);
    writeU64(b, p + 8, h.seq);
    b.writeUInt32LE(h.prevCrc, p + 16);
    b.writeUInt32LE(0, p + 20);
    writeU64(b, p + 24, h.lastIndex);
    writeU64(b, p + 32, h.lastTerm);
    writeU64(b, p + 40, h.snapIndex);
    writeU64(b, p + 48, h.snapTerm);
    writeU64(b, p + 56, h.hardState.term);
    writeU64(b, p + 64, h.hardState.vote);
    writeU64(b, p + 72, h.hardState.commit);
    this.end(RecordType.segment, SEGMENT_PAYLOAD, 0);
    this.chain = h.prevCrc;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

export type DecodeResult =
  | {
      readonly kind: 'record';
      readonly type: RecordTypeCode;
      readonly start: number;
      readonly end: number;
      readonly crc: number;
    }
  /** The bytes run out inside the record: what a crash in the middle of a write leaves behind. */
  | { readonly kind: 'incomplete'; readonly reason: string }
  | { readonly kind: 'corrupt'; readonly reason: string };

/** Decodes the record at `off` (which must be < buf.length), checking it against the chain value `seed`. */
export function decodeRecord(buf: Uint8Array, off: number, seed: number): DecodeResult {
  if (buf.length - off < HEADER_SIZE) return { kind: 'incomplete', reason: 'truncated record header' };
  if (crc32c(buf, 0, off, off + 8) !== readU32(buf, off + 8)) {
    return { kind: 'corrupt', reason: 'record header checksum mismatch' };
  }
  const len = readU32(buf, off);
  const type = buf[off + 4];
  if (buf[off + 5] !== 0 || buf[off + 6] !== 0 || buf[off + 7] !== 0 || type < 1 || type > 6) {
    return { kind: 'corrupt', reason: `unknown record type ${type}` };
  }
  const start = off + HEADER_SIZE;
  const end = start + len;
  if (end > buf.length) return { kind: 'incomplete', reason: `record of ${len} bytes runs past the end of the file` };
  const s = type === RecordType.segment ? 0 : seed;
  const crc = crc32c(buf, crc32c(buf, s, off, off + 8), start, end);
  if (crc !== readU32(buf, off + 12)) return { kind: 'corrupt', reason: 'record checksum mismatch' };
  const expected = EXPECTED_LEN[type];
  if (expected >= 0 ? len !== expected : len < 17) {
    return { kind: 'corrupt', reason: `record of type ${type} has a bad length ${len}` };
  }
  return { kind: 'record', type: type as RecordTypeCode, start, end, crc };
}

/** Payload length by type (-1: variable, at least 17 for entries). */
const EXPECTED_LEN = [0, SEGMENT_PAYLOAD, -1, 24, 16, 16, 16];

export function decodeEntry(buf: Uint8Array, start: number, end: number): Entry {
  const t = buf[start + 16];
  const type: EntryType = t === 1 ? 'noop' : 'normal';
  // Copy: the entry must not keep the whole segment buffer alive.
  return {
    index: readU64(buf, start),
    term: readU64(buf, start + 8),
    type,
    data: new Uint8Array(buf.subarray(start + 17, end)),
  };
}

export function decodeHardState(buf: Uint8Array, start: number): HardState {
  return { term: readU64(buf, start), vote: readU64(buf, start + 8), commit: readU64(buf, start + 16) };
}

export function decodeMark(buf: Uint8Array, start: number): { index: number; term: number } {
  return { index: readU64(buf, start), term: readU64(buf, start + 8) };
}

/** Decodes a segment record's payload; null if the magic or version is wrong. */
export function decodeSegment(buf: Uint8Array, start: number): SegmentHeader | null {
  if (readU32(buf, start) !== SEGMENT_MAGIC || readU32(buf, start + 4) !== WAL_VERSION) return null;
  return {
    seq: readU64(buf, start + 8),
    prevCrc: readU32(buf, start + 16),
    lastIndex: readU64(buf, start + 24),
    lastTerm: readU64(buf, start + 32),
    snapIndex: readU64(buf, start + 40),
    snapTerm: readU64(buf, start + 48),
    hardState: { term: readU64(buf, start + 56), vote: readU64(buf, start + 64), commit: readU64(buf, start + 72) },
  };
}
