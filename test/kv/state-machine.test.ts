import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from '../../src/util/msgpack.js';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { encodeCommand, type Command } from '../../src/kv/commands.js';
import { renderResult } from '../../src/kv/results.js';

const enc = (c: Command): Uint8Array => encodeCommand(c);

test('put creates then replaces, bumping version and revision', () => {
  const sm = new KvStateMachine();
  assert.deepEqual(sm.apply(1, enc({ op: 'put', key: 'a', value: 'x' })), {
    kind: 'created',
    key: 'a',
    revision: 1,
    version: 1,
  });
  assert.deepEqual(sm.apply(3, enc({ op: 'put', key: 'a', value: { n: [1, 2] } })), {
    kind: 'replaced',
    key: 'a',
    revision: 3,
    version: 2,
    prevRevision: 1,
  });
  assert.deepEqual(sm.get('a'), { key: 'a', value: { n: [1, 2] }, version: 2, revision: 3, createRevision: 1 });
  assert.equal(sm.appliedIndex, 3);
  assert.equal(sm.size, 1);
});

test('values are arbitrary JSON and come back unchanged, including null and __proto__ keys', () => {
  const sm = new KvStateMachine();
  const value = JSON.parse('{"z":1,"__proto__":{"polluted":true},"a":[null,1.5,-0,"s",{"b":false}]}') as Record<
    string,
    never
  >;
  sm.apply(1, enc({ op: 'put', key: 'k', value }));
  sm.apply(2, enc({ op: 'put', key: 'n', value: null }));
  assert.equal(JSON.stringify(sm.get('k')?.value), JSON.stringify(value));
  assert.equal(sm.get('n')?.value, null);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('delete removes a key and reports not-found for a missing one; re-creation restarts the version', () => {
  const sm = new KvStateMachine();
  sm.apply(1, enc({ op: 'put', key: 'a', value: 1 }));
  sm.apply(2, enc({ op: 'put', key: 'a', value: 2 }));
  assert.deepEqual(sm.apply(3, enc({ op: 'delete', key: 'a' })), {
    kind: 'deleted',
    key: 'a',
    revision: 3,
    version: 2,
    prevRevision: 2,
  });
  assert.equal(sm.get('a'), undefined);
  assert.deepEqual(sm.apply(4, enc({ op: 'delete', key: 'a' })), { kind: 'not-found', key: 'a' });
  sm.apply(5, enc({ op: 'put', key: 'a', value: 3 }));
  assert.deepEqual(sm.get('a'), { key: 'a', value: 3, version: 1, revision: 5, createRevision: 5 });
});

test('if_version: 0 means must not exist; n means exact version', () => {
  const sm = new KvStateMachine();
  assert.equal(sm.apply(1, enc({ op: 'put', key: 'a', value: 1, ifVersion: 0 })).kind, 'created');
  const failed = sm.apply(2, enc({ op: 'put', key: 'a', value: 2, ifVersion: 0 }));
  assert.deepEqual(failed, { kind: 'precondition-failed', key: 'a', current: sm.get('a') });
  assert.equal(sm.apply(3, enc({ op: 'put', key: 'a', value: 2, ifVersion: 2 })).kind, 'precondition-failed');
  assert.equal(sm.apply(4, enc({ op: 'put', key: 'a', value: 2, ifVersion: 1 })).kind, 'replaced');
  assert.deepEqual(sm.apply(5, enc({ op: 'put', key: 'b', value: 2, ifVersion: 1 })), {
    kind: 'precondition-failed',
    key: 'b',
    current: null,
  });
  assert.equal(sm.apply(6, enc({ op: 'delete', key: 'a', ifVersion: 1 })).kind, 'precondition-failed');
  assert.equal(sm.apply(7, enc({ op: 'delete', key: 'a', ifVersion: 2 })).kind, 'deleted');
  assert.equal(sm.get('b'), undefined);
});

test('if_value compares deeply (key order ignored), null is a value, missing key fails', () => {
  const sm = new KvStateMachine();
  sm.apply(1, enc({ op: 'put', key: 'a', value: { x: 1, y: [1, { z: 2 }] } }));
  assert.equal(
    sm.apply(2, enc({ op: 'put', key: 'a', value: 'new', ifValue: { y: [1, { z: 2 }], x: 1 }, hasIfValue: true })).kind,
    'replaced',
  );
  assert.equal(
    sm.apply(3, enc({ op: 'put', key: 'a', value: 'n2', ifValue: 'old', hasIfValue: true })).kind,
    'precondition-failed',
  );
  assert.equal(
    sm.apply(4, enc({ op: 'put', key: 'b', value: 1, ifValue: null, hasIfValue: true })).kind,
    'precondition-failed',
  );
  sm.apply(5, enc({ op: 'put', key: 'c', value: null }));
  assert.equal(sm.apply(6, enc({ op: 'delete', key: 'c', ifValue: null, hasIfValue: true })).kind, 'deleted');
  // both conditions must hold
  assert.equal(
    sm.apply(7, enc({ op: 'put', key: 'a', value: 'n3', ifVersion: 2, ifValue: 'wrong', hasIfValue: true })).kind,
    'precondition-failed',
  );
  assert.equal(
    sm.apply(8, enc({ op: 'put', key: 'a', value: 'n3', ifVersion: 2, ifValue: 'new', hasIfValue: true })).kind,
    'replaced',
  );
});

test('txn: compares on version, value, revision, exists pick success or failure ops, one revision', () => {
  const sm = new KvStateMachine();
  sm.apply(1, enc({ op: 'put', key: 'a', value: 10 }));
  sm.apply(2, enc({ op: 'put', key: 's', value: 'm' }));
  const r = sm.apply(
    3,
    enc({
      op: 'txn',
      compare: [
        { key: 'a', target: 'version', op: '==', value: 1 },
        { key: 'a', target: 'value', op: '>', value: 5 },
        { key: 's', target: 'value', op: '<', value: 'n' },
        { key: 'a', target: 'revision', op: '<', value: 2 },
        { key: 'missing', target: 'exists', op: '==', value: false },
        { key: 'missing', target: 'value', op: '!=', value: null },
        { key: 'missing', target: 'version', op: '==', value: 0 },
      ],
      success: [
        { op: 'put', key: 'b', value: 'B' },
        { op: 'delete', key: 'a' },
        { op: 'get', key: 's' },
        { op: 'get', key: 'a' },
        { op: 'put', key: 'b', value: 'B2' },
      ],
      failure: [{ op: 'put', key: 'f', value: 1 }],
    }),
  );
  assert.deepEqual(r, {
    kind: 'txn',
    succeeded: true,
    revision: 3,
    results: [
      { kind: 'created', key: 'b', revision: 3, version: 1 },
      { kind: 'deleted', key: 'a', revision: 3, version: 1, prevRevision: 1 },
      { kind: 'found', record: { key: 's', value: 'm', version: 1, revision: 2, createRevision: 2 } },
      { kind: 'not-found', key: 'a' },
      { kind: 'replaced', key: 'b', revision: 3, version: 2, prevRevision: 3 },
    ],
  });
  assert.equal(sm.get('f'), undefined);
  const f = sm.apply(
    4,
    enc({
      op: 'txn',
      compare: [
        { key: 'b', target: 'value', op: '==', value: 'B2' },
        { key: 'b', target: 'value', op: '<', value: 3 }, // string vs number: false
      ],
      success: [{ op: 'put', key: 's', value: 'no' }],
      failure: [{ op: 'put', key: 'f', value: 1 }],
    }),
  );
  assert.equal(f.kind === 'txn' && f.succeeded, false);
  assert.equal(sm.get('f')?.revision, 4);
  assert.equal(sm.get('s')?.value, 'm');
  const empty = sm.apply(5, enc({ op: 'txn', compare: [], success: [], failure: [] }));
  assert.deepEqual(empty, { kind: 'txn', succeeded: true, revision: 5, results: [] });
  const missing = sm.apply(
    6,
    enc({ op: 'txn', compare: [{ key: 'zz', target: 'value', op: '==', value: null }], success: [], failure: [] }),
  );
  assert.equal(missing.kind === 'txn' && missing.succeeded, false);
});

test('malformed entries yield invalid and change nothing; indexes must increase', () => {
  const sm = new KvStateMachine();
  sm.apply(1, enc({ op: 'put', key: 'a', value: 1 }));
  const before = sm.snapshot();
  const p = { pack };
  const bad: Uint8Array[] = [
    new Uint8Array([0xc1]),
    new Uint8Array(0),
    p.pack('str'),
    p.pack({ t: 'x', k: 'a' }),
    p.pack({ t: 'p', k: 'a' }),
    p.pack({ t: 'p', k: '', v: '1' }),
    p.pack({ t: 'p', k: 'a', v: '{not json' }),
    p.pack({ t: 'p', k: 'a', v: '1', ic: -1 }),
    p.pack({ t: 'p', k: 'a', v: '1', rc: 'c' }),
    p.pack({ t: 't', c: [], s: 'no', f: [] }),
    p.pack({ t: 't', c: [{ k: 'a', g: 'bogus', o: '==', cv: '1' }], s: [], f: [] }),
    p.pack({ t: 't', c: [], s: [{ o: 'z', k: 'a' }], f: [] }),
  ];
  let i = 2;
  for (const b of bad) {
    const r = sm.apply(i++, b);
    assert.equal(r.kind, 'invalid', `entry ${i}`);
    assert.ok(r.kind === 'invalid' && r.error.length > 0);
  }
  assert.equal(sm.get('a')?.value, 1);
  assert.equal(sm.appliedIndex, i - 1);
  const after = new KvStateMachine();
  after.restore(before);
  assert.deepEqual(after.list('', 10), sm.list('', 10));
  assert.throws(() => sm.apply(i - 1, enc({ op: 'put', key: 'b', value: 1 })), /strictly increase/);
  sm.skipTo(100);
  assert.equal(sm.appliedIndex, 100);
  assert.throws(() => sm.apply(100, enc({ op: 'put', key: 'b', value: 1 })), /strictly increase/);
  assert.equal(sm.apply(101, enc({ op: 'put', key: 'b', value: 1 })).kind, 'created');
});

test('list: sorted prefix listing with limit and paging', () => {
  const sm = new KvStateMachine();
  const keys = ['b/2', 'a', 'b/10', 'b', 'b/1', 'c', 'ba'];
  keys.forEach((k, i) => sm.apply(i + 1, enc({ op: 'put', key: k, value: i })));
  assert.deepEqual(
    sm.list('b/', 10).map((r) => r.key),
    ['b/1', 'b/10', 'b/2'],
  );
  assert.deepEqual(
    sm.list('', 100).map((r) => r.key),
    ['a', 'b', 'b/1', 'b/10', 'b/2', 'ba', 'c'],
  );
  assert.deepEqual(
    sm.list('b', 2).map((r) => r.key),
    ['b', 'b/1'],
  );
  assert.deepEqual(
    sm.list('b', 2, 'b/1').map((r) => r.key),
    ['b/10', 'b/2'],
  );
  assert.deepEqual(sm.list('zz', 10), []);
  sm.apply(20, enc({ op: 'delete', key: 'b/10' }));
  assert.deepEqual(
    sm.list('b/', 10).map((r) => r.key),
    ['b/1', 'b/2'],
  );
});

test('snapshot/restore reproduces state and sessions; corrupt snapshots throw and change nothing', () => {
  const sm = new KvStateMachine();
  sm.apply(1, enc({ op: 'put', key: 'x', value: [1, { a: null }], requestId: { client: 'c1', seq: 1 } }));
  sm.apply(2, enc({ op: 'put', key: 'y', value: 'v' }));
  const snap = sm.snapshot();
  const copy = new KvStateMachine();
  copy.restore(snap);
  assert.deepEqual(copy.list('', 10), sm.list('', 10));
  assert.equal(copy.appliedIndex, 2);
  assert.deepEqual(Buffer.from(copy.snapshot()), Buffer.from(snap));
  // the session survived: the retry returns the first result
  const retry = enc({ op: 'put', key: 'x', value: 'other', requestId: { client: 'c1', seq: 1 } });
  assert.deepEqual(copy.apply(3, retry), sm.apply(3, retry));
  assert.deepEqual(copy.get('x')?.value, [1, { a: null }]);
  assert.throws(() => copy.restore(new Uint8Array([1, 2, 3])), /Malformed kv snapshot/);
  assert.throws(() => copy.restore(pack([1, 5, ['k'], [[], []]])), /Malformed/);
  assert.equal(copy.appliedIndex, 3);
  assert.equal(copy.size, 2);
});

test('renderResult follows the HTTP contract', () => {
  assert.deepEqual(renderResult({ kind: 'created', key: 'a', revision: 4, version: 1 }), {
    status: 201,
    body: { result: 'created', revision: 4, version: 1 },
  });
  assert.equal(renderResult({ kind: 'replaced', key: 'a', revision: 5, version: 2, prevRevision: 4 }).status, 200);
  assert.deepEqual(renderResult({ kind: 'not-found', key: 'a' }), {
    status: 404,
    body: { error: 'Key does not exist' },
  });
  const pf = renderResult({
    kind: 'precondition-failed',
    key: 'a',
    current: { key: 'a', value: 1, version: 3, revision: 9, createRevision: 2 },
  });
  assert.equal(pf.status, 412);
  assert.equal(pf.body.error, 'Precondition failed');
  assert.deepEqual(pf.body.current, { key: 'a', value: 1, version: 3, revision: 9, create_revision: 2 });
  assert.equal(renderResult({ kind: 'expired-session', requestId: { client: 'c', seq: 1 } }).status, 409);
  assert.equal(renderResult({ kind: 'invalid', error: 'x' }).status, 400);
});
