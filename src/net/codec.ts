/**
 * Wire format of the peer transport.
 *
 * A connection carries frames: a 4-byte big-endian body length, then a binary body (integers
 * little-endian; terms, indexes and offsets as float64, which holds every safe integer exactly):
 *
 *  - the handshake (see handshake.ts), once per connection: the acceptor's challenge
 *    `u8 KIND_CHALLENGE | u8 PROTOCOL_VERSION | 32 bytes nonce`, the dialer's hello `u8 KIND_HELLO |
 *    u8 PROTOCOL_VERSION | u32 from | u32 to | 32 bytes nonce | 32 bytes MAC`, the acceptor's welcome
 *    `u8 KIND_WELCOME | u8 PROTOCOL_VERSION | 32 bytes MAC`;
 *  - one Raft message: `u8 KIND_MESSAGE | u8 type | u8 flags | u32 from | u32 to | f64 term | f64 logTerm |
 *    f64 index | f64 commit`, then in this order the parts the flags announce: `f64 rejectHint`,
 *    `f64 context`, entries `u32 count` and per entry `f64 index | f64 term | u8 type | u32 length | data`,
 *    a snapshot chunk `f64 index | f64 term | u32 peer count | u32 peers... | f64 offset | f64 total size |
 *    u32 length | data`. `reject` is a flag bit of its own (present, and its value).
 *
 * Entry and snapshot bytes are copied into the frame as they are and come back as views of the received
 * buffer (Buffers, a Uint8Array subclass): no per-field serialisation. Decoding checks every length and
 * field, so a corrupt or hostile frame is rejected with a CodecError instead of reaching the Raft core.
 */
import {
  MESSAGE_TYPES,
  type Entry,
  type EntryType,
  type Message,
  type MessageType,
  type NodeId,
  type SnapshotChunk,
} from '../raft/types.js';

/** 3: the authenticated handshake (challenge, hello with MAC, welcome). */
export const PROTOCOL_VERSION = 3;
export const KIND_HELLO = 0;
export const KIND_MESSAGE = 1;
export const KIND_CHALLENGE = 2;
export const KIND_WELCOME = 3;
export const HANDSHAKE_NONCE_BYTES = 32;
export const HANDSHAKE_MAC_BYTES = 32;
/** Largest handshake frame body: a connection announcing more before it is authenticated is closed. */
export const MAX_HANDSHAKE_BYTES = 128;
export const FRAME_HEADER_BYTES = 4;

const MESSAGE_CODE = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'noop'];

const F_REJECT_PRESENT = 1;
const F_REJECT = 2;
const F_REJECT_HINT = 4;
const F_CONTEXT = 8;
const F_ENTRIES = 16;
const F_SNAPSHOT = 32;
const F_ALL = 63;

const MESSAGE_FIXED = 3 + 4 + 4 + 8 * 4;
const ENTRY_FIXED = 8 + 8 + 1 + 4;

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

function checkId(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new CodecError(`${what} ${v} is not a node id`);
  return v;
}

/** The binary body of a message frame (without the length prefix). */
export function encodeMessageBody(m: Message): Buffer {
  return encodeMessage(m, 0);
}

/** A whole frame (length prefix + body) for one message, encoded in place: ready for a socket write. */
export function encodeFrame(m: Message): Buffer {
  const frame = encodeMessage(m, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(frame.length - FRAME_HEADER_BYTES, 0);
  return frame;
}

/** The message's body after `at` bytes left for a frame header. */
function encodeMessage(m: Message, at: number): Buffer {
  const code = MESSAGE_CODE.get(m.type);
  if (code === undefined) throw new CodecError(`unknown message type ${String(m.type)}`);
  let flags = 0;
  let size = MESSAGE_FIXED;
  if (m.reject !== undefined) flags |= F_REJECT_PRESENT | (m.reject ? F_REJECT : 0);
  if (m.rejectHint !== undefined) {
    flags |= F_REJECT_HINT;
    size += 8;
  }
  if (m.context !== undefined) {
    flags |= F_CONTEXT;
    size += 8;
  }
  const entries = m.entries;
  if (entries !== undefined) {
    flags |= F_ENTRIES;
    size += 4;
    for (const e of entries) size += ENTRY_FIXED + e.data.byteLength;
  }
  const snap = m.snapshot;
  if (snap !== undefined) {
    flags |= F_SNAPSHOT;
    size += 8 + 8 + 4 + 4 * snap.metadata.peers.length + 8 + 8 + 4 + snap.data.byteLength;
  }
  const b = Buffer.allocUnsafe(at + size);
  b[at] = KIND_MESSAGE;
  b[at + 1] = code;
  b[at + 2] = flags;
  b.writeUInt32LE(checkId(m.from, 'from'), at + 3);
  b.writeUInt32LE(checkId(m.to, 'to'), at + 7);
  b.writeDoubleLE(m.term, at + 11);
  b.writeDoubleLE(m.logTerm, at + 19);
  b.writeDoubleLE(m.index, at + 27);
  b.writeDoubleLE(m.commit, at + 35);
  let off = at + MESSAGE_FIXED;
  if (m.rejectHint !== undefined) off = b.writeDoubleLE(m.rejectHint, off);
  if (m.context !== undefined) off = b.writeDoubleLE(m.context, off);
  if (entries !== undefined) {
    off = b.writeUInt32LE(entries.length, off);
    for (const e of entries) {
      off = b.writeDoubleLE(e.index, off);
      off = b.writeDoubleLE(e.term, off);
      b[off++] = e.type === 'noop' ? 1 : 0;
      off = b.writeUInt32LE(e.data.byteLength, off);
      b.set(e.data, off);
      off += e.data.byteLength;
    }
  }
  if (snap !== undefined) {
    off = b.writeDoubleLE(snap.metadata.index, off);
    off = b.writeDoubleLE(snap.metadata.term, off);
    off = b.writeUInt32LE(snap.metadata.peers.length, off);
    for (const p of snap.metadata.peers) off = b.writeUInt32LE(checkId(p, 'snapshot peer'), off);
    off = b.writeDoubleLE(snap.offset, off);
    off = b.writeDoubleLE(snap.totalSize, off);
    off = b.writeUInt32LE(snap.data.byteLength, off);
    b.set(snap.data, off);
  }
  return b;
}

function fixedBytes(b: Uint8Array, n: number, what: string): Uint8Array {
  if (b.length !== n) throw new CodecError(`${what} must be ${n} bytes`);
  return b;
}

export interface Hello {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly nonce: Uint8Array;
  readonly mac: Uint8Array;
}

export function encodeHelloBody(h: Hello): Buffer {
  const b = Buffer.allocUnsafe(2 + 4 + 4 + HANDSHAKE_NONCE_BYTES + HANDSHAKE_MAC_BYTES);
  b[0] = KIND_HELLO;
  b[1] = PROTOCOL_VERSION;
  b.writeUInt32LE(checkId(h.from, 'sender id'), 2);
  b.writeUInt32LE(checkId(h.to, 'receiver id'), 6);
  b.set(fixedBytes(h.nonce, HANDSHAKE_NONCE_BYTES, 'hello nonce'), 10);
  b.set(fixedBytes(h.mac, HANDSHAKE_MAC_BYTES, 'hello MAC'), 10 + HANDSHAKE_NONCE_BYTES);
  return b;
}

export function encodeChallengeBody(nonce: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(2 + HANDSHAKE_NONCE_BYTES);
  b[0] = KIND_CHALLENGE;
  b[1] = PROTOCOL_VERSION;
  b.set(fixedBytes(nonce, HANDSHAKE_NONCE_BYTES, 'challenge'), 2);
  return b;
}

export function encodeWelcomeBody(mac: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(2 + HANDSHAKE_MAC_BYTES);
  b[0] = KIND_WELCOME;
  b[1] = PROTOCOL_VERSION;
  b.set(fixedBytes(mac, HANDSHAKE_MAC_BYTES, 'welcome MAC'), 2);
  return b;
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

export type Frame =
  | ({ kind: 'hello' } & Hello)
  | { kind: 'challenge'; nonce: Buffer }
  | { kind: 'welcome'; mac: Buffer }
  | { kind: 'message'; message: Message };

/** Bounds-checked reads from a frame body. */
class Reader {
  off = 0;

  constructor(private readonly b: Buffer) {}

  private need(n: number, what: string): void {
    if (this.off + n > this.b.length) throw new CodecError(`frame truncated in ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.b[this.off++];
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.b.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }

  /** A non-negative safe integer sent as float64. */
  nat(what: string): number {
    this.need(8, what);
    const v = this.b.readDoubleLE(this.off);
    this.off += 8;
    if (!Number.isSafeInteger(v) || v < 0) throw new CodecError(`${what} is not a non-negative integer`);
    return v;
  }

  fixed(n: number, what: string): Buffer {
    this.need(n, what);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  bytes(what: string): Buffer {
    const n = this.u32(`${what} length`);
    this.need(n, what);
    const v = this.b.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  get done(): boolean {
    return this.off === this.b.length;
  }
}

function decodeEntry(r: Reader): Entry {
  const index = r.nat('entry index');
  const term = r.nat('entry term');
  const type = ENTRY_TYPES[r.u8('entry type')];
  if (type === undefined) throw new CodecError('unknown entry type');
  return { index, term, type, data: r.bytes('entry data') };
}

function decodeChunk(r: Reader): SnapshotChunk {
  const index = r.nat('snapshot index');
  const term = r.nat('snapshot term');
  const count = r.u32('snapshot peer count');
  if (count > 4096) throw new CodecError('too many snapshot peers');
  const peers: NodeId[] = [];
  for (let i = 0; i < count; i++) peers.push(r.u32('snapshot peer'));
  return {
    metadata: { index, term, peers },
    offset: r.nat('snapshot offset'),
    totalSize: r.nat('snapshot size'),
    data: r.bytes('snapshot data'),
  };
}

/** Decodes and validates one frame body. Throws CodecError on anything malformed. */
export function decodeFrameBody(body: Uint8Array): Frame {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const r = new Reader(b);
  const kind = r.u8('frame kind');
  if (kind !== KIND_MESSAGE) return decodeHandshake(kind, r);
  const type = MESSAGE_TYPES[r.u8('message type')];
  if (type === undefined) throw new CodecError('unknown message type');
  const flags = r.u8('flags');
  if ((flags & ~F_ALL) !== 0) throw new CodecError('unknown message flags');
  const m: Message = {
    type,
    from: r.u32('from'),
    to: r.u32('to'),
    term: r.nat('term'),
    logTerm: r.nat('logTerm'),
    index: r.nat('index'),
    commit: r.nat('commit'),
  };
  if ((flags & F_REJECT_PRESENT) !== 0) m.reject = (flags & F_REJECT) !== 0;
  else if ((flags & F_REJECT) !== 0) throw new CodecError('reject value without reject');
  if ((flags & F_REJECT_HINT) !== 0) m.rejectHint = r.nat('rejectHint');
  if ((flags & F_CONTEXT) !== 0) m.context = r.nat('context');
  if ((flags & F_ENTRIES) !== 0) {
    const count = r.u32('entry count');
    // Every entry takes at least ENTRY_FIXED bytes: a huge count in a short frame is refused up front.
    if (count * ENTRY_FIXED > b.length) throw new CodecError('entry count exceeds the frame');
    const entries: Entry[] = new Array<Entry>(count);
    for (let i = 0; i < count; i++) entries[i] = decodeEntry(r);
    m.entries = entries;
  }
  if ((flags & F_SNAPSHOT) !== 0) m.snapshot = decodeChunk(r);
  if (!r.done) throw new CodecError('trailing bytes after the message');
  return { kind: 'message', message: m };
}

function decodeHandshake(kind: number, r: Reader): Frame {
  if (kind !== KIND_HELLO && kind !== KIND_CHALLENGE && kind !== KIND_WELCOME) {
    throw new CodecError('unknown frame kind');
  }
  const version = r.u8('protocol version');
  if (version !== PROTOCOL_VERSION) throw new CodecError(`protocol version ${version} unsupported`);
  let frame: Frame;
  if (kind === KIND_HELLO) {
    const from = r.u32('sender id');
    const to = r.u32('receiver id');
    const nonce = r.fixed(HANDSHAKE_NONCE_BYTES, 'hello nonce');
    frame = { kind: 'hello', from, to, nonce, mac: r.fixed(HANDSHAKE_MAC_BYTES, 'hello MAC') };
  } else if (kind === KIND_CHALLENGE) {
    frame = { kind: 'challenge', nonce: r.fixed(HANDSHAKE_NONCE_BYTES, 'challenge') };
  } else {
    frame = { kind: 'welcome', mac: r.fixed(HANDSHAKE_MAC_BYTES, 'welcome MAC') };
  }
  if (!r.done) throw new CodecError(`trailing bytes after the ${frame.kind}`);
  return frame;
}

/**
 * Splits a byte stream into frame bodies. Chunks are kept as received and joined only when a header or a
 * body spans several of them, so a large frame arriving in many small chunks is copied once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private total = 0;
  private need = -1;

  /** Largest body accepted; may be raised once a connection is authenticated. */
  constructor(public maxBodyBytes: number) {}

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
