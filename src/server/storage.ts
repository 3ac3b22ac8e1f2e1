import type { NodeId } from '../raft/types.js';
import { DiskStorage } from '../storage/disk.js';
import { MemoryStorage } from '../storage/memory.js';
import type { RaftStorage } from '../storage/types.js';
import type { ServerConfig } from './config.js';

/** Opens the node's Raft storage: durable files under `dataDir` unless `storage: 'memory'` (tests only). */
export async function openStorage(cfg: ServerConfig, peers: readonly NodeId[]): Promise<RaftStorage> {
  if (cfg.storage === 'memory') return new MemoryStorage(peers);
  return DiskStorage.open(
    cfg.dataDir,
    peers,
    cfg.walPreallocateBytes === undefined ? {} : { preallocateBytes: cfg.walPreallocateBytes },
  );
}

/** The storage's own statistics (fsync counts...) when it reports any. */
export function storageStats(storage: RaftStorage): Record<string, unknown> | undefined {
  const s = storage as RaftStorage & { stats?: () => unknown };
  if (typeof s.stats !== 'function') return undefined;
  const v = s.stats();
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}
