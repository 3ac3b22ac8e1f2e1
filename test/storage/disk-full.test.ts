/** A full disk: the log stalls (nothing acknowledged), is never damaged, and resumes once there is room. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskStorage } from '../../src/storage/disk.js';
import { FaultyFileSystem } from '../../src/storage/faulty-fs.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import type { Entry } from '../../src/raft/types.js';
import { PEERS, fingerprint } from './helpers.js';

const ent = (index: number, term: number, size = 200): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array(size).fill(index & 0xff),
});

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const segmentBytes of [64 * 1024 * 1024, 4096]) {
  const what = segmentBytes === 4096 ? 'with segment rolls' : 'in one segment';
  test(`a full disk stalls the log, damages nothing, and writes resume when space returns (${what})`, async () => {
    const fs = new FaultyFileSystem();
    const logs: string[] = [];
    const opts = { fs, segmentBytes, preallocateBytes: 0, log: (m: string) => logs.push(m) };
    const s = await DiskStorage.open('/data', PEERS, opts);
    const model = new MemoryStorage(PEERS);
    let next = 1;
    const save = (n: number) => {
      const entries = Array.from({ length: n }, () => ent(next, 1, 200 + (next++ % 7) * 50));
      const u = { entries, hardState: { term: 1, vote: 1, commit: next - 1 } };
      model.saveSync(u);
      return s.save(u);
    };
    await save(20);
    // The disk fills up: 1.5 KiB left, then batches that need more.
    fs.capacity = fs.list().reduce((n, p) => n + fs.size(p), 0) + 1536;
    let resolved = 0;
    const pending = [save(10), save(10), save(5)].map((p) => p.then(() => resolved++));
    await settle(300);
    assert.equal(resolved, 0, 'nothing is acknowledged while the disk is full');
    assert.ok(s.stats().diskFull !== null, 'the stall is reported');
    assert.ok(s.stats().noSpaceRetries >= 2, `retried ${s.stats().noSpaceRetries} times`);
    assert.ok(
      logs.some((l) => /disk is full/.test(l)),
      logs.join('\n'),
    );
    // Memory already holds the queued entries (the core reads them), as with a slow disk.
    assert.equal(s.lastIndex(), next - 1);
    // A restart now (the process dies while the disk is full) finds an undamaged log: what was durable,
    // possibly followed by a torn tail, which the scan cuts off.
    const crashed = await DiskStorage.open('/data', PEERS, { ...opts, fs: fs.clone() });
    assert.ok(crashed.lastIndex() >= 20 && crashed.lastIndex() <= next - 1, `recovered ${crashed.lastIndex()}`);
    for (let i = 1; i <= crashed.lastIndex(); i++) assert.equal(crashed.term(i), 1);
    await crashed.close();
    // Space returns: the same writes go through, in order, and everything is durable.
    fs.capacity = Number.POSITIVE_INFINITY;
    await Promise.all(pending);
    assert.equal(resolved, 3);
    assert.equal(s.stats().diskFull, null);
    assert.ok(
      logs.some((l) => /room again/.test(l)),
      logs.join('\n'),
    );
    await save(3);
    assert.equal(fingerprint(s), fingerprint(model));
    await s.close();
    const again = await DiskStorage.open('/data', PEERS, opts);
    assert.equal(fingerprint(again), fingerprint(model), 'the log read back equals what was acknowledged');
    await again.close();
  });
}

test('a snapshot written while the disk is full waits too, and closing while stalled refuses the rest', async () => {
  const fs = new FaultyFileSystem();
  const opts = { fs, preallocateBytes: 0, log: () => {} };
  const s = await DiskStorage.open('/data', PEERS, opts);
  await s.save({
    entries: Array.from({ length: 10 }, (_, i) => ent(i + 1, 1)),
    hardState: { term: 1, vote: 1, commit: 10 },
  });
  fs.capacity = fs.list().reduce((n, p) => n + fs.size(p), 0) + 100;
  let snapDone = false;
  const snap = s.createSnapshot(8, PEERS, new Uint8Array(4096).fill(3)).then(() => (snapDone = true));
  await settle(200);
  assert.equal(snapDone, false);
  fs.capacity = Number.POSITIVE_INFINITY;
  await snap;
  assert.equal(s.snapshot().metadata.index, 8);
  // Full again: a save waits; closing the storage then refuses it instead of hanging.
  fs.capacity = fs.list().reduce((n, p) => n + fs.size(p), 0);
  const stuck = s.save({ entries: [ent(11, 1)] });
  await settle(120);
  await s.close();
  await assert.rejects(stuck, /closed while the disk was full/);
  fs.capacity = Number.POSITIVE_INFINITY;
  const again = await DiskStorage.open('/data', PEERS, opts);
  assert.equal(again.lastIndex(), 10);
  assert.equal(again.snapshot().metadata.index, 8);
  await again.close();
});
