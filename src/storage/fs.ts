/**
 * The small file-system surface the durable storage uses. Production code goes straight to `node:fs`;
 * tests substitute `FaultyFileSystem` (faulty-fs.ts), which forgets every write that was not fsynced when
 * a crash is simulated.
 */
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';

/** An open file, written at explicit positions (the WAL tracks its own append offset). */
export interface StorageFile {
  /** Every `write` is durable (data and what is needed to read it back) when it resolves: O_DSYNC. */
  readonly syncsWrites: boolean;
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the data written so far (and the file size) is durable when this resolves. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Open with O_DSYNC, so that each write is durable when it returns (see `StorageFile.syncsWrites`). */
  readonly dsync?: boolean;
}

export interface FileSystem {
  /** Creates the directory (and its parents) if missing. */
  mkdirp(dir: string): Promise<void>;
  /** Names (not paths) of the entries of `dir`. */
  readdir(dir: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  /** Creates a new, empty file; fails if it exists. */
  create(path: string, options?: OpenOptions): Promise<StorageFile>;
  /** Opens an existing file for writing. */
  openWrite(path: string, options?: OpenOptions): Promise<StorageFile>;
  /** Atomic replacement of `to` by `from` (durable once the directory is synced). */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync of the directory itself: makes creations, renames and deletions in it durable. */
  syncDir(dir: string): Promise<void>;
}

class NodeFile implements StorageFile {
  constructor(
    private readonly fh: fsp.FileHandle,
    readonly syncsWrites: boolean,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  datasync(): Promise<void> {
    return this.fh.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/** The real file system. */
export class NodeFileSystem implements FileSystem {
  async mkdirp(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  }

  readdir(dir: string): Promise<string[]> {
    return fsp.readdir(dir);
  }

  readFile(path: string): Promise<Uint8Array> {
    return fsp.readFile(path);
  }

  async create(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    const dsync = dsyncFlag(options);
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | dsync;
    return new NodeFile(await fsp.open(path, flags, 0o644), dsync !== 0);
  }

  async openWrite(path: string, options: OpenOptions = {}): Promise<StorageFile> {
    const dsync = dsyncFlag(options);
    return new NodeFile(await fsp.open(path, constants.O_WRONLY | dsync), dsync !== 0);
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return fsp.unlink(path);
  }

  async syncDir(dir: string): Promise<void> {
    const fh = await fsp.open(dir, constants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

/** O_DSYNC where the platform has it (Linux, macOS); 0 elsewhere, and the WAL then calls fdatasync. */
function dsyncFlag(options: OpenOptions): number {
  return options.dsync === true ? (constants.O_DSYNC ?? 0) : 0;
}
