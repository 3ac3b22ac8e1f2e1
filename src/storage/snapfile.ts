/**
 * Snapshot files: `snap-<index, 20 digits>-<term, 20 digits>.snap`.
 *
 * Layout (little-endian): magic "QKVS", version u32, index u64, term u64, peer count u32, peers u64 each,
 * data length u64, data, then the CRC-32C of everything before it. A snapshot is written to a `.tmp` file,
 * fdatasync'ed, renamed into place and the directory fsync'ed, so a name without `.tmp` always denotes a
 * complete file — unless the disk damaged it, which the checksum detects on load.
 */
import { join } from 'node:path';
import type { Snapshot } from '../raft/types.js';
import { crc32c } from './crc32c.js';
import type { FileSystem } from './fs.js';
import { readU32, readU64, writeU64 } from './records.js';

const SNAP_MAGIC = 0x53564b51; // "QKVS"
const SNAP_VERSION = 1;
const NAME_RE = /^snap-(\d{20})-(\d{20})\.snap$/;

export class SnapshotCorruptError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`snapshot ${file} is damaged: ${reason}`);
    this.name = 'SnapshotCorruptError';
  }
}

export function snapshotFileName(index: number, term: number): string {
  return `snap-${String(index).padStart(20, '0')}-${String(term).padStart(20, '0')}.snap`;
}

/** Parses a snapshot file name; null for anything else (including `.tmp` and `.broken` files). */
export function parseSnapshotFileName(name: string): { index: number; term: number } | null {
  const m = NAME_RE.exec(name);
  return m ? { index: Number(m[1]), term: Number(m[2]) } : null;
}

export function encodeSnapshot(snap: Snapshot): Buffer {
  const { index, term, peers } = snap.metadata;
  const size = 4 + 4 + 8 + 8 + 4 + 8 * peers.length + 8 + snap.data.byteLength + 4;
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32LE(SNAP_MAGIC, 0);
  b.writeUInt32LE(SNAP_VERSION, 4);
  writeU64(b, 8, index);
  writeU64(b, 16, term);
  b.writeUInt32LE(peers.length, 24);
  let o = 28;
  for (const p of peers) {
    writeU64(b, o, p);
    o += 8;
  }
  writeU64(b, o, snap.data.byteLength);
  o += 8;
  b.set(snap.data, o);
  o += snap.data.byteLength;
  b.writeUInt32LE(crc32c(b, 0, 0, o), o);
  return b;
}

export function decodeSnapshot(buf: Uint8Array, file: string): Snapshot {
  if (buf.length < 40) throw new SnapshotCorruptError(file, `file too short (${buf.length} bytes)`);
  const body = buf.length - 4;
  if (crc32c(buf, 0, 0, body) !== readU32(buf, body)) throw new SnapshotCorruptError(file, 'checksum mismatch');
  if (readU32(buf, 0) !== SNAP_MAGIC || readU32(buf, 4) !== SNAP_VERSION) {
    throw new SnapshotCorruptError(file, 'bad magic or version');
  }
  const index = readU64(buf, 8);
  const term = readU64(buf, 16);
  const n = readU32(buf, 24);
  let o = 28;
  if (o + 8 * n + 8 > body) throw new SnapshotCorruptError(file, 'peer list runs past the end');
  const peers: number[] = [];
  for (let i = 0; i < n; i++, o += 8) peers.push(readU64(buf, o));
  const len = readU64(buf, o);
  o += 8;
  if (o + len !== body) throw new SnapshotCorruptError(file, 'data length does not match the file size');
  return { metadata: { index, term, peers }, data: new Uint8Array(buf.subarray(o, o + len)) };
}

/** Writes `snap` durably: temporary file, fdatasync, rename, directory fsync. Returns the file name. */
export async function writeSnapshotFile(fs: FileSystem, dir: string, snap: Snapshot): Promise<string> {
  const name = snapshotFileName(snap.metadata.index, snap.metadata.term);
  const tmp = join(dir, `${name}.tmp`);
  const existing = await fs.readdir(dir);
  if (existing.includes(`${name}.tmp`)) await fs.unlink(tmp);
  const f = await fs.create(tmp);
  try {
    await f.write(encodeSnapshot(snap), 0);
    await f.datasync();
  } finally {
    await f.close();
  }
  await fs.rename(tmp, join(dir, name));
  await fs.syncDir(dir);
  return name;
}

export async function readSnapshotFile(fs: FileSystem, dir: string, name: string): Promise<Snapshot> {
  const snap = decodeSnapshot(await fs.readFile(join(dir, name)), name);
  const parsed = parseSnapshotFileName(name);
  if (parsed && (parsed.index !== snap.metadata.index || parsed.term !== snap.metadata.term)) {
    throw new SnapshotCorruptError(name, `contents are for index ${snap.metadata.index} term ${snap.metadata.term}`);
  }
  return snap;
}
