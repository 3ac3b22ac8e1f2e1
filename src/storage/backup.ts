/**
 * Backup files (`quorumkv snapshot save` / `restore`): a state-machine snapshot taken on the leader at a
 * linearizable read point, with where it was taken and a checksum.
 *
 * Layout: the 8 bytes "QKVBAK01", the header's length (u32, little-endian), the header as JSON
 * (`BackupHeader`), the snapshot data (`data_bytes` bytes), then the SHA-256 of everything before it
 * (32 bytes). A file whose checksum, magic, header or length does not match is refused.
 *
 * Restoring seeds an empty data directory with that snapshot as its whole history: a log that starts after
 * `index` (so key revisions, which are log indexes, keep growing), term 1, no vote, commit = `index`, and
 * the new cluster's voters. Every node of the new cluster is seeded from the same file, so their logs agree
 * and the first election starts a fresh term history.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { NodeId, Snapshot } from '../raft/types.js';
import { DiskStorage } from './disk.js';

const MAGIC = Buffer.from('QKVBAK01', 'latin1');
const HASH_BYTES = 32;
const MAX_HEADER_BYTES = 64 * 1024;

export type BackupApp = 'kv' | 'chat';

export interface BackupHeader {
  readonly format: 1;
  /** What the cluster replicated: the key-value store or the chat service. */
  readonly app: BackupApp;
  /** The applied index the snapshot reflects (at or after the read point of the save). */
  readonly index: number;
  /** The term of the entry at `index` in the source cluster (informational: restore starts a new term history). */
  readonly term: number;
  /** The source cluster's voters. */
  readonly peers: readonly NodeId[];
  /** The node (the leader) that took it. */
  readonly node_id: NodeId;
  /** When it was taken (ISO 8601). */
  readonly created_at: string;
  readonly data_bytes: number;
}

export class BackupFormatError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file} is not a usable quorumkv snapshot: ${reason}`);
    this.name = 'BackupFormatError';
  }
}

export function encodeBackup(header: Omit<BackupHeader, 'format' | 'data_bytes'>, data: Uint8Array): Buffer {
  const full: BackupHeader = { format: 1, ...header, data_bytes: data.byteLength };
  const json = Buffer.from(JSON.stringify(full), 'utf8');
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(json.length, 0);
  const body = Buffer.concat([MAGIC, len, json, data]);
  const sum = createHash('sha256').update(body).digest();
  return Buffer.concat([body, sum]);
}

export interface DecodedBackup {
  readonly header: BackupHeader;
  readonly data: Uint8Array;
  /** Hex SHA-256 of the file's body (what its trailer holds). */
  readonly sha256: string;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Checks and decodes a backup file's bytes; `file` names it in errors. */
export function decodeBackup(buf: Uint8Array, file: string): DecodedBackup {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < MAGIC.length + 4 + HASH_BYTES) throw new BackupFormatError(file, `too short (${b.length} bytes)`);
  if (!b.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BackupFormatError(file, 'not a snapshot file (bad magic)');
  }
  const bodyEnd = b.length - HASH_BYTES;
  const expected = b.subarray(bodyEnd).toString('hex');
  const actual = createHash('sha256').update(b.subarray(0, bodyEnd)).digest('hex');
  if (expected !== actual) {
    throw new BackupFormatError(file, `checksum mismatch (file says sha256 ${expected}, contents have ${actual})`);
  }
  const hlen = b.readUInt32LE(MAGIC.length);
  const hstart = MAGIC.length + 4;
  if (hlen > MAX_HEADER_BYTES || hstart + hlen > bodyEnd) throw new BackupFormatError(file, 'header runs past the end');
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.subarray(hstart, hstart + hlen).toString('utf8'));
  } catch {
    throw new BackupFormatError(file, 'header is not JSON');
  }
  const h = parsed as Partial<Record<keyof BackupHeader, unknown>>;
  if (h === null || typeof h !== 'object' || h.format !== 1) throw new BackupFormatError(file, 'unknown format');
  if (h.app !== 'kv' && h.app !== 'chat') throw new BackupFormatError(file, `unknown app ${JSON.stringify(h.app)}`);
  if (!isCount(h.index) || h.index < 1 || !isCount(h.term) || !isCount(h.node_id) || !isCount(h.data_bytes)) {
    throw new BackupFormatError(file, 'header fields index, term, node_id, data_bytes must be integers');
  }
  if (!Array.isArray(h.peers) || !h.peers.every((p) => isCount(p) && p > 0)) {
    throw new BackupFormatError(file, 'header field peers must be a list of node ids');
  }
  if (typeof h.created_at !== 'string') throw new BackupFormatError(file, 'header field created_at is missing');
  const dstart = hstart + hlen;
  if (dstart + h.data_bytes !== bodyEnd) throw new BackupFormatError(file, 'data length does not match the file size');
  const header: BackupHeader = {
    format: 1,
    app: h.app,
    index: h.index,
    term: h.term,
    peers: h.peers as NodeId[],
    node_id: h.node_id,
    created_at: h.created_at,
    data_bytes: h.data_bytes,
  };
  return { header, data: new Uint8Array(b.subarray(dstart, bodyEnd)), sha256: expected };
}

/** The data directory's app marker (see src/server/node.ts). */
export const APP_MARKER_FILE = 'app.json';

/**
 * Seeds an empty (or absent) node data directory with a backup: the app marker, then Raft storage whose
 * only content is the snapshot at the backup's index, term 1, with `peers` as the new cluster's voters.
 * Refuses a directory that already holds anything. Everything written is fsynced (the marker here, the
 * storage by its own rules, which also sync the directory).
 */
export async function seedDataDir(dir: string, backup: DecodedBackup, peers: readonly NodeId[]): Promise<void> {
  const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  if (existing.length > 0) {
    throw new Error(`${dir} is not empty: restore only into new data directories (a node's data would be replaced)`);
  }
  if (peers.length === 0) throw new Error('restore needs the node ids of the new cluster');
  await mkdir(dir, { recursive: true });
  const marker = await open(path.join(dir, APP_MARKER_FILE), 'wx');
  try {
    await marker.writeFile(JSON.stringify({ app: backup.header.app }) + '\n');
    await marker.sync();
  } finally {
    await marker.close();
  }
  const sorted = [...peers].sort((a, b) => a - b);
  const storage = await DiskStorage.open(dir, sorted, { log: () => undefined });
  try {
    const snapshot: Snapshot = { metadata: { index: backup.header.index, term: 1, peers: sorted }, data: backup.data };
    await storage.save({ snapshot, hardState: { term: 1, vote: 0, commit: backup.header.index }, entries: [] });
  } finally {
    await storage.close();
  }
}
