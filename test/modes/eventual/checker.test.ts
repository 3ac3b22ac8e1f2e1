import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalJson,
  compareSnapshots,
  findLostWrites,
  type AckedWrite,
  type FinalRecord,
} from '../../../src/check/convergence.js';

const cmp = (a: number, b: number) => a - b;

test('convergence checker: canonical JSON ignores key order; divergent and missing keys are reported', () => {
  assert.equal(canonicalJson({ b: 1, a: [{ y: 2, x: 1 }] }), canonicalJson({ a: [{ x: 1, y: 2 }], b: 1 }));
  const snap = (url: string, entries: [string, unknown][]) => ({
    url,
    nodeId: url,
    records: new Map(entries.map(([k, v]) => [k, canonicalJson(v)])),
  });
  const same = [snap('a', [['k', { value: 1, version: 2 }]]), snap('b', [['k', { version: 2, value: 1 }]])];
  assert.deepEqual(compareSnapshots(same), []);
  const diff = compareSnapshots([
    snap('a', [
      ['k', { value: 1 }],
      ['only-a', { value: 2 }],
    ]),
    snap('b', [['k', { value: 3 }]]),
  ]);
  assert.deepEqual(
    diff.map((d) => d.key),
    ['k', 'only-a'],
  );
  assert.equal(diff[1].byReplica.b, null);
});

test('lost-write check: the latest acknowledged write per key must survive unless a later one replaced it', () => {
  const acked: AckedWrite<number>[] = [
    { key: 'a', value: 'old', deleted: false, order: 1 },
    { key: 'a', value: 'new', deleted: false, order: 5 },
    { key: 'b', value: null, deleted: true, order: 3 },
    { key: 'c', value: 'c1', deleted: false, order: 2 },
  ];
  const good = new Map<string, FinalRecord<number>>([
    ['a', { value: 'new', deleted: false, order: 5 }],
    ['b', { value: null, deleted: true, order: 3 }],
    ['c', { value: 'later, unacknowledged', deleted: false, order: 9 }],
  ]);
  assert.deepEqual(findLostWrites(acked, good, cmp), []);

  const bad = new Map<string, FinalRecord<number>>([
    ['a', { value: 'old', deleted: false, order: 1 }],
    ['b', { value: 'resurrected', deleted: false, order: 2 }],
  ]);
  const lost = findLostWrites(acked, bad, cmp);
  assert.deepEqual(
    lost.map((l) => [l.key, l.expected.value]),
    [
      ['a', 'new'],
      ['b', null],
      ['c', 'c1'],
    ],
  );
  // A delete whose key is simply absent (tombstone purged) is not a loss.
  assert.deepEqual(findLostWrites([acked[2]], new Map(), cmp), []);
});
