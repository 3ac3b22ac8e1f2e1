/**
 * An in-memory file system for crash tests. It keeps, per file, the bytes written so far and the bytes
 * made durable by the last fdatasync, and per directory the entries made durable by the last directory
 * fsync. `crash()` returns what a machine would find after a power cut: a new file system holding only
 * durable state (optionally with a random prefix of the un-synced appended bytes, as a torn write
 * leaves behind); the crashed instance then refuses all further operations.
 */
import { basename, dirname } from 'node:path';
import type { FileSystem, OpenOptions, StorageFile } from './fs.js';
import { SECTOR_BYTES } from './wal-scan.js';

interface Inode {
  data: Uint8Array;
  size: number;
  durable: Uint8Array;
}

export interface CrashOptions {
  /**
   * For a file whose bytes differ from its durable ones (appended or overwritten in place): how many of
   * the `extra` changed bytes, counted from the first change, survive (0 .. extra). Default: none.
   */
  readonly keepUnsynced?: (path: string, extra: number) => number;
}

function errno(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

class MemFile implements StorageFile {
  constructor(
    private readonly fs: FaultyFileSystem,
    private readonly inode: Inode,
    readonly syncsWrites: boolean,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    this.fs.live();
    const room = this.fs.room();
    const growth = Math.max(0, position + data.length - this.inode.size);
    if (growth > room) {
      // A full disk: the part that fits is written, then the write fails (as a short write would).
      const fits = Math.max(0, this.inode.size - position) + room;
      if (fits > 0) this.put(data.subarray(0, fits), position);
      throw errno('ENOSPC', 'no space left on device');
    }
    this.put(data, position);
    // O_DSYNC: the write is durable when it returns, as if an fdatasync followed it.
    if (this.syncsWrites) await this.datasync();
  }

  private put(data: Uint8Array, position: number): void {
    const n = this.inode;
    const end = position + data.length;
    if (end > n.data.length) {
      const grown = new Uint8Array(Math.max(end, n.data.length * 2, 1024));
      grown.set(n.data.subarray(0, n.size));
      n.data = grown;
    }
    if (position > n.size) n.data.fill(0, n.size, position);
    n.data.set(data, position);
    n.size = Math.max(n.size, end);
  }

  async datasync(): Promise<void> {
    this.fs.live();
    const copy = this.inode.data.slice(0, this.inode.size);
    await this.fs.syncDelay();
    this.fs.live();
    this.fs.failSync();
    this.inode.durable = copy;
    this.fs.syncs++;
  }

  async truncate(length: number): Promise<void> {
    this.fs.live();
    const n = this.inode;
    if (length > n.size) {
      this.put(new Uint8Array(length - n.size), n.size);
    } else {
      n.size = length;
    }
  }

  async close(): Promise<void> {}
}

export class FaultyFileSystem implements FileSystem {
  private files = new Map<string, Inode>();
  private durableFiles = new Map<string, Inode>();
  private dirs = new Set<string>();
  private crashed = false;
  /** fdatasync calls that completed. */
  syncs = 0;
  /** When set, the next fdatasync calls fail with EIO while this is > 0 (decremented per failure). */
  failNextSyncs = 0;
  /** Total bytes the files may hold (a small disk); writes beyond it fail with ENOSPC. */
  capacity = Number.POSITIVE_INFINITY;

  /** Bytes that can still be written before the disk is full. */
  room(): number {
    if (this.capacity === Number.POSITIVE_INFINITY) return this.capacity;
    let used = 0;
    for (const n of this.files.values()) used += n.size;
    return Math.max(0, this.capacity - used);
  }

  /** Throws if this instance was crashed. */
  live(): void {
    if (this.crashed) throw errno('EIO', 'file system instance was crashed');
  }

  /** An fsync takes a turn of the event loop, so other work can queue behind it as on a real disk. */
  syncDelay(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  failSync(): void {
    if (this.failNextSyncs > 0) {
      this.failNextSyncs--;
      throw errno('EIO', 'injected fsync failure');
    }
  }

  private node(path: string): Inode {
    const n = this.files.get(path);
    if (!n) throw errno('ENOENT', path);
    return n;
  }

  private parent(path: string): void {
    if (!this.dirs.has(dirname(path))) throw errno('ENOENT', dirname(path));
  }

  async mkdirp(dir: string): Promise<void> {
    this.live();
    for (let d = dir; !this.dirs.has(d); d = dirname(d)) {
      this.dirs.add(d);
      if (dirname(d) === d) break;
    }
  }

  async readdir(dir: string): Promise<string[]> {
    this.live();
    if (!this.dirs.has(dir)) throw errno('ENOENT', dir);
    return [...this.files.keys()].filter((p) => dirname(p) === dir).map((p) => basename(p));
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.live();
    const n = this.node(path);
    return n.data.slice(0, n.size);
  }

  async create(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    this.live();
    this.parent(path);
    if (this.files.has(path)) throw errno('EEXIST', path);
    const n: Inode = { data: new Uint8Array(0), size: 0, durable: new Uint8Array(0) };
    this.files.set(path, n);
    return new MemFile(this, n, options.dsync === true);
  }

  async openWrite(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    this.live();
    return new MemFile(this, this.node(path), options.dsync === true);
  }

  async rename(from: string, to: string): Promise<void> {
    this.live();
    const n = this.node(from);
    this.parent(to);
    this.files.delete(from);
    this.files.set(to, n);
  }

  async unlink(path: string): Promise<void> {
    this.live();
    this.node(path);
    this.files.delete(path);
  }

  async syncDir(dir: string): Promise<void> {
    this.live();
    await this.syncDelay();
    this.live();
    for (const p of [...this.durableFiles.keys()]) if (dirname(p) === dir) this.durableFiles.delete(p);
    for (const [p, n] of this.files) if (dirname(p) === dir) this.durableFiles.set(p, n);
  }

  /** A power cut: returns the surviving file system; this one becomes unusable. */
  crash(options: CrashOptions = {}): FaultyFileSystem {
    this.live();
    this.crashed = true;
    const next = new FaultyFileSystem();
    next.dirs = new Set(this.dirs);
    for (const [p, n] of this.durableFiles) {
      let bytes = n.durable;
      const changed = unsyncedRange(n.data.subarray(0, n.size), n.durable);
      if (options.keepUnsynced && changed !== null) {
        // Write-back in file order: a prefix of the changed bytes reached the disk. Within the durable
        // length (overwritten in place) it ends on a sector boundary, sectors being written whole; past it
        // (appended) the file may end anywhere.
        const [first, extra] = changed;
        const keep = Math.min(extra, Math.max(0, Math.floor(options.keepUnsynced(p, extra))));
        let end = Math.min(n.size, first + keep);
        if (end < n.durable.length) end = Math.max(first, end - (end % SECTOR_BYTES));
        const out = new Uint8Array(Math.max(n.durable.length, end));
        out.set(n.durable);
        out.set(n.data.subarray(first, end), first);
        bytes = out;
      }
      const inode: Inode = { data: bytes.slice(), size: bytes.length, durable: bytes.slice() };
      next.files.set(p, inode);
      next.durableFiles.set(p, inode);
    }
    return next;
  }

  /** A copy of the current state as if everything were durable (for corrupting copies in tests). */
  clone(): FaultyFileSystem {
    this.live();
    const next = new FaultyFileSystem();
    next.dirs = new Set(this.dirs);
    for (const [p, n] of this.files) {
      const bytes = n.data.slice(0, n.size);
      const inode: Inode = { data: bytes, size: bytes.length, durable: bytes.slice() };
      next.files.set(p, inode);
      next.durableFiles.set(p, inode);
    }
    return next;
  }

  /** Test helpers: direct access to a file's current bytes. */
  list(): string[] {
    return [...this.files.keys()].sort();
  }

  size(path: string): number {
    return this.node(path).size;
  }

  /** Cuts a file to `length` bytes (durably). */
  cut(path: string, length: number): void {
    const n = this.node(path);
    n.size = Math.min(n.size, length);
    n.durable = n.data.slice(0, n.size);
  }

  /** Overwrites `[from, to)` of a file with zeros (durably): sectors a torn write never reached. */
  zero(path: string, from: number, to: number): void {
    const n = this.node(path);
    n.data.fill(0, from, Math.min(to, n.size));
    n.durable = n.data.slice(0, n.size);
  }

  /** Flips one bit of a file (durably). */
  flipBit(path: string, offset: number, bit: number): void {
    const n = this.node(path);
    if (offset >= n.size) throw new RangeError(`offset ${offset} beyond ${path} (${n.size} bytes)`);
    n.data[offset] ^= 1 << bit;
    n.durable = n.data.slice(0, n.size);
  }
}

/** Where the current bytes differ from the durable ones: [first differing offset, length up to the last]. */
function unsyncedRange(data: Uint8Array, durable: Uint8Array): [number, number] | null {
  const common = Math.min(data.length, durable.length);
  let first = 0;
  while (first < common && data[first] === durable[first]) first++;
  if (first === data.length) return null; // nothing new (a shrink is not modelled as torn)
  let last = data.length - 1;
  if (data.length <= durable.length) while (last > first && data[last] === durable[last]) last--;
  return [first, last - first + 1];
}
