/**
 * Wire format of the peer transport.
 *
 * A connection carries frames: a 4-byte big-endian body length, then a msgpack body. The body is an array
 * whose first element is the frame kind:
 *  - `[KIND_HELLO, PROTOCOL_VERSION, senderId]` — the first frame on every outbound connection;
 *  - `[KIND_MESSAGE, type, from, to, term, logTerm, index, commit, entries|null, reject|null,
 *     rejectHint|null, context|null, snapshot|null]` — one Raft message.
 * Entries are `[index, term, typeCode, data]`, a snapshot chunk is
 * `[index, term, peers, offset, totalSize, data]`. Positional arrays keep frames small and cheap to
 * (de)serialise; byte fields travel as msgpack `bin` and come back as Buffers (a Uint8Array subclass).
 * Decoding validates every field, so a corrupt or hostile frame is rejected with a CodecError instead of
 * reaching the Raft core.
 */
import { pack as packBytes, unpack } from '../util/msgpack.js';

/** msgpack as a Buffer view (no copy), for socket writes. */
function pack(value: unknown): Buffer {
  const u = packBytes(value);
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
import {
  MESSAGE_TYPES,
  type Entry,
  type EntryType,
  type Message,
  type MessageType,
  type NodeId,
  type SnapshotChunk,
} from '../raft/types.js';

export const PROTOCOL_VERSION = 1;
export const KIND_HELLO = 0;
export const KIND_MESSAGE = 1;
export const FRAME_HEADER_BYTES = 4;

const MESSAGE_CODE = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'noop'];

export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

export class FrameTooLargeError extends CodecError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`frame of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.name = 'FrameTooLargeError';
  }
}

function packEntry(e: Entry): unknown[] {
  return [e.index, e.term, e.type === 'noop' ? 1 : 0, e.data];
}

function packChunk(s: SnapshotChunk): unknown[] {
  return [s.metadata.index, s.metadata.term, s.metadata.peers, s.offset, s.totalSize, s.data];
}

/** The msgpack body of a message frame (without the length prefix). */
export function encodeMessageBody(m: Message): Buffer {
  const code = MESSAGE_CODE.get(m.type);
  if (code === undefined) throw new CodecError(`unknown message type ${String(m.type)}`);
  return pack([
    KIND_MESSAGE,
    code,
    m.from,
    m.to,
    m.term,
    m.logTerm,
    m.index,
    m.commit,
    m.entries === undefined ? null : m.entries.map(packEntry),
    m.reject ?? null,
    m.rejectHint ?? null,
    m.context ?? null,
    m.snapshot === undefined ? null : packChunk(m.snapshot),
  ]);
}

export function encodeHelloBody(id: NodeId): Buffer {
  return pack([KIND_HELLO, PROTOCOL_VERSION, id]);
}

/** Prefixes each body with its length and joins them into one buffer, ready for a single socket write. */
export function joinFrames(bodies: readonly Buffer[]): Buffer {
  let total = 0;
  for (const b of bodies) total += FRAME_HEADER_BYTES + b.length;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const b of bodies) {
    out.writeUInt32BE(b.length, off);
    b.copy(out, off + FRAME_HEADER_BYTES);
    off += FRAME_HEADER_BYTES + b.length;
  }
  return out;
}

/** A whole frame (length prefix + body) for one message; convenient for tests and single sends. */
export function encodeFrame(m: Message): Buffer {
  return joinFrames([encodeMessageBody(m)]);
}

export type Frame = { kind: 'hello'; version: number; id: NodeId } | { kind: 'message'; message: Message };

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CodecError(`${what} is not a number`);
  return v;
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new CodecError(`${what} is not binary`);
  return v;
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new CodecError(`${what} is not an array`);
  return v;
}

function decodeEntry(v: unknown): Entry {
  const a = arr(v, 'entry');
  const type = ENTRY_TYPES[num(a[2], 'entry type')];
  if (type === undefined) throw new CodecError('unknown entry type');
  return { index: num(a[0], 'entry index'), term: num(a[1], 'entry term'), type, data: bytes(a[3], 'entry data') };
}

function decodeChunk(v: unknown): SnapshotChunk {
  const a = arr(v, 'snapshot');
  const peers = arr(a[2], 'snapshot peers').map((p) => num(p, 'snapshot peer'));
  return {
    metadata: { index: num(a[0], 'snapshot index'), term: num(a[1], 'snapshot term'), peers },
    offset: num(a[3], 'snapshot offset'),
    totalSize: num(a[4], 'snapshot size'),
    data: bytes(a[5], 'snapshot data'),
  };
}

/** Decodes and validates one frame body. Throws CodecError on anything malformed. */
export function decodeFrameBody(body: Uint8Array): Frame {
  let v: unknown;
  try {
    v = unpack(body);
  } catch (err) {
    throw new CodecError(`undecodable frame: ${(err as Error).message}`);
  }
  const a = arr(v, 'frame');
  if (a[0] === KIND_HELLO) {
    return { kind: 'hello', version: num(a[1], 'protocol version'), id: num(a[2], 'sender id') };
  }
  if (a[0] !== KIND_MESSAGE) throw new CodecError('unknown frame kind');
  const type = MESSAGE_TYPES[num(a[1], 'message type')];
  if (type === undefined) throw new CodecError('unknown message type');
  const m: Message = {
    type,
    from: num(a[2], 'from'),
    to: num(a[3], 'to'),
    term: num(a[4], 'term'),
    logTerm: num(a[5], 'logTerm'),
    index: num(a[6], 'index'),
    commit: num(a[7], 'commit'),
  };
  if (a[8] !== null && a[8] !== undefined) m.entries = arr(a[8], 'entries').map(decodeEntry);
  if (a[9] !== null && a[9] !== undefined) {
    if (typeof a[9] !== 'boolean') throw new CodecError('reject is not a boolean');
    m.reject = a[9];
  }
  if (a[10] !== null && a[10] !== undefined) m.rejectHint = num(a[10], 'rejectHint');
  if (a[11] !== null && a[11] !== undefined) m.context = num(a[11], 'context');
  if (a[12] !== null && a[12] !== undefined) m.snapshot = decodeChunk(a[12]);
  return { kind: 'message', message: m };
}

/**
 * Splits a byte stream into frame bodies. Chunks are kept as received and joined only when a header or a
 * body spans several of them, so a large frame arriving in many small chunks is copied once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private total = 0;
  private need = -1;

  constructor(private readonly maxBodyBytes: number) {}

  /** Feeds bytes; returns the complete bodies now available. Throws FrameTooLargeError on an oversized header. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.total += chunk.length;
    const out: Buffer[] = [];
    while (true) {
      if (this.need < 0) {
        if (this.total < FRAME_HEADER_BYTES) break;
        const size = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (size > this.maxBodyBytes) throw new FrameTooLargeError(size, this.maxBodyBytes);
        this.need = size;
      }
      if (this.total < this.need) break;
      out.push(this.take(this.need));
      this.need = -1;
    }
    return out;
  }

  /** Bytes buffered but not yet returned. */
  get buffered(): number {
    return this.total;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const b = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.total -= n;
      return b;
    }
    const b = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - off);
      c.copy(b, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.total -= n;
    return b;
  }
}
