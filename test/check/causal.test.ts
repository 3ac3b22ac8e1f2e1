import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCausal, formatCausalReport, type CausalOp } from '../../src/check/causal.js';

const put = (client: string, key: string, value: string): CausalOp => ({ client, type: 'put', key, value });
const get = (client: string, key: string, value: string | null): CausalOp => ({ client, type: 'get', key, value });
const del = (client: string, key: string, id: string): CausalOp => ({ client, type: 'delete', key, value: id });

test('a causally consistent history has no violations', () => {
  const h: CausalOp[] = [
    put('a', 'x', 'x1'),
    get('b', 'x', null), // b has not seen x1 yet: fine, nothing in its past
    get('b', 'x', 'x1'),
    put('b', 'y', 'y1'), // y1 depends on x1
    get('c', 'y', 'y1'),
    get('c', 'x', 'x1'), // c sees the cause of y1
    put('a', 'x', 'x2'),
    put('c', 'x', 'x3'), // concurrent with x2
    get('a', 'x', 'x3'), // either concurrent write may win
    get('a', 'x', 'x3'),
    del('b', 'x', 'd1'),
    get('b', 'x', null),
    get('c', 'x', 'x3'), // c has not seen d1
  ];
  const r = checkCausal(h);
  assert.equal(r.violations.length, 0, formatCausalReport(r));
  assert.deepEqual([r.ops, r.reads, r.writes], [13, 8, 5]);
});

test('read-your-writes: a client misses its own write', () => {
  const r = checkCausal([put('a', 'x', 'x1'), put('a', 'x', 'x2'), get('a', 'x', 'x1')]);
  assert.equal(r.counts['read-your-writes'], 1);
  assert.equal(r.violations[0]!.client, 'a');
  assert.equal(r.violations[0]!.index, 2);
  const r2 = checkCausal([put('a', 'x', 'x1'), get('a', 'x', null)]);
  assert.equal(r2.counts['read-your-writes'], 1);
});

test('monotonic reads: a client goes back to an older value', () => {
  const r = checkCausal([put('a', 'x', 'x1'), put('a', 'x', 'x2'), get('b', 'x', 'x2'), get('b', 'x', 'x1')]);
  assert.deepEqual(
    r.violations.map((v) => [v.kind, v.client, v.index]),
    [['monotonic-reads', 'b', 1]],
  );
  const r2 = checkCausal([put('a', 'x', 'x1'), get('b', 'x', 'x1'), get('b', 'x', null)]);
  assert.equal(r2.counts['monotonic-reads'], 1);
});

test('writes-follow-reads: an effect seen without its cause', () => {
  const h = [
    put('a', 'x', 'x1'),
    put('a', 'x', 'x2'),
    get('b', 'x', 'x2'),
    put('b', 'y', 'y1'), // y1 depends on x2
    get('c', 'y', 'y1'),
    get('c', 'x', 'x1'), // c sees y1 but an x older than its cause
  ];
  const r = checkCausal(h);
  assert.equal(r.counts['writes-follow-reads'], 1, formatCausalReport(r));
  // The same history where c reads the cause is fine.
  const ok = checkCausal([...h.slice(0, 5), get('c', 'x', 'x2')]);
  assert.equal(ok.violations.length, 0);
  // And without the dependency (b did not read x2 before writing), seeing x1 is allowed.
  const conc = checkCausal([
    put('a', 'x', 'x1'),
    put('a', 'x', 'x2'),
    put('b', 'y', 'y1'),
    get('c', 'y', 'y1'),
    get('c', 'x', 'x1'),
  ]);
  assert.equal(conc.violations.length, 0);
});

test('deletes: not found is explained by a delete that is not older than the put', () => {
  // The delete is concurrent with x1, so a read in x1's causal future may still find nothing.
  const ok = checkCausal([del('b', 'x', 'd1'), put('a', 'x', 'x1'), get('a', 'x', null)]);
  assert.equal(ok.violations.length, 0);
  // The only delete precedes x1 (a saw it): not found after x1 is stale.
  const bad = checkCausal([
    put('b', 'x', 'x0'),
    del('b', 'x', 'd1'),
    put('b', 'z', 'z1'),
    get('a', 'z', 'z1'),
    put('a', 'x', 'x1'),
    get('a', 'x', null),
  ]);
  assert.equal(bad.counts['read-your-writes'], 1, formatCausalReport(bad));
  // A value read after a delete that overwrote it in the reader's past is stale.
  const stale = checkCausal([put('a', 'x', 'x1'), del('a', 'x', 'd1'), get('a', 'x', 'x1')]);
  assert.equal(stale.counts['read-your-writes'], 1);
});

test('unknown values and cycles are reported', () => {
  const r = checkCausal([put('a', 'x', 'x1'), get('b', 'x', 'nope'), get('b', 'y', 'x1')]);
  assert.equal(r.counts['unknown-value'], 2);
  const cyc = checkCausal([get('a', 'x', 'x1'), put('a', 'x', 'x1')]);
  assert.equal(cyc.counts['causal-cycle'], 1);
  const cyc2 = checkCausal([get('a', 'x', 'y1'), put('a', 'x', 'x1'), get('b', 'x', 'x1'), put('b', 'x', 'y1')]);
  assert.equal(cyc2.counts['causal-cycle'], 1);
});

test('indeterminate writes may be read but must end their session; malformed histories throw', () => {
  const r = checkCausal([{ ...put('a', 'x', 'x1'), indeterminate: true }, get('b', 'x', 'x1')]);
  assert.equal(r.violations.length, 0);
  assert.throws(() => checkCausal([{ ...put('a', 'x', 'x1'), indeterminate: true }, get('a', 'x', 'x1')]), /last/);
  assert.throws(() => checkCausal([put('a', 'x', 'v'), put('b', 'y', 'v')]), /not unique/);
});

test('checking a long random serial history finds nothing (the store of a single copy is causal)', () => {
  // One copy of the data, updated in a single global order: every read sees the latest write, always causal.
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const store = new Map<string, string>();
  const h: CausalOp[] = [];
  for (let i = 0; i < 3000; i++) {
    const client = `c${rnd(6)}`;
    const key = `k${rnd(4)}`;
    const t = rnd(10);
    if (t < 4) {
      h.push(put(client, key, `v${i}`));
      store.set(key, `v${i}`);
    } else if (t < 5) {
      h.push(del(client, key, `d${i}`));
      store.delete(key);
    } else h.push(get(client, key, store.get(key) ?? null));
  }
  const r = checkCausal(h);
  assert.equal(r.violations.length, 0, formatCausalReport(r));
  assert.equal(r.ops, 3000);
});
