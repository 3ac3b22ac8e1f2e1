/** Snapshot selection at start-up and pruning of old snapshot files. */
import { join } from 'node:path';
import type { NodeId, Snapshot } from '../raft/types.js';
import type { FileSystem } from './fs.js';
import { SnapshotCorruptError, parseSnapshotFileName, readSnapshotFile, snapshotFileName } from './snapfile.js';
import type { LogTail } from './tail.js';
import type { Logger } from './wal.js';

/** How many snapshot files to keep: the latest and the one before it (the fallback if the latest is damaged). */
export const SNAPSHOTS_KEPT = 2;

async function listSnapshots(fs: FileSystem, dir: string): Promise<{ name: string; index: number; term: number }[]> {
  const out: { name: string; index: number; term: number }[] = [];
  for (const name of await fs.readdir(dir)) {
    const p = parseSnapshotFileName(name);
    if (p) out.push({ name, ...p });
  }
  return out.sort((a, b) => b.index - a.index);
}

/**
 * Finds the snapshot the log refers to (`want`). Files newer than it were written by a crashed, never
 * acknowledged operation and are removed; a damaged file is renamed `*.broken` and the previous snapshot
 * is used instead, provided the log still holds every entry after it. Otherwise start-up fails.
 */
export async function loadSnapshots(
  fs: FileSystem,
  dir: string,
  want: { index: number; term: number },
  tail: LogTail,
  peers: readonly NodeId[],
  log: Logger,
): Promise<Snapshot> {
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith('snap-') && name.endsWith('.snap.tmp')) {
      log(`snapshot: removing ${name}, left by a crash while it was being written`);
      await fs.unlink(join(dir, name));
    }
  }
  const wanted = snapshotFileName(want.index, want.term);
  let problem = want.index > 0 ? `snapshot ${wanted} is missing` : '';
  for (const f of await listSnapshots(fs, dir)) {
    if (f.index > want.index || (f.index === want.index && f.term !== want.term)) {
      log(`snapshot: removing ${f.name}: the log never recorded it (a crash before it was acknowledged)`);
      await fs.unlink(join(dir, f.name));
      continue;
    }
    let snap: Snapshot;
    try {
      snap = await readSnapshotFile(fs, dir, f.name);
    } catch (e) {
      if (!(e instanceof SnapshotCorruptError)) throw e;
      log(`snapshot: ${e.message}; setting it aside as ${f.name}.broken`);
      await fs.rename(join(dir, f.name), join(dir, `${f.name}.broken`));
      await fs.syncDir(dir);
      if (f.index === want.index) problem = e.message;
      continue;
    }
    if (f.index === want.index) return snap;
    const offset = tail.offset;
    if (f.index >= offset && f.index <= tail.lastIndex() && tail.term(f.index) === f.term) {
      log(`snapshot: ${problem}; falling back to the previous snapshot ${f.name}`);
      return snap;
    }
    throw new Error(
      `${problem}, and the log was compacted past the previous snapshot ${f.name} (first index ${offset + 1}): cannot recover`,
    );
  }
  if (want.index === 0) return { metadata: { index: 0, term: 0, peers }, data: new Uint8Array(0) };
  throw new Error(`${problem}, and no earlier snapshot can replace it: cannot recover`);
}

/** Deletes snapshot files older than the newest SNAPSHOTS_KEPT at or below `latest`. */
export async function pruneSnapshots(fs: FileSystem, dir: string, latest: number): Promise<void> {
  const files = (await listSnapshots(fs, dir)).filter((f) => f.index <= latest);
  for (const f of files.slice(SNAPSHOTS_KEPT)) await fs.unlink(join(dir, f.name));
}
