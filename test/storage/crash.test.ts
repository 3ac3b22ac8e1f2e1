/**
 * Crash consistency: torn tails at every byte offset (appended logs) and at every sector (preallocated
 * logs), single bit flips anywhere, and power cuts that discard every write not yet fsynced while
 * operations are in flight.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DiskStorage } from '../../src/storage/disk.js';
import { FaultyFileSystem } from '../../src/storage/faulty-fs.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { WalCorruptionError } from '../../src/storage/wal.js';
import { SEGMENT_RECORD_SIZE } from '../../src/storage/records.js';
import { SECTOR_BYTES } from '../../src/storage/wal-scan.js';
import { PEERS, Workload, applyRecordwise, fingerprint, rng, type Op } from './helpers.js';

const DIR = '/data/n1';

function run(storage: DiskStorage, op: Op): Promise<unknown> {
  if (op.kind === 'save') return storage.save(op);
  if (op.kind === 'createSnapshot') return storage.createSnapshot(op.index, PEERS, op.data);
  return storage.compact(op.index);
}

/** Splits an op into operations that each write exactly one WAL record. */
function singleRecordOps(op: Op): Op[] {
  if (op.kind !== 'save') return [op];
  const out: Op[] = [];
  if (op.snapshot) out.push({ kind: 'save', entries: [], snapshot: op.snapshot });
  for (const e of op.entries) out.push({ kind: 'save', entries: [e] });
  if (op.hardState) out.push({ kind: 'save', entries: [], hardState: op.hardState });
  return out;
}

interface Boundary {
  readonly segment: string;
  readonly size: number;
  readonly fp: string;
}

/**
 * Runs single-record operations, noting after each the last segment and the bytes of records in it, and
 * the model state.
 */
async function recordHistory(seed: number, ops: number, segmentBytes: number, preallocateBytes: number) {
  const fs = new FaultyFileSystem();
  const disk = await DiskStorage.open(DIR, PEERS, { fs, segmentBytes, preallocateBytes, log: () => {} });
  const model = new MemoryStorage(PEERS);
  const gen = new Workload(model, rng(seed));
  const boundaries: Boundary[] = [];
  const note = () => {
    const segment = disk.segmentNames().at(-1) as string;
    boundaries.push({ segment, size: disk.activeSegmentBytes(), fp: fingerprint(model) });
  };
  note();
  for (let i = 0; i < ops; i++) {
    for (const op of singleRecordOps(gen.next())) {
      const before = fingerprint(model);
      const states = applyRecordwise(model, op);
      await run(disk, op);
      if (states.length === 0 || states.at(-1) === before) continue; // wrote nothing
      note();
    }
  }
  assert.equal(fingerprint(disk), fingerprint(model));
  await disk.close();
  return { fs, boundaries };
}

/** Cutting records that were long durable can remove what later steps relied on (see the first test). */
function unrecoverable(fs: FaultyFileSystem, expected: string): boolean {
  const snap = JSON.parse(expected).snap as { index: number; term: number };
  const snapFile = `${DIR}/snap-${String(snap.index).padStart(20, '0')}-${String(snap.term).padStart(20, '0')}.snap`;
  return snap.index > 0 && !fs.list().includes(snapFile);
}

/** The repaired log keeps working: one more save, and it is there after a restart. */
async function extendAndReopen(disk: DiskStorage, fs: FaultyFileSystem, tag: number, options: object): Promise<void> {
  const e = { index: disk.lastIndex() + 1, term: 99, type: 'normal' as const, data: new Uint8Array([tag & 0xff]) };
  await disk.save({ entries: [e], hardState: { term: 99, vote: 1, commit: 0 } });
  const extended = fingerprint(disk);
  await disk.close();
  const again = await DiskStorage.open(DIR, PEERS, { fs, ...options, log: () => {} });
  assert.equal(fingerprint(again), extended);
  await again.close();
}

test('a cut at every byte offset of the last segment recovers exactly the records before the cut', async () => {
  for (const seed of [1, 2]) {
    const { fs, boundaries } = await recordHistory(seed, 60, 1500, 0);
    const last = boundaries.at(-1) as Boundary;
    const path = `${DIR}/${last.segment}`;
    const inLast = boundaries.filter((b) => b.segment === last.segment);
    const before = boundaries.filter((b) => b.segment !== last.segment).at(-1);
    assert.ok(before, 'the history spans several segments');
    assert.ok(inLast.length >= 3, 'the last segment holds several records');
    for (let cut = 0; cut <= last.size; cut++) {
      const copy = fs.clone();
      copy.cut(path, cut);
      const notes: string[] = [];
      const done = inLast.filter((b) => b.size <= cut).at(-1);
      const expected: string = (done ?? before).fp;
      // Cutting records that were long durable can remove what later steps relied on: the segments
      // deleted after a compaction, or the snapshot files pruned after newer ones. Recovery must then
      // refuse rather than return some other state.
      if (!done && cut < SEGMENT_RECORD_SIZE && !fs.list().includes(`${DIR}/${before.segment}`)) {
        await assert.rejects(
          DiskStorage.open(DIR, PEERS, { fs: copy, log: () => {} }),
          new RegExp(`${last.segment} is damaged at offset 0`),
        );
        continue;
      }
      if (unrecoverable(fs, expected)) {
        await assert.rejects(DiskStorage.open(DIR, PEERS, { fs: copy, log: () => {} }), /snapshot .* cannot recover/);
        continue;
      }
      const options = { segmentBytes: 1500, preallocateBytes: 0 };
      const disk = await DiskStorage.open(DIR, PEERS, { fs: copy, ...options, log: (m) => notes.push(m) });
      assert.equal(fingerprint(disk), expected, `cut at ${cut}`);
      const validEnd = done ? done.size : cut >= SEGMENT_RECORD_SIZE ? SEGMENT_RECORD_SIZE : 0;
      if (validEnd === 0) {
        assert.match(notes.join('\n'), new RegExp(`${last.segment}: incomplete segment header`));
      } else if (validEnd < cut) {
        assert.match(notes.join('\n'), new RegExp(`${last.segment}: torn record at offset ${validEnd}`));
        assert.equal(copy.size(path), validEnd, 'the torn tail is truncated');
      } else {
        assert.ok(!notes.some((n) => /torn|incomplete/.test(n)), notes.join('\n'));
      }
      if (cut % 97 === 0) await extendAndReopen(disk, copy, cut, options);
      else await disk.close();
    }
  }
});

test('preallocated log: a write torn at any sector recovers exactly the records before it', async () => {
  const options = { segmentBytes: 1 << 20, preallocateBytes: 4096 };
  const fs = new FaultyFileSystem();
  const disk = await DiskStorage.open(DIR, PEERS, { fs, ...options, log: () => {} });
  const model = new MemoryStorage(PEERS);
  const rand = rng(7);
  // Single-record saves (entries of 0-300 bytes, none of them zero, and hard states); after each, the
  // bytes of records in the segment and the state they hold.
  const boundaries: { size: number; fp: string }[] = [{ size: disk.activeSegmentBytes(), fp: fingerprint(model) }];
  for (let i = 1; i <= 61; i++) {
    const size = i === 61 ? 100 : Math.floor(rand() * 300); // the last record: an entry with data
    const data = Uint8Array.from({ length: size }, () => 1 + Math.floor(rand() * 255));
    const updates = [{ entries: [{ index: i, term: 1 + (i >> 3), type: 'normal' as const, data }] }];
    if (i % 3 === 0) updates.push({ entries: [], hardState: { term: 1 + (i >> 3), vote: 1, commit: i - 1 } } as never);
    for (const u of updates) {
      model.saveSync(u);
      await disk.save(u);
      boundaries.push({ size: disk.activeSegmentBytes(), fp: fingerprint(model) });
    }
  }
  await disk.close();
  const path = `${DIR}/${disk.segmentNames()[0]}`;
  const end = (boundaries.at(-1) as { size: number }).size;
  assert.ok(fs.size(path) > end, 'the segment is preallocated beyond its records');
  let torn = 0;
  for (let s = SECTOR_BYTES; s < end; s += SECTOR_BYTES) {
    // The sectors from s on never reached the disk: they still hold the preallocated zeros.
    const copy = fs.clone();
    copy.zero(path, s, end);
    const done = boundaries.filter((b) => b.size <= s).at(-1) as { size: number; fp: string };
    const notes: string[] = [];
    const again = await DiskStorage.open(DIR, PEERS, { fs: copy, ...options, log: (m) => notes.push(m) });
    assert.equal(fingerprint(again), done.fp, `torn at sector ${s}`);
    if (done.size < s) {
      torn++;
      assert.match(notes.join('\n'), new RegExp(`torn record at offset ${done.size} .*write cut short`));
    } else {
      assert.deepEqual(notes, [], 'zeros at a record boundary are just the end of the log');
    }
    await extendAndReopen(again, copy, s, options);
  }
  assert.ok(torn > 10, `torn ${torn}`);
  // Zeros that end inside one sector are no torn write (sectors are written whole): damage, refused.
  const lastStart = (boundaries.at(-2) as { size: number }).size;
  let refused = 0;
  for (
    let to = end - 2;
    to > lastStart && Math.floor(to / SECTOR_BYTES) === Math.floor((end - 1) / SECTOR_BYTES);
    to--
  ) {
    const copy = fs.clone();
    copy.zero(path, to, end - 1); // the record's last byte stays: the zeros are inside it
    await assert.rejects(
      DiskStorage.open(DIR, PEERS, { fs: copy, ...options, log: () => {} }),
      new RegExp(`is damaged at offset ${lastStart}: record (header )?checksum mismatch`),
    );
    refused++;
  }
  assert.ok(refused > 0);
});

test('a single flipped bit anywhere is refused with file and offset, or survived via the previous snapshot', async () => {
  const fs = new FaultyFileSystem();
  const disk = await DiskStorage.open(DIR, PEERS, { fs, segmentBytes: 1200, log: () => {} });
  const model = new MemoryStorage(PEERS);
  const ent = (index: number) => ({
    index,
    term: 1 + (index >> 4),
    type: 'normal' as const,
    data: new Uint8Array(20).fill(index),
  });
  for (let i = 1; i <= 60; i++) {
    const update = { entries: [ent(i)], hardState: { term: 1 + (i >> 4), vote: 1, commit: i } };
    model.saveSync(update);
    await disk.save(update);
    if (i === 20 || i === 45) {
      const data = new Uint8Array(40).fill(i);
      model.createSnapshotSync(i, PEERS, data);
      await disk.createSnapshot(i, PEERS, data);
    }
    if (i === 30) {
      model.compactSync(20);
      await disk.compact(20);
    }
  }
  const full = fingerprint(model);
  await disk.close();
  const fallbackSnap = JSON.stringify({ index: 20, term: 2, peers: PEERS, data: Buffer.alloc(40, 20).toString('hex') });
  const files = fs.list();
  assert.ok(files.filter((f) => f.endsWith('.log')).length >= 3);
  const rand = rng(42);
  let refused = 0;
  let fellBack = 0;
  for (let i = 0; i < 400; i++) {
    const file = files[Math.floor(rand() * files.length)];
    const offset = Math.floor(rand() * fs.size(file));
    const bit = Math.floor(rand() * 8);
    const copy = fs.clone();
    copy.flipBit(file, offset, bit);
    const name = file.slice(DIR.length + 1);
    const notes: string[] = [];
    let opened: DiskStorage;
    try {
      opened = await DiskStorage.open(DIR, PEERS, { fs: copy, log: (m) => notes.push(m) });
    } catch (e) {
      refused++;
      assert.ok(e instanceof Error);
      if (name.endsWith('.log')) {
        assert.ok(e instanceof WalCorruptionError, `${name}@${offset}: ${e.message}`);
        assert.equal(e.file, name);
        assert.match(e.message, new RegExp(`${name} is damaged at offset \\d+`));
      } else {
        assert.match(e.message, /snapshot .* cannot recover/);
      }
      continue;
    }
    assert.ok(!name.endsWith('.log'), `a flipped bit in ${name}@${offset} was not detected`);
    const got = JSON.parse(fingerprint(opened));
    if (name.includes('-00000000000000000045-')) {
      fellBack++;
      assert.match(
        notes.join('\n'),
        /is damaged: .*setting it aside as .*\.broken.*\n?.*falling back to the previous snapshot/s,
      );
      assert.equal(JSON.stringify(got.snap), fallbackSnap);
      got.snap = JSON.parse(full).snap;
    }
    assert.equal(JSON.stringify(got), full, `flip in ${name}@${offset}`);
    await opened.close();
  }
  assert.ok(refused > 200 && fellBack > 0, `refused ${refused}, fell back ${fellBack}`);
});

// Appended logs tear at any byte (the file size); preallocated ones only at sectors, so they need more
// runs for as many torn writes.
for (const [what, preallocateBytes, runs, minTorn] of [
  ['appended', 0, 150, 5],
  ['preallocated', 2048, 300, 1],
] as const) {
  test(`a power cut loses nothing that was reported durable (${what} log; un-fsynced writes lost or torn)`, () =>
    powerCuts(preallocateBytes, runs, minTorn));
}

async function powerCuts(preallocateBytes: number, runs: number, minTorn: number): Promise<void> {
  let crashes = 0;
  let beyondAck = 0; // runs where writes not yet acknowledged had reached the disk
  let torn = 0; // runs where recovery cut a torn record
  await fc.assert(
    fc.asyncProperty(fc.integer(), fc.integer({ min: 400, max: 4000 }), async (seed, segmentBytes) => {
      const rand = rng(seed ^ 0x5bd1e995);
      const fs = new FaultyFileSystem();
      const disk = await DiskStorage.open(DIR, PEERS, { fs, segmentBytes, preallocateBytes, log: () => {} });
      const model = new MemoryStorage(PEERS);
      const gen = new Workload(model, rng(seed));
      const states = [fingerprint(model)];
      let acked = 0;
      for (let round = 0; round < 60 && rand() > 0.03; round++) {
        const n = 1 + Math.floor(rand() * 6);
        for (let i = 0; i < n; i++) {
          const op = gen.next();
          states.push(...applyRecordwise(model, op));
          const end = states.length - 1;
          run(disk, op).then(
            () => (acked = Math.max(acked, end)),
            () => undefined,
          );
        }
        const turns = Math.floor(rand() * 4);
        for (let t = 0; t < turns; t++) await new Promise((r) => setImmediate(r));
      }
      crashes++;
      const after = fs.crash({ keepUnsynced: (_, extra) => (rand() < 0.5 ? 0 : rand() * (extra + 1)) });
      const notes: string[] = [];
      const options = { segmentBytes, preallocateBytes, log: (m: string) => notes.push(m) };
      const recovered = await DiskStorage.open(DIR, PEERS, { fs: after, ...options });
      const fp = fingerprint(recovered);
      const j = states.lastIndexOf(fp);
      assert.ok(j >= acked, `recovered state #${j} is older than the last acknowledged #${acked}`);
      if (j > acked) beyondAck++;
      if (notes.some((n) => n.includes('torn record'))) torn++;
      await recovered.close();
    }),
    { numRuns: runs },
  );
  assert.equal(crashes, runs);
  assert.ok(
    beyondAck > 2 && torn >= minTorn,
    `beyond ack ${beyondAck}, torn ${torn}: the crashes hit in-flight writes`,
  );
}

test('a failed fdatasync fails the storage; after the crash only acknowledged data is there', async () => {
  const fs = new FaultyFileSystem();
  const disk = await DiskStorage.open(DIR, PEERS, { fs, log: () => {} });
  const e = (index: number) => ({ index, term: 1, type: 'normal' as const, data: new Uint8Array([index]) });
  await disk.save({ entries: [e(1), e(2)], hardState: { term: 1, vote: 1, commit: 1 } });
  const good = fingerprint(disk);
  fs.failNextSyncs = 1;
  await assert.rejects(disk.save({ entries: [e(3)] }), /EIO/);
  await assert.rejects(disk.save({ entries: [e(4)] }), /storage has failed/);
  const recovered = await DiskStorage.open(DIR, PEERS, { fs: fs.crash(), log: () => {} });
  assert.equal(fingerprint(recovered), good);
  await recovered.close();
});

test('a failed preallocation is logged and the log goes on growing with its writes', async () => {
  const fs = new FaultyFileSystem();
  const notes: string[] = [];
  const disk = await DiskStorage.open(DIR, PEERS, { fs, preallocateBytes: 4096, log: (m) => notes.push(m) });
  fs.failNextSyncs = 1; // the zero-filling that opening started (say, the disk is full)
  const e = (index: number) => ({ index, term: 1, type: 'normal' as const, data: new Uint8Array(100).fill(index) });
  for (let i = 1; i <= 60; i++) await disk.save({ entries: [e(i)], hardState: { term: 1, vote: 1, commit: i } });
  assert.match(notes.join('\n'), /wal: preallocation stopped: EIO/);
  assert.equal(disk.stats().preallocations, 0);
  const segment = `${DIR}/${disk.segmentNames()[0]}`;
  assert.equal(fs.size(segment), disk.activeSegmentBytes(), 'no zeros ahead: the file grows with the log');
  const good = fingerprint(disk);
  const recovered = await DiskStorage.open(DIR, PEERS, { fs: fs.crash(), log: () => {} });
  assert.equal(fingerprint(recovered), good);
  await recovered.close();
});
