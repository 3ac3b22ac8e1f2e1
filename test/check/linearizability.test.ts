import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable, HistoryError, parseHistory } from '../../src/check/linearizability.js';
import { history, type OpSpec } from './helpers.js';

const check = (specs: OpSpec[]) => checkLinearizable(history(specs));
const accept = (specs: OpSpec[], msg?: string): void => {
  const r = check(specs);
  assert.equal(r.ok, true, msg ?? r.failure?.explanation);
};
const reject = (specs: OpSpec[], msg?: string) => {
  const r = check(specs);
  assert.equal(r.ok, false, msg ?? 'expected a violation');
  assert.equal(r.timedOut, undefined);
  assert.ok(r.failure !== undefined);
  assert.ok(r.failure.ops.length > 0);
  return r.failure;
};

test('sequential histories: correct reads pass, a stale read fails', () => {
  accept([
    { p: 1, f: 'get', out: null, r: 'ok', t: [0, 1] },
    { p: 1, f: 'put', v: 1, r: 'ok', t: [2, 3] },
    { p: 2, f: 'get', out: 1, r: 'ok', t: [4, 5] },
    { p: 1, f: 'put', v: { a: [1, 2] }, r: 'ok', t: [6, 7] },
    { p: 2, f: 'get', out: { a: [1, 2] }, r: 'ok', t: [8, 9] },
  ]);
  const f = reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 1, f: 'put', v: 2, r: 'ok', t: [2, 3] },
    { p: 2, f: 'get', out: 1, r: 'ok', t: [4, 5] },
  ]);
  assert.equal(f.key, 'x');
  assert.match(f.explanation, /key "x" is not linearizable/);
  assert.match(f.explanation, /get → 1/);
  assert.match(f.explanation, /read 1 but the register holds 2/);
});

test('deep equality on values: object key order does not matter', () => {
  accept([
    { p: 1, f: 'put', v: { a: 1, b: 2 }, r: 'ok', t: [0, 1] },
    { p: 2, f: 'get', out: { b: 2, a: 1 }, r: 'ok', t: [2, 3] },
    { p: 2, f: 'cas', v: [{ b: 2, a: 1 }, 'n'], r: 'ok', t: [4, 5] },
    { p: 1, f: 'get', out: 'n', r: 'ok', t: [6, 7] },
  ]);
});

test('a read concurrent with a write may see either value', () => {
  for (const out of [1, 2]) {
    accept([
      { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
      { p: 1, f: 'put', v: 2, r: 'ok', t: [2, 10] },
      { p: 2, f: 'get', out, r: 'ok', t: [3, 4] },
    ]);
  }
});

test('reads that need backtracking: the search tries other orders', () => {
  // put 2 must be linearized before put 1 although put 1 was invoked first
  accept([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 10] },
    { p: 2, f: 'put', v: 2, r: 'ok', t: [1, 10] },
    { p: 3, f: 'get', out: 2, r: 'ok', t: [2, 3] },
    { p: 4, f: 'get', out: 1, r: 'ok', t: [4, 5] },
  ]);
  // two reads after both writes completed disagree: impossible
  reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 10] },
    { p: 2, f: 'put', v: 2, r: 'ok', t: [0, 10] },
    { p: 3, f: 'get', out: 1, r: 'ok', t: [11, 12] },
    { p: 4, f: 'get', out: 2, r: 'ok', t: [11, 12] },
    { p: 3, f: 'get', out: 1, r: 'ok', t: [13, 14] },
  ]);
  // a read that goes back in time: 2 then 1 with sequential reads
  reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 10] },
    { p: 2, f: 'put', v: 2, r: 'ok', t: [0, 10] },
    { p: 3, f: 'get', out: 2, r: 'ok', t: [1, 2] },
    { p: 3, f: 'get', out: 1, r: 'ok', t: [3, 4] },
    { p: 3, f: 'get', out: 2, r: 'ok', t: [5, 6] },
  ]);
});

test('lost write: two cas from the same expected value cannot both succeed', () => {
  const f = reject([
    { p: 1, f: 'put', v: 0, r: 'ok', t: [0, 1] },
    { p: 1, f: 'cas', v: [0, 1], r: 'ok', t: [2, 5] },
    { p: 2, f: 'cas', v: [0, 2], r: 'ok', t: [2, 5] },
    { p: 3, f: 'get', out: 2, r: 'ok', t: [6, 7] },
  ]);
  assert.match(f.explanation, /expected 0/);
  // a put overwritten without ever being observable is not a violation in itself
  accept([
    { p: 1, f: 'put', v: 0, r: 'ok', t: [0, 1] },
    { p: 1, f: 'cas', v: [0, 1], r: 'ok', t: [2, 5] },
    { p: 2, f: 'cas', v: [0, 2], r: 'fail', t: [2, 5] },
    { p: 3, f: 'get', out: 1, r: 'ok', t: [6, 7] },
  ]);
});

test('a read of a value never written is rejected with a clear reason', () => {
  const f = reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 2, f: 'get', out: 42, r: 'ok', t: [2, 3] },
  ]);
  assert.match(f.explanation, /observed 42, a value no operation on this key ever wrote/);
  // a failed put did not write
  reject([
    { p: 1, f: 'put', v: 7, r: 'fail', t: [0, 1] },
    { p: 2, f: 'get', out: 7, r: 'ok', t: [2, 3] },
  ]);
  accept([
    { p: 1, f: 'put', v: 7, r: 'fail', t: [0, 1] },
    { p: 2, f: 'get', out: null, r: 'ok', t: [2, 3] },
  ]);
});

test('cas anomalies: a failed cas is a read of a different value', () => {
  // cas [1, 2] failed although the register certainly held 1
  const f = reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 2, f: 'cas', v: [1, 2], r: 'fail', t: [2, 3] },
  ]);
  assert.match(f.explanation, /did not hold 1/);
  // concurrent with a put of 3, the failure is explained
  accept([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 3, f: 'put', v: 3, r: 'ok', t: [2, 6] },
    { p: 2, f: 'cas', v: [1, 2], r: 'fail', t: [2, 3] },
  ]);
  // a cas succeeded on a value that was already overwritten
  reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 1, f: 'put', v: 2, r: 'ok', t: [2, 3] },
    { p: 2, f: 'cas', v: [1, 5], r: 'ok', t: [4, 5] },
  ]);
  // cas on a missing key expecting null (absent) succeeds; a later read sees the new value
  accept([
    { p: 1, f: 'cas', v: [null, 'a'], r: 'ok', t: [0, 1] },
    { p: 2, f: 'get', out: 'a', r: 'ok', t: [2, 3] },
  ]);
});

test('delete: ok needs an existing key, fail is a read of absence', () => {
  accept([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 1, f: 'delete', r: 'ok', t: [2, 3] },
    { p: 2, f: 'get', out: null, r: 'ok', t: [4, 5] },
    { p: 2, f: 'delete', r: 'fail', t: [6, 7] },
  ]);
  reject([{ p: 1, f: 'delete', r: 'ok', t: [0, 1] }], 'delete ok on a key never written');
  const f = reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 2, f: 'delete', r: 'fail', t: [2, 3] },
  ]);
  assert.match(f.explanation, /found the key absent but the register holds 1/);
  reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 1, f: 'delete', r: 'ok', t: [2, 3] },
    { p: 2, f: 'get', out: 1, r: 'ok', t: [4, 5] },
  ]);
});

test('timed-out (info) writes may take effect later, or never, but not before their invoke', () => {
  // observed long after the timeout: fine
  accept([
    { p: 1, f: 'put', v: 1, r: 'info', t: [0, 1] },
    { p: 2, f: 'get', out: null, r: 'ok', t: [2, 3] },
    { p: 2, f: 'get', out: 1, r: 'ok', t: [100, 101] },
  ]);
  // never observed: fine
  accept([
    { p: 1, f: 'put', v: 1, r: 'info', t: [0, 1] },
    { p: 2, f: 'get', out: null, r: 'ok', t: [200, 201] },
  ]);
  // observed before it was invoked: not linearizable
  reject([
    { p: 2, f: 'get', out: 1, r: 'ok', t: [0, 1] },
    { p: 1, f: 'put', v: 1, r: 'info', t: [2, 3] },
  ]);
  // it takes effect at most once: seen, overwritten, then seen again
  reject([
    { p: 1, f: 'put', v: 1, r: 'info', t: [0, 1] },
    { p: 2, f: 'get', out: 1, r: 'ok', t: [2, 3] },
    { p: 2, f: 'put', v: 2, r: 'ok', t: [4, 5] },
    { p: 2, f: 'get', out: 1, r: 'ok', t: [6, 7] },
  ]);
  // a timed-out cas and delete, observed later
  accept([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 1] },
    { p: 1, f: 'cas', v: [1, 2], r: 'info', t: [2, 3] },
    { p: 2, f: 'get', out: 2, r: 'ok', t: [10, 11] },
    { p: 3, f: 'delete', r: 'info', t: [12, 13] },
    { p: 2, f: 'get', out: null, r: 'ok', t: [20, 21] },
  ]);
  // an invoke with no completion at the end of the history is unknown, like info
  accept([
    { p: 1, f: 'put', v: 5, r: 'open', t: [0, 0] },
    { p: 2, f: 'get', out: 5, r: 'ok', t: [2, 3] },
  ]);
  // failed and timed-out gets constrain nothing
  accept([
    { p: 1, f: 'get', out: 9, r: 'fail', t: [0, 1] },
    { p: 2, f: 'get', r: 'info', t: [0, 1] },
  ]);
});

test('interval edges: touching intervals are concurrent, disjoint ones ordered', () => {
  accept([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 5] },
    { p: 2, f: 'get', out: null, r: 'ok', t: [5, 6] },
  ]);
  reject([
    { p: 1, f: 'put', v: 1, r: 'ok', t: [0, 5] },
    { p: 2, f: 'get', out: null, r: 'ok', t: [6, 7] },
  ]);
  // many concurrent writers, each read sees one of them, the final read agrees with the last read
  const specs: OpSpec[] = [];
  for (let p = 0; p < 12; p++) specs.push({ p, f: 'put', v: p, r: 'ok', t: [0, 100] });
  specs.push({ p: 20, f: 'get', out: 3, r: 'ok', t: [10, 20] });
  specs.push({ p: 20, f: 'get', out: 7, r: 'ok', t: [30, 40] });
  specs.push({ p: 20, f: 'get', out: 11, r: 'ok', t: [101, 102] });
  accept(specs);
  specs.push({ p: 21, f: 'get', out: 3, r: 'ok', t: [103, 104] });
  reject(specs);
});

test('keys are independent; the failing key is named', () => {
  const r = check([
    { p: 1, f: 'put', k: 'a', v: 1, r: 'ok', t: [0, 1] },
    { p: 2, f: 'get', k: 'b', out: null, r: 'ok', t: [2, 3] },
    { p: 1, f: 'put', k: 'b', v: 1, r: 'ok', t: [4, 5] },
    { p: 2, f: 'get', k: 'b', out: null, r: 'ok', t: [6, 7] },
    { p: 2, f: 'get', k: 'a', out: 1, r: 'ok', t: [8, 9] },
  ]);
  assert.equal(r.ok, false);
  assert.equal(r.keys, 2);
  assert.equal(r.checkedOps, 5);
  assert.equal(r.failure?.key, 'b');
  const ok = check([
    { p: 1, f: 'put', k: 'a', v: 1, r: 'ok', t: [0, 1] },
    { p: 2, f: 'get', k: 'b', out: null, r: 'ok', t: [2, 3] },
  ]);
  assert.deepEqual(ok, { ok: true, checkedOps: 2, keys: 2 });
  assert.deepEqual(checkLinearizable([]), { ok: true, checkedOps: 0, keys: 0 });
});

test('a search that cannot finish in time reports timedOut', () => {
  const specs: OpSpec[] = [];
  for (let p = 0; p < 18; p++) specs.push({ p, f: 'put', v: p, r: 'ok', t: [0, 100] });
  specs.push({ p: 30, f: 'get', out: 1, r: 'ok', t: [101, 102] });
  specs.push({ p: 31, f: 'get', out: 2, r: 'ok', t: [101, 102] });
  const r = checkLinearizable(history(specs), { timeoutMs: 1 });
  assert.equal(r.ok, false);
  assert.equal(r.timedOut, true);
});

test('parseHistory reads JSON lines and rejects malformed input; pairing errors are reported', () => {
  const text = history([
    { p: 1, f: 'put', v: 'a', r: 'ok', t: [0, 1] },
    { p: 2, f: 'cas', v: ['a', 'b'], r: 'ok', t: [2, 3] },
  ])
    .map((e) => JSON.stringify(e))
    .join('\n');
  const events = parseHistory(text + '\n\n');
  assert.equal(events.length, 4);
  assert.equal(checkLinearizable(events).ok, true);
  assert.throws(() => parseHistory('{"process":1}\nnot json'), /line 1: bad type/);
  assert.throws(() => parseHistory('{}\n'), HistoryError);
  assert.throws(() => parseHistory('not json'), /line 1: invalid JSON/);
  assert.throws(
    () => parseHistory('{"process":1,"type":"invoke","f":"cas","key":"k","value":1,"time":0}'),
    /\[expected, new\]/,
  );
  assert.throws(
    () => checkLinearizable([{ process: 1, type: 'ok', f: 'get', key: 'k', value: null, time: 0 }]),
    /without an invoke/,
  );
  assert.throws(
    () =>
      checkLinearizable([
        { process: 1, type: 'invoke', f: 'get', key: 'k', time: 0 },
        { process: 1, type: 'invoke', f: 'get', key: 'k', time: 1 },
      ]),
    /while an operation is open/,
  );
  assert.throws(
    () =>
      checkLinearizable([
        { process: 1, type: 'invoke', f: 'get', key: 'k', time: 0 },
        { process: 1, type: 'ok', f: 'put', key: 'k', time: 1 },
      ]),
    /does not match/,
  );
});
