import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand, type Command } from '../../src/kv/commands.js';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { WatchHistory, type KvChange } from '../../src/kv/watch.js';

const put = (key: string, value: number): Command => ({ op: 'put', key, value });

test('the state machine reports every put and delete with its revision; a transaction shares one', () => {
  const kv = new KvStateMachine();
  const h = new WatchHistory(0);
  kv.observe(h);
  kv.apply(1, encodeCommand(put('a', 1)));
  kv.apply(2, encodeCommand(put('a', 2)));
  kv.apply(3, encodeCommand({ op: 'delete', key: 'a' }));
  kv.apply(4, encodeCommand({ op: 'delete', key: 'missing' }));
  const txn: Command = {
    op: 'txn',
    compare: [],
    success: [
      { op: 'put', key: 'b', value: 1 },
      { op: 'put', key: 'c', value: 2 },
    ],
    failure: [],
  };
  kv.apply(5, encodeCommand(txn));
  const all = h.since(0, '');
  assert.deepEqual(
    all.map((c) => [c.type, c.key, c.revision, c.version, c.value]),
    [
      ['put', 'a', 1, 1, 1],
      ['put', 'a', 2, 2, 2],
      ['delete', 'a', 3, 2, undefined],
      ['put', 'b', 5, 1, 1],
      ['put', 'c', 5, 1, 2],
    ],
  );
  assert.deepEqual(
    h.since(2, 'c').map((c) => c.key),
    ['c'],
  );
  assert.equal(h.compactRevision, 0);
  assert.equal(h.lastRevision, 5);
});

test('a bounded history drops whole revisions and says up to which revision it dropped', () => {
  const h = new WatchHistory(10, { maxChanges: 4 });
  const change = (key: string, revision: number): KvChange => ({ type: 'put', key, value: 0, revision, version: 1 });
  h.change(change('a', 11), 1);
  h.change(change('b', 12), 1);
  h.change(change('c', 12), 1);
  h.change(change('d', 13), 1);
  assert.equal(h.compactRevision, 10);
  h.change(change('e', 14), 1); // 5 > 4: revision 11 goes
  assert.equal(h.compactRevision, 11);
  h.change(change('f', 15), 1); // 5 > 4: revision 12 goes, both of its changes
  assert.equal(h.compactRevision, 12);
  assert.equal(h.length, 3);
  assert.deepEqual(
    h.since(12, '').map((c) => c.key),
    ['d', 'e', 'f'],
  );
  // A page never splits a revision.
  const g = new WatchHistory(0);
  for (const [k, r] of [
    ['x', 1],
    ['y', 2],
    ['z', 2],
  ] as const)
    g.change(change(k, r), 1);
  assert.deepEqual(
    g.since(0, '', 2).map((c) => c.key),
    ['x', 'y', 'z'],
  );
});

test('a byte bound drops old revisions too; a snapshot restore clears the history at its index', () => {
  const kv = new KvStateMachine();
  const h = new WatchHistory(0, { maxBytes: 4096 });
  kv.observe(h);
  for (let i = 1; i <= 20; i++) kv.apply(i, encodeCommand({ op: 'put', key: `k${i}`, value: 'x'.repeat(1000) }));
  assert.ok(h.compactRevision >= 15, `compact ${h.compactRevision}`);
  assert.ok(h.length >= 1 && h.length <= 4);
  const snap = kv.snapshot();
  const other = new KvStateMachine();
  const h2 = new WatchHistory(0);
  other.observe(h2);
  other.apply(1, encodeCommand(put('old', 1)));
  const resets: number[] = [];
  h2.subscribe({ changed() {}, reset: (r) => resets.push(r) });
  other.restore(snap);
  assert.equal(h2.compactRevision, 20);
  assert.equal(h2.length, 0);
  assert.deepEqual(resets, [20]);
});
