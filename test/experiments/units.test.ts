import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StalenessTracker, compareOrder } from '../../src/bench/staleness.js';
import { makeValue, seqOfValue } from '../../src/bench/adapters.js';
import { LatencyHistogram } from '../../src/bench/histogram.js';
import { validateLoadOptions } from '../../src/bench/loadgen.js';
import { barChart, lineChart, niceTicks } from '../../src/experiments/svg.js';

test('orders compare lexicographically, missing parts as 0', () => {
  assert.equal(compareOrder([1, 2], [1, 3]), -1);
  assert.equal(compareOrder([2], [1, 9]), 1);
  assert.equal(compareOrder([4], [4, 0]), 0);
});

test('staleness: fresh, stale and versions behind', () => {
  const s = new StalenessTracker();
  // Nothing acknowledged yet: the read is not counted.
  assert.equal(s.observe('a', s.snapshot('a'), undefined), 0);
  s.ack('a', [1]);
  s.ack('a', [3]);
  s.ack('a', [2]); // acks may arrive out of order
  const req = s.snapshot('a');
  assert.deepEqual(req, [3]);
  assert.equal(s.observe('a', req, [3]), 0);
  assert.equal(s.observe('a', req, [1]), 2); // missed 2 and 3
  assert.equal(s.observe('a', req, undefined), 3); // missed every write
  s.ack('a', [4]); // acknowledged after the read was issued: not required of it
  assert.equal(s.observe('a', req, [2]), 1);
  const sum = s.summary();
  assert.equal(sum.reads, 4);
  assert.equal(sum.stale, 3);
  assert.equal(sum.fraction, 0.75);
  assert.equal(sum.meanVersionsBehind, 2);
  assert.equal(sum.maxVersionsBehind, 3);
});

test('generated values carry their per-key sequence and have the requested size', () => {
  const v = makeValue(42, 100);
  assert.equal(v.length, 100);
  assert.equal(seqOfValue(v), 42);
  assert.equal(seqOfValue(makeValue(7, 1)), 7);
  assert.equal(seqOfValue({ not: 'a string' }), undefined);
});

test('latency histogram summarises in milliseconds', () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 100; i++) h.record(i);
  const s = h.summary();
  assert.equal(s.count, 100);
  assert.ok(Math.abs(s.p50Ms - 50) < 0.5, String(s.p50Ms));
  assert.ok(Math.abs(s.p99Ms - 99) < 0.5, String(s.p99Ms));
  assert.ok(s.maxMs >= s.p99Ms);
  assert.deepEqual(new LatencyHistogram().summary().count, 0);
});

test('load options are validated', () => {
  const ok = {
    target: { mode: 'raft' as const, nodes: ['http://127.0.0.1:1'] },
    clients: 1,
    durationMs: 10,
    putRatio: 0.5,
    keys: 1,
    valueSize: 1,
  };
  validateLoadOptions(ok);
  assert.throws(() => validateLoadOptions({ ...ok, clients: 0 }), /clients/);
  assert.throws(() => validateLoadOptions({ ...ok, putRatio: 1.5 }), /put ratio/);
  assert.throws(() => validateLoadOptions({ ...ok, rate: -1 }), /rate/);
});

test('charts: ticks, points and labels', () => {
  assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  const line = lineChart({
    title: 'T <1>',
    xLabel: 'x',
    yLabel: 'y',
    xTicks: [1, 2, 3],
    series: [
      {
        name: 's',
        points: [
          [1, 5],
          [2, 7],
          [3, 6],
        ],
      },
    ],
  });
  assert.match(line, /^<svg /);
  assert.equal((line.match(/<circle /g) ?? []).length, 3);
  assert.match(line, /T &lt;1&gt;/);
  const bars = barChart({
    title: 'B',
    yLabel: 'ms',
    categories: ['a', 'b'],
    series: [
      { name: 'v', values: [1, 2] },
      { name: 'w', values: [3, 4] },
    ],
  });
  assert.equal((bars.match(/<rect x=/g) ?? []).length, 4 + 2); // four bars and two legend swatches
});
