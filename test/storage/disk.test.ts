/** DiskStorage on the real file system. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, truncate, writeFile, readFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskStorage } from '../../src/storage/disk.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { SEGMENT_RECORD_SIZE } from '../../src/storage/records.js';
import { WalCorruptionError } from '../../src/storage/wal.js';
import { CompactedError } from '../../src/raft/storage.js';
import type { Entry } from '../../src/raft/types.js';
import { PEERS, fingerprint } from './helpers.js';

const ent = (index: number, term: number, size = 16): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array(size).fill(index & 0xff),
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-storage-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const quiet = { log: () => {} };

test('a fresh storage is empty and remembers everything across a restart', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, quiet);
    assert.equal(s.firstIndex(), 1);
    assert.equal(s.lastIndex(), 0);
    assert.deepEqual(s.initialState(), { hardState: { term: 0, vote: 0, commit: 0 }, peers: PEERS });
    const model = new MemoryStorage(PEERS);
    const updates = [
      { entries: [ent(1, 1), ent(2, 1), ent(3, 1)], hardState: { term: 1, vote: 2, commit: 1 } },
      { entries: [ent(3, 2), ent(4, 2)], hardState: { term: 2, vote: 3, commit: 2 } }, // overwrites 3
      { entries: [{ index: 5, term: 2, type: 'noop' as const, data: new Uint8Array(0) }] },
    ];
    for (const u of updates) {
      model.saveSync(u);
      await s.save(u);
    }
    assert.equal(s.term(3), 2);
    await s.createSnapshot(3, PEERS, new Uint8Array([7, 7]));
    model.createSnapshotSync(3, PEERS, new Uint8Array([7, 7]));
    await s.compact(2);
    model.compactSync(2);
    assert.throws(() => s.term(1), CompactedError);
    assert.equal(fingerprint(s), fingerprint(model));
    await s.close();
    const names = await readdir(dir);
    assert.ok(names.includes('wal-0000000001-00000000000000000001.log'), names.join());
    assert.ok(names.includes('snap-00000000000000000003-00000000000000000002.snap'), names.join());
    const again = await DiskStorage.open(dir, PEERS, quiet);
    assert.equal(fingerprint(again), fingerprint(model));
    assert.deepEqual(again.snapshot().data, new Uint8Array([7, 7]));
    await again.close();
  }));

test('concurrent saves share fdatasyncs (group commit) and all become durable', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, quiet);
    const base = s.stats();
    const saves: Promise<void>[] = [];
    for (let i = 1; i <= 500; i++) saves.push(s.save({ entries: [ent(i, 1, 100)] }));
    await Promise.all(saves);
    const st = s.stats();
    assert.equal(st.records - base.records, 500);
    assert.ok(st.batches - base.batches < 50, `500 saves took ${st.batches - base.batches} batches`);
    assert.equal(st.fsyncs - base.fsyncs, st.batches - base.batches);
    assert.ok(st.bytesWritten > 500 * 100);
    await s.close();
    const again = await DiskStorage.open(dir, PEERS, quiet);
    assert.equal(again.lastIndex(), 500);
    assert.deepEqual(again.entries(250, 251, 1e9)[0].data, new Uint8Array(100).fill(250 & 0xff));
    await again.close();
  }));

test('segments roll at the size bound and compaction deletes the ones a snapshot covers', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, { ...quiet, segmentBytes: 4096 });
    for (let i = 1; i <= 200; i++)
      await s.save({ entries: [ent(i, 1, 100)], hardState: { term: 1, vote: 1, commit: i } });
    const logs = (await readdir(dir)).filter((n) => n.endsWith('.log'));
    assert.ok(logs.length >= 6, `${logs.length} segments`);
    for (const name of logs) assert.ok((await stat(join(dir, name))).size <= 4096, name);
    await s.createSnapshot(150, PEERS, new Uint8Array([1]));
    await s.compact(150);
    const left = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
    assert.ok(left.length < logs.length, 'covered segments were deleted');
    assert.ok(Number(left[0].slice(15, 35)) <= 151, `${left[0]} still holds entry 151`);
    assert.equal(s.stats().segmentsDeleted, logs.length - left.length);
    await s.close();
    const again = await DiskStorage.open(dir, PEERS, quiet);
    assert.equal(again.firstIndex(), 151);
    assert.equal(again.lastIndex(), 200);
    assert.equal(again.term(150), 1);
    assert.equal(again.hardState().commit, 200);
    await again.close();
  }));

test('a torn record at the end of the log is truncated and logged', () =>
  withDir(async (dir) => {
    const append = { preallocateBytes: 0 };
    const s = await DiskStorage.open(dir, PEERS, { ...quiet, ...append });
    await s.save({ entries: [ent(1, 1), ent(2, 1)] });
    await s.save({ entries: [ent(3, 1, 1000)] });
    await s.close();
    const wal = join(dir, 'wal-0000000001-00000000000000000001.log');
    const size = (await stat(wal)).size;
    await truncate(wal, size - 500);
    const notes: string[] = [];
    const again = await DiskStorage.open(dir, PEERS, { ...append, log: (m) => notes.push(m) });
    assert.equal(again.lastIndex(), 2);
    assert.match(notes.join('\n'), /torn record at offset \d+ .*truncating \d+ bytes/);
    await again.save({ entries: [ent(3, 2)] });
    await again.close();
    const third = await DiskStorage.open(dir, PEERS, quiet);
    assert.equal(third.term(3), 2);
    await third.close();
  }));

test('preallocated segments: the zeros after the log are no damage; a record cut short at a sector is', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, quiet);
    await s.save({ entries: [ent(1, 1), ent(2, 1)] });
    await s.save({ entries: [ent(3, 1, 1000)] });
    const records = s.activeSegmentBytes();
    // The segment is zero-filled ahead of the log (64 KiB at first), in the background.
    for (let i = 0; i < 100 && s.stats().preallocations === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(s.stats().preallocations, 1);
    await s.close();
    const wal = join(dir, 'wal-0000000001-00000000000000000001.log');
    assert.equal((await stat(wal)).size, 64 * 1024 + SEGMENT_RECORD_SIZE);
    const notes: string[] = [];
    const again = await DiskStorage.open(dir, PEERS, { log: (m) => notes.push(m) });
    assert.equal(again.lastIndex(), 3);
    assert.deepEqual(notes, []);
    await again.save({ entries: [ent(4, 1)] });
    await again.close();
    // A crash during the write of entry 3: its sectors from the second one on never reached the disk.
    const bytes = await readFile(wal);
    const entry3 = records - (16 + 17 + 1000);
    const cut = Math.ceil((entry3 + 1) / 512) * 512;
    bytes.fill(0, cut, records + 16 + 17 + 16);
    await writeFile(wal, bytes);
    const repairs: string[] = [];
    const third = await DiskStorage.open(dir, PEERS, { log: (m) => repairs.push(m) });
    assert.equal(third.lastIndex(), 2);
    assert.match(repairs.join('\n'), new RegExp(`torn record at offset ${entry3} .*write cut short`));
    await third.save({ entries: [ent(3, 2)] });
    await third.close();
    const fourth = await DiskStorage.open(dir, PEERS, quiet);
    assert.equal(fourth.lastIndex(), 3);
    assert.equal(fourth.term(3), 2);
    await fourth.close();
  }));

test('damage before the end of the log stops start-up with the file and offset', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, quiet);
    for (let i = 1; i <= 5; i++) await s.save({ entries: [ent(i, 1, 50)] });
    await s.close();
    const name = 'wal-0000000001-00000000000000000001.log';
    const bytes = await readFile(join(dir, name));
    bytes[200] ^= 0x04;
    await writeFile(join(dir, name), bytes);
    await assert.rejects(DiskStorage.open(dir, PEERS, quiet), (e: unknown) => {
      assert.ok(e instanceof WalCorruptionError);
      assert.equal(e.file, name);
      assert.ok(e.offset <= 200 && e.offset > 0);
      assert.match(
        e.message,
        /wal-0000000001-00000000000000000001\.log is damaged at offset \d+: record checksum mismatch/,
      );
      return true;
    });
    // Garbage after the last record is not a torn write either.
    bytes[200] ^= 0x04;
    await writeFile(join(dir, name), bytes);
    await appendFile(join(dir, name), Buffer.from('not a record, but not zeros either'));
    await assert.rejects(DiskStorage.open(dir, PEERS, quiet), /damaged at offset/);
  }));

test('a damaged snapshot is set aside and the previous one used', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, quiet);
    for (let i = 1; i <= 20; i++) await s.save({ entries: [ent(i, 1)], hardState: { term: 1, vote: 1, commit: i } });
    await s.createSnapshot(10, PEERS, new Uint8Array([10]));
    await s.createSnapshot(15, PEERS, new Uint8Array([15]));
    await s.close();
    const latest = 'snap-00000000000000000015-00000000000000000001.snap';
    const bytes = await readFile(join(dir, latest));
    bytes[bytes.length - 6] ^= 1;
    await writeFile(join(dir, latest), bytes);
    const notes: string[] = [];
    const again = await DiskStorage.open(dir, PEERS, { log: (m) => notes.push(m) });
    assert.equal(again.snapshot().metadata.index, 10);
    assert.deepEqual(again.snapshot().data, new Uint8Array([10]));
    assert.equal(again.lastIndex(), 20);
    assert.match(notes.join('\n'), new RegExp(`${latest} is damaged: checksum mismatch; setting it aside`));
    assert.ok((await readdir(dir)).includes(`${latest}.broken`));
    // Compacting past the fallback, then losing the latest snapshot too, must refuse to start.
    await again.createSnapshot(18, PEERS, new Uint8Array([18]));
    await again.compact(18);
    await again.close();
    await writeFile(join(dir, 'snap-00000000000000000018-00000000000000000001.snap'), Buffer.from('junk'));
    await assert.rejects(DiskStorage.open(dir, PEERS, quiet), /compacted past the previous snapshot .*cannot recover/);
  }));

test('bad calls are rejected without changing the state', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, quiet);
    await s.save({ entries: [ent(1, 1)] });
    await assert.rejects(s.save({ entries: [ent(3, 1)] }), /gap/);
    await assert.rejects(s.compact(1), /beyond snapshot/);
    await assert.rejects(s.createSnapshot(5, PEERS, new Uint8Array()), /not available/);
    assert.equal(s.lastIndex(), 1);
    await s.close();
    await assert.rejects(s.save({ entries: [ent(2, 1)] }), /closed/);
  }));

test('refuses to start from snapshots without a log', () =>
  withDir(async (dir) => {
    const s = await DiskStorage.open(dir, PEERS, quiet);
    await s.save({ entries: [ent(1, 1)] });
    await s.createSnapshot(1, PEERS, new Uint8Array([1]));
    await s.close();
    for (const n of await readdir(dir)) if (n.endsWith('.log')) await rm(join(dir, n));
    await assert.rejects(DiskStorage.open(dir, PEERS, quiet), /snapshots but no write-ahead log/);
  }));

test('a rewrite below the start of the oldest remaining segment replays correctly', () =>
  withDir(async (dir) => {
    // seg 1: entries 1..5; seg 2 starts at last index 5 and holds 6..8, then a new leader's entries 4 and 5
    // (truncating 6..8); compaction to 5 deletes seg 1, so replay starts from seg 2's header.
    const s = await DiskStorage.open(dir, PEERS, { ...quiet, segmentBytes: 500 });
    const model = new MemoryStorage(PEERS);
    const ops = [
      { entries: [1, 2, 3, 4, 5].map((i) => ent(i, 1, 30)) },
      { entries: [6, 7, 8].map((i) => ent(i, 1, 8)) },
      { entries: [ent(4, 2, 8)] },
      { entries: [ent(5, 2, 8)], hardState: { term: 2, vote: 2, commit: 5 } },
    ];
    for (const u of ops) {
      model.saveSync(u);
      await s.save(u);
    }
    assert.equal(s.segmentNames().length, 2);
    model.createSnapshotSync(5, PEERS, new Uint8Array([5]));
    await s.createSnapshot(5, PEERS, new Uint8Array([5]));
    model.compactSync(5);
    await s.compact(5);
    assert.deepEqual(s.segmentNames(), ['wal-0000000002-00000000000000000006.log']);
    assert.equal(fingerprint(s), fingerprint(model));
    await s.close();
    const again = await DiskStorage.open(dir, PEERS, { ...quiet, segmentBytes: 500 });
    assert.equal(fingerprint(again), fingerprint(model));
    await again.save({ entries: [ent(6, 2, 8)] });
    await again.close();
  }));
