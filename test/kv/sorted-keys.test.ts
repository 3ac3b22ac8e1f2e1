import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SortedKeys } from '../../src/kv/sorted-keys.js';

test('SortedKeys matches a sorted model across chunk splits and merges', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 2500 })), {
        minLength: 1000,
        maxLength: 4000,
      }),
      fc.integer({ min: 0, max: 2600 }),
      (ops, startRaw) => {
        const s = new SortedKeys();
        const model = new Set<string>();
        for (const [kind, n] of ops) {
          const k = `k${n}`;
          if (kind < 7) {
            if (!model.has(k)) {
              s.insert(k);
              model.add(k);
            }
          } else {
            s.delete(k);
            model.delete(k);
          }
        }
        const sorted = [...model].sort();
        assert.equal(s.size, model.size);
        assert.deepEqual([...s], sorted);
        const start = `k${startRaw}`;
        assert.deepEqual(
          [...s.from(start)],
          sorted.filter((k) => k >= start),
        );
        assert.deepEqual([...SortedKeys.fromSorted(sorted)], sorted);
      },
    ),
    { numRuns: 30 },
  );
});

test('SortedKeys: empty set, deleting absent keys, scanning past the end', () => {
  const s = new SortedKeys();
  assert.deepEqual([...s.from('a')], []);
  s.delete('x');
  s.insert('b');
  s.insert('a');
  s.delete('c');
  assert.deepEqual([...s], ['a', 'b']);
  assert.deepEqual([...s.from('bb')], []);
  assert.deepEqual([...s.from('')], ['a', 'b']);
  s.delete('a');
  s.delete('b');
  assert.equal(s.size, 0);
  assert.deepEqual([...s], []);
});
