import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { encodeCommand, type Command, type RequestId } from '../../src/kv/commands.js';

const enc = (c: Command): Uint8Array => encodeCommand(c);
const rid = (client: string, seq: number): RequestId => ({ client, seq });

test('a retried write is applied once and returns its first result', () => {
  const sm = new KvStateMachine();
  const first = sm.apply(1, enc({ op: 'put', key: 'a', value: 1, requestId: rid('c', 1) }));
  assert.equal(first.kind, 'created');
  sm.apply(2, enc({ op: 'put', key: 'a', value: 2 })); // someone else writes
  const retry = sm.apply(3, enc({ op: 'put', key: 'a', value: 1, requestId: rid('c', 1) }));
  assert.deepEqual(retry, first);
  assert.equal(sm.get('a')?.value, 2);
  assert.equal(sm.get('a')?.version, 2);
  // same seq from another client is a different request
  assert.equal(sm.apply(4, enc({ op: 'put', key: 'a', value: 3, requestId: rid('d', 1) })).kind, 'replaced');
});

test('dedup covers deletes, failed preconditions and transactions', () => {
  const sm = new KvStateMachine();
  sm.apply(1, enc({ op: 'put', key: 'a', value: 1 }));
  const del = sm.apply(2, enc({ op: 'delete', key: 'a', requestId: rid('c', 5) }));
  assert.equal(del.kind, 'deleted');
  sm.apply(3, enc({ op: 'put', key: 'a', value: 9 }));
  assert.deepEqual(sm.apply(4, enc({ op: 'delete', key: 'a', requestId: rid('c', 5) })), del);
  assert.equal(sm.get('a')?.value, 9);

  const pf = sm.apply(5, enc({ op: 'put', key: 'a', value: 2, ifVersion: 0, requestId: rid('c', 6) }));
  assert.equal(pf.kind, 'precondition-failed');
  sm.apply(6, enc({ op: 'delete', key: 'a' }));
  // the condition would now hold, but the retry returns the first outcome and does not write
  assert.deepEqual(sm.apply(7, enc({ op: 'put', key: 'a', value: 2, ifVersion: 0, requestId: rid('c', 6) })), pf);
  assert.equal(sm.get('a'), undefined);

  const txn: Command = {
    op: 'txn',
    compare: [{ key: 'n', target: 'exists', op: '==', value: false }],
    success: [{ op: 'put', key: 'n', value: 0 }],
    failure: [{ op: 'get', key: 'n' }],
    requestId: rid('c', 7),
  };
  const t1 = sm.apply(8, enc(txn));
  assert.equal(t1.kind === 'txn' && t1.succeeded, true);
  assert.deepEqual(sm.apply(9, enc(txn)), t1);
  assert.equal(sm.get('n')?.version, 1);
});

test('out-of-order seqs within the window are each applied once', () => {
  const sm = new KvStateMachine();
  sm.apply(1, enc({ op: 'put', key: 'k3', value: 3, requestId: rid('c', 3) }));
  assert.equal(sm.apply(2, enc({ op: 'put', key: 'k2', value: 2, requestId: rid('c', 2) })).kind, 'created');
  assert.equal(sm.apply(3, enc({ op: 'put', key: 'k2', value: 2, requestId: rid('c', 2) })).kind, 'created');
  assert.equal(sm.get('k2')?.version, 1);
});

test('evicted seqs give expired-session, never a silent re-apply', () => {
  const sm = new KvStateMachine({ sessions: { maxSeqsPerClient: 3, maxClients: 10, maxRetiredClients: 10 } });
  let i = 1;
  for (let seq = 1; seq <= 5; seq++) sm.apply(i++, enc({ op: 'put', key: 'k', value: seq, requestId: rid('c', seq) }));
  // seqs 1, 2 were forgotten (only 3, 4, 5 kept)
  const expired = sm.apply(i++, enc({ op: 'put', key: 'k', value: 1, requestId: rid('c', 2) }));
  assert.deepEqual(expired, { kind: 'expired-session', requestId: { client: 'c', seq: 2 } });
  assert.equal(sm.get('k')?.value, 5);
  assert.equal(sm.apply(i++, enc({ op: 'put', key: 'k', value: 3, requestId: rid('c', 3) })).kind, 'replaced');
  assert.equal(sm.get('k')?.value, 5);
  assert.equal(sm.apply(i, enc({ op: 'put', key: 'k', value: 6, requestId: rid('c', 6) })).kind, 'replaced');
  assert.equal(sm.get('k')?.value, 6);
});

test('least recently active clients are retired by log order and their old seqs expire', () => {
  const sm = new KvStateMachine({ sessions: { maxSeqsPerClient: 10, maxClients: 2, maxRetiredClients: 1 } });
  sm.apply(1, enc({ op: 'put', key: 'a', value: 1, requestId: rid('A', 1) }));
  sm.apply(2, enc({ op: 'put', key: 'b', value: 1, requestId: rid('B', 1) }));
  // A retries (a duplicate still counts as activity), so B is the least recently active
  sm.apply(3, enc({ op: 'put', key: 'a', value: 1, requestId: rid('A', 1) }));
  sm.apply(4, enc({ op: 'put', key: 'c', value: 1, requestId: rid('C', 1) }));
  assert.equal(sm.sessionCount, 2);
  assert.equal(sm.apply(5, enc({ op: 'put', key: 'b', value: 2, requestId: rid('B', 1) })).kind, 'expired-session');
  assert.equal(sm.apply(6, enc({ op: 'put', key: 'a', value: 2, requestId: rid('A', 1) })).kind, 'created');
  // B comes back with a new seq: applied, and its old seq stays expired
  assert.equal(sm.apply(7, enc({ op: 'put', key: 'b', value: 2, requestId: rid('B', 2) })).kind, 'replaced');
  assert.equal(sm.apply(8, enc({ op: 'put', key: 'b', value: 3, requestId: rid('B', 1) })).kind, 'expired-session');
  assert.equal(sm.get('b')?.value, 2);
});

test('sessions survive snapshot/restore with identical subsequent behaviour, eviction order included', () => {
  const opts = { sessions: { maxSeqsPerClient: 2, maxClients: 3, maxRetiredClients: 2 } };
  const a = new KvStateMachine(opts);
  const cmds: Command[] = [];
  for (let n = 0; n < 40; n++) {
    const client = `c${(n * 7) % 5}`;
    cmds.push({ op: 'put', key: `k${n % 4}`, value: n, requestId: rid(client, (n * 3) % 11) });
  }
  cmds.slice(0, 20).forEach((c, i) => a.apply(i + 1, enc(c)));
  const b = new KvStateMachine(opts);
  b.restore(a.snapshot());
  for (let i = 20; i < cmds.length; i++) {
    assert.deepEqual(b.apply(i + 1, enc(cmds[i] as Command)), a.apply(i + 1, enc(cmds[i] as Command)));
  }
  assert.deepEqual(Buffer.from(b.snapshot()), Buffer.from(a.snapshot()));
});
