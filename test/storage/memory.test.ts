import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../../src/storage/memory.js';
import { CompactedError, UnavailableError } from '../../src/raft/storage.js';
import type { Entry } from '../../src/raft/types.js';

const ent = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index]) });

test('MemoryStorage appends, truncates a conflicting suffix, snapshots and compacts', () => {
  const s = new MemoryStorage([1, 2, 3]);
  assert.equal(s.firstIndex(), 1);
  assert.equal(s.lastIndex(), 0);
  s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
  assert.equal(s.lastIndex(), 3);
  s.append([ent(2, 2)]); // conflict at 2: 3 is dropped
  assert.equal(s.lastIndex(), 2);
  assert.equal(s.term(2), 2);
  assert.throws(() => s.append([ent(5, 2)]), /gap/);
  s.append([ent(3, 2), ent(4, 2)]);
  s.createSnapshotSync(3, [1, 2, 3], new Uint8Array([9]));
  s.compactSync(3);
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.term(3), 2);
  assert.throws(() => s.term(2), CompactedError);
  assert.throws(() => s.term(5), UnavailableError);
  assert.deepEqual(
    s.entries(4, 5, 1).map((e) => e.index),
    [4],
  );
  s.applySnapshot({ metadata: { index: 10, term: 3, peers: [1, 2, 3] }, data: new Uint8Array() });
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.lastIndex(), 10);
  assert.equal(s.term(10), 3);
});
