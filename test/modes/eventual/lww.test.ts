import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HybridClock, compareHlc, type Hlc } from '../../../src/modes/eventual/hlc.js';
import { LwwStore } from '../../../src/modes/eventual/store.js';

test('HLC: strictly increasing even when the wall clock stalls or goes backwards', () => {
  let now = 1000;
  const c = new HybridClock('a', () => now);
  const stamps: Hlc[] = [c.tick(), c.tick()];
  now = 900;
  stamps.push(c.tick());
  now = 2000;
  stamps.push(c.tick());
  for (let i = 1; i < stamps.length; i++) assert.ok(compareHlc(stamps[i - 1], stamps[i]) < 0);
  assert.deepEqual(stamps[2], { wall: 1000, logical: 2, node: 'a' });
  assert.deepEqual(stamps[3], { wall: 2000, logical: 0, node: 'a' });
});

test('HLC: a local write after observing a remote one orders after it, even if the remote clock is ahead', () => {
  const now = 1000;
  const c = new HybridClock('a', () => now);
  const remote: Hlc = { wall: 5000, logical: 7, node: 'b' };
  c.observe(remote);
  const t = c.tick();
  assert.ok(compareHlc(remote, t) < 0);
  assert.equal(t.wall, 5000);
});

test('HLC: equal wall and logical parts are ordered by node id', () => {
  assert.ok(compareHlc({ wall: 1, logical: 0, node: 'a' }, { wall: 1, logical: 0, node: 'b' }) < 0);
  assert.equal(compareHlc({ wall: 1, logical: 2, node: 'a' }, { wall: 1, logical: 2, node: 'a' }), 0);
  assert.ok(compareHlc({ wall: 2, logical: 0, node: 'a' }, { wall: 1, logical: 9, node: 'z' }) > 0);
});

const writeArb = fc.record({
  key: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'),
  wall: fc.integer({ min: 1, max: 20 }),
  logical: fc.integer({ min: 0, max: 3 }),
  node: fc.constantFrom('r1', 'r2', 'r3'),
  deleted: fc.boolean(),
});

// A timestamp names exactly one write, so the generated writes have distinct timestamps.
const historyArb = fc
  .uniqueArray(writeArb, { maxLength: 60, selector: (w) => `${w.wall}.${w.logical}.${w.node}` })
  .chain((ws) => fc.tuple(fc.constant(ws), fc.shuffledSubarray(ws, { minLength: ws.length, maxLength: ws.length })));

test('LwwStore: any delivery order gives the same records and the same digest; the latest timestamp wins', () => {
  fc.assert(
    fc.property(historyArb, ([writes, permuted]) => {
      const merge = (s: LwwStore, w: (typeof writes)[number]) =>
        s.merge(w.key, {
          value: `${w.key}@${w.wall}.${w.logical}.${w.node}`,
          ts: { wall: w.wall, logical: w.logical, node: w.node },
          deleted: w.deleted,
        });
      const a = new LwwStore(16);
      const b = new LwwStore(16);
      for (const w of writes) merge(a, w);
      for (const w of permuted) merge(b, w);
      assert.deepEqual(a.digest(), b.digest());
      assert.deepEqual(a.differingBuckets(b.digest()), []);
      for (const key of 'abcdefgh') {
        const mine = writes.filter((w) => w.key === key);
        if (mine.length === 0) {
          assert.equal(a.get(key), undefined);
          continue;
        }
        const latest = mine.reduce((m, w) => (compareHlc(m, w) < 0 ? w : m));
        for (const s of [a, b]) {
          assert.equal(s.get(key)?.value, `${key}@${latest.wall}.${latest.logical}.${latest.node}`);
          assert.equal(s.get(key)?.deleted, latest.deleted);
        }
      }
    }),
  );
});

test('LwwStore: a differing record shows up only in its own bucket; tombstone purge keeps the digest consistent', () => {
  const a = new LwwStore(64);
  const b = new LwwStore(64);
  for (let i = 0; i < 200; i++) {
    const rec = { value: i, ts: { wall: 10 + i, logical: 0, node: 'r1' }, deleted: false };
    a.merge(`k${i}`, rec);
    b.merge(`k${i}`, rec);
  }
  b.merge('k7', { value: 'new', ts: { wall: 999, logical: 0, node: 'r2' }, deleted: false });
  assert.deepEqual(a.differingBuckets(b.digest()), [a.bucketOf('k7')]);
  assert.deepEqual(
    b.summary([b.bucketOf('k7')]).find(([k]) => k === 'k7'),
    ['k7', { wall: 999, logical: 0, node: 'r2' }],
  );

  const empty = new LwwStore(64).digest();
  const c = new LwwStore(64);
  c.merge('x', { value: null, ts: { wall: 5, logical: 0, node: 'r1' }, deleted: true });
  c.merge('y', { value: null, ts: { wall: 50, logical: 0, node: 'r1' }, deleted: true });
  assert.equal(c.liveCount, 0);
  assert.equal(c.purgeTombstones(10), 1);
  assert.equal(c.get('x'), undefined);
  assert.equal(c.purgeTombstones(100), 1);
  assert.deepEqual(c.digest(), empty);
});
