import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScriptedCluster } from '../../src/sim/harness.js';
import type { Message } from '../../src/raft/types.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const data = (c: ScriptedCluster, id: number) =>
  c
    .h(id)
    .applied.filter((e) => e.type === 'normal')
    .map((e) => dec(e.data));

function elect(c: ScriptedCluster, id: number, drop: (m: Message) => boolean = () => false): void {
  // Campaign until elected: a first attempt may lose to votes already cast in its term.
  for (let i = 0; i < 5 && c.get(id).status().role !== 'leader'; i++) {
    c.campaign(id);
    c.settle(drop);
  }
  assert.equal(c.get(id).status().role, 'leader', `node ${id} should have won:\n${c.trace.join('\n')}`);
}

test('election: pre-vote, vote, no-op entry of the new term committed everywhere', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  elect(c, 1);
  assert.deepEqual(c.trace.slice(0, 6), [
    '1->2 prevote t1 last=0/0',
    '1->3 prevote t1 last=0/0',
    '2->1 prevote-resp t1 grant',
    '3->1 prevote-resp t1 grant',
    '1->2 vote t1 last=0/0',
    '1->3 vote t1 last=0/0',
  ]);
  c.tick(1);
  c.settle();
  for (const id of [1, 2, 3]) {
    const s = c.get(id).status();
    assert.equal(s.term, 1);
    assert.equal(s.commit, 1, `node ${id} commits the no-op`);
    assert.equal(s.leader, 1);
  }
});

test('replication: proposals batched into one append, committed and applied in order on every node', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  elect(c, 1);
  c.trace.length = 0;
  for (const v of ['a', 'b', 'c']) assert.ok(c.get(1).propose(enc(v)).ok);
  c.process();
  c.settle();
  c.tick(1);
  c.settle();
  assert.ok(c.trace.includes('1->2 app t1 prev=1/1 [2@1 3@1 4@1] c1'), c.trace.join('\n'));
  for (const id of [1, 2, 3]) assert.deepEqual(data(c, id), ['a', 'b', 'c']);
});

test('a proposal where no leader is known is refused with a clear error', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  const r = c.get(2).propose(enc('x'));
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.error, 'not-leader');
    assert.equal(r.leader, 0);
    assert.match(r.message, /no leader/);
  }
  elect(c, 1);
  const r2 = c.get(2).propose(enc('x'));
  assert.ok(!r2.ok && r2.leader === 1);
});

test('Figure 8: an entry of an earlier term is never committed by counting replicas', (t) => {
  // Classic Raft (no pre-vote or check-quorum) so that the paper's sequence of elections can be scripted;
  // one entry per append so that the old entry can reach a majority before the new leader's no-op.
  const c = new ScriptedCluster([1, 2, 3, 4, 5], { preVote: false, checkQuorum: false, maxSizePerMsg: 1 });
  const only = (ids: number[]) => (m: Message) => !(ids.includes(m.from) && ids.includes(m.to));
  // (a) S1 leads term 1 (no-op 1@1 everywhere), then proposes 2@1... we need term 2: re-elect S1.
  elect(c, 1);
  c.tick(1);
  c.settle();
  c.crash(1);
  c.restart(1);
  elect(c, 1); // term 2
  assert.equal(c.get(1).status().term, 2);
  c.tick(1);
  c.settle();
  // S1 appends X = 3@2 and replicates it to S2 only.
  c.get(1).propose(enc('X'));
  c.process();
  c.settle((m) => m.type === 'app' && m.to !== 2);
  assert.equal(c.logOf(2), '1@1 2@2 3@2');
  assert.equal(c.logOf(3), '1@1 2@2');
  // (b) S1 crashes; S5 is elected in term 3 by S3, S4, S5 and appends Y = 4@3 (its no-op 3@3) locally.
  c.crash(1);
  c.trace.length = 0;
  elect(c, 5, (m) => only([3, 4, 5])(m) || m.type === 'app');
  assert.equal(c.get(5).status().term, 3);
  assert.equal(c.logOf(5), '1@1 2@2 3@3', "S5's no-op stays local");
  c.crash(5);
  // (c) S1 restarts and is elected in term 4 by S1, S2, S3. S2 already holds X and takes S1's no-op 4@4; S3 gets
  // X (3@2) but not the no-op. X is now on a majority (S1, S2, S3) — counting replicas would commit it — but
  // it is of an earlier term, so it must stay uncommitted until an entry of term 4 reaches a majority.
  c.restart(1);
  const noopOfTerm4 = (m: Message) => m.type === 'app' && (m.entries ?? []).some((e) => e.term === 4);
  let probedS3 = false;
  elect(c, 1, (m) => {
    if (only([1, 2, 3])(m)) return true;
    if (!noopOfTerm4(m) || m.to !== 3) return false;
    if (!probedS3) return !(probedS3 = true); // S3 lacks X: it rejects this probe
    return true;
  });
  assert.equal(c.get(1).status().term, 4);
  assert.equal(c.logOf(2), '1@1 2@2 3@2 4@4');
  assert.equal(c.logOf(3), '1@1 2@2 3@2', `X reached S3:\n${c.trace.join('\n')}`);
  assert.ok(c.trace.includes('1->3 app t4 prev=2/2 [3@2] c2'), 'S1 sends X to S3');
  assert.ok(c.trace.includes('3->1 app-resp t4 ok 3'), 'S3 acknowledges X');
  assert.ok(c.trace.includes('2->1 app-resp t4 ok 4'), 'S2 acknowledges X and the no-op');
  assert.equal(c.get(1).status().commit, 2, 'X (term 2) must not be committed by counting replicas in term 4');
  // (d) S1 crashes; S5 is elected in term 5 by S3, S4, S5 (S2, holding 4@4, refuses) and overwrites X.
  c.crash(1);
  c.restart(5);
  c.outbox = [];
  elect(c, 5, only([2, 3, 4, 5]));
  assert.ok(c.trace.includes('2->5 vote-resp t5 reject'), 'S2 refuses S5: its log (4@4) is more up to date');
  c.tick(5);
  c.settle(only([2, 3, 4, 5]));
  c.tick(5);
  c.settle(only([2, 3, 4, 5]));
  assert.equal(c.logOf(3), '1@1 2@2 3@3 4@5');
  assert.equal(c.get(3).status().commit, 4);
  // Nobody ever applied X: it was never committed.
  for (const id of [1, 2, 3, 4, 5]) assert.ok(!data(c, id).includes('X'), `node ${id} applied X`);
  t.diagnostic(`message sequence:\n${c.trace.join('\n')}`);
});

test('pre-vote: a partitioned follower does not inflate its term nor disrupt the leader when it returns', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  elect(c, 1);
  const cut = c.isolate([3]);
  for (let i = 0; i < 60; i++) {
    c.tick(1);
    c.tick(2);
    c.tick(3);
    c.settle(cut);
  }
  assert.equal(c.get(3).status().term, 1, 'pre-votes never succeed, so the term does not grow');
  for (let i = 0; i < 5; i++) {
    c.tick(1);
    c.settle();
  }
  assert.equal(c.get(1).status().role, 'leader');
  assert.equal(c.get(1).status().term, 1);
  assert.equal(c.get(3).status().leader, 1);
});

test('check-quorum: an isolated leader steps down within an election timeout; a live one ignores votes', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  elect(c, 1);
  // Node 3 asks for a vote in a higher term while 2 still hears from the leader: the request is ignored.
  c.get(2).step({ type: 'vote', from: 3, to: 2, term: 5, index: 100, logTerm: 100, commit: 0 });
  assert.equal(c.get(2).status().term, 1);
  const cut = c.isolate([1]);
  for (let i = 0; i < 10; i++) {
    c.tick(1);
    c.settle(cut);
  }
  assert.equal(c.get(1).status().role, 'follower');
  assert.equal(c.get(1).propose(enc('x')).ok, false);
});

test('ReadIndex: reads issued together share one heartbeat round and wait for the first commit of the term', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  c.campaign(1);
  // Deliver votes but not yet the no-op acks: the leader has not committed in its term.
  c.settle((m) => m.type === 'app-resp');
  const l = c.get(1);
  assert.equal(l.status().role, 'leader');
  assert.equal(l.status().commit, 0);
  assert.ok(l.readIndex('early').ok);
  c.process();
  c.settle((m) => m.type === 'app-resp');
  assert.equal(c.h(1).readStates.length, 0, 'no read before the leader commits in its term');
  c.tick(1);
  c.settle();
  assert.deepEqual(
    c.h(1).readStates.map((r) => r.ctx),
    ['early'],
  );
  c.trace.length = 0;
  assert.ok(l.readIndex('r1').ok && l.readIndex('r2').ok && l.readIndex('r3').ok);
  c.process();
  const hb = c.outbox.filter((m) => m.type === 'heartbeat');
  assert.equal(hb.length, 2, 'one round: one heartbeat per follower for three reads');
  c.deliver((m) => m.to === 2);
  c.deliver((m) => m.from === 2);
  assert.deepEqual(
    c.h(1).readStates.map((r) => [r.ctx, r.index]),
    [
      ['early', 1],
      ['r1', 1],
      ['r2', 1],
      ['r3', 1],
    ],
  );
  assert.equal(c.get(2).readIndex('x').ok, false, 'a follower refuses reads');
});

test('ReadIndex: a leader cut off from the majority never confirms a read', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  elect(c, 1);
  c.tick(1);
  c.settle();
  const cut = c.isolate([1]);
  c.get(1).readIndex('r');
  c.process();
  for (let i = 0; i < 12; i++) {
    c.tick(1);
    c.settle(cut);
  }
  assert.equal(c.h(1).readStates.length, 0);
  const rd = c.get(1);
  assert.equal(rd.status().role, 'follower');
});

test('leadership transfer: the target catches up, receives timeout-now and wins', () => {
  const c = new ScriptedCluster([1, 2, 3]);
  elect(c, 1);
  c.tick(1);
  c.settle();
  c.get(1).propose(enc('a'));
  c.process();
  c.trace.length = 0;
  c.get(1).transferLeadership(3);
  assert.equal(c.get(1).propose(enc('refused')).ok, false);
  c.process();
  c.settle();
  assert.ok(
    c.trace.some((l) => l.startsWith('1->3 timeout-now')),
    c.trace.join('\n'),
  );
  assert.equal(c.get(3).status().role, 'leader');
  assert.equal(c.get(3).status().term, 2);
});

test('snapshot: a follower behind a compacted log catches up through a chunked snapshot', () => {
  const c = new ScriptedCluster([1, 2, 3], { snapshotChunkSize: 4 });
  elect(c, 1);
  c.tick(1);
  c.settle();
  c.crash(3);
  for (let i = 0; i < 20; i++) c.get(1).propose(enc(`v${i}`));
  c.process();
  c.settle();
  c.tick(1);
  c.settle();
  const leader = c.h(1);
  const applied = leader.node.status().applied;
  assert.equal(applied, 21);
  leader.storage.createSnapshotSync(applied, [1, 2, 3], enc('state-machine-image'));
  leader.storage.compactSync(applied);
  c.restart(3);
  c.trace.length = 0;
  for (let i = 0; i < 30; i++) {
    c.tick(1);
    c.settle();
  }
  const chunks = c.trace.filter((l) => l.startsWith('1->3 snap'));
  assert.ok(chunks.length >= 5, `snapshot sent in chunks:\n${chunks.join('\n')}`);
  assert.equal(dec(c.h(3).storage.snapshot().data), 'state-machine-image');
  assert.equal(c.get(3).status().commit, 21);
  c.get(1).propose(enc('after'));
  c.process();
  c.settle();
  c.tick(1);
  c.settle();
  assert.deepEqual(data(c, 3), ['after']);
});

test('fast backtracking: a long divergent follower log is repaired in a few round trips', () => {
  const c = new ScriptedCluster([1, 2, 3], { preVote: false, checkQuorum: false });
  elect(c, 1);
  c.tick(1);
  c.settle();
  // Node 1 appends 50 entries that reach nobody, then loses leadership to 2, which writes 50 others.
  c.crash(3);
  for (let i = 0; i < 50; i++) c.get(1).propose(enc(`old${i}`));
  c.process();
  c.outbox = [];
  c.crash(1);
  c.restart(3);
  elect(c, 2, (m) => m.to === 1 || m.from === 1);
  for (let i = 0; i < 50; i++) c.get(2).propose(enc(`new${i}`));
  c.process();
  c.settle((m) => m.to === 1 || m.from === 1);
  c.restart(1);
  c.trace.length = 0;
  c.tick(2);
  c.settle();
  c.tick(2);
  c.settle();
  const rejects = c.trace.filter((l) => l.startsWith('1->2 app-resp') && l.includes('reject'));
  assert.ok(rejects.length <= 2, `rejections:\n${rejects.join('\n')}`);
  assert.equal(c.logOf(1), c.logOf(2));
});
