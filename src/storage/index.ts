export { DiskStorage, type DiskStorageOptions, type DiskStorageStats } from './disk.js';
export { MemoryStorage } from './memory.js';
export type { RaftStorage, StorageUpdate } from './types.js';
export { NodeFileSystem, type FileSystem, type StorageFile } from './fs.js';
export { FaultyFileSystem, type CrashOptions } from './faulty-fs.js';
export { WalCorruptionError } from './wal.js';
export { SnapshotCorruptError } from './snapfile.js';
