import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalCluster } from '../../src/server/local-cluster.js';
import { FAST, call, eventually, get, put, startCluster } from './helpers.js';

const TIMEOUT = FAST.requestTimeoutMs as number;

describe('isolation and simulated failure', () => {
  let cluster: LocalCluster;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ cluster, cleanup } = await startCluster({ storage: 'disk', snapshotThreshold: 40, snapshotTrailing: 5 }));
  });
  after(() => cleanup());

  test('an isolated leader never serves a linearizable read nor accepts a write; healed, it catches up by snapshot', async () => {
    const old = await cluster.waitLeader();
    const others = cluster.ids.filter((id) => id !== old);
    const u = cluster.url(old);
    let r = await put(u, 'iso', { value: 'before' });
    assert.equal(r.status, 201);

    r = await call(u, 'POST', '/admin/faults', { drop: others });
    assert.equal(r.status, 200);
    // Right after the cut, while it may still believe it leads: no linearizable read, no write.
    const reads = await Promise.all([get(u, 'iso'), get(u, 'iso', 'linearizable'), get(u, 'iso')]);
    for (const x of reads) {
      assert.equal(x.status, 503, JSON.stringify(x.body));
      assert.equal(x.body.error, 'No quorum');
      assert.ok(x.ms < TIMEOUT + 1000);
    }
    const w = await put(u, 'iso-write', { value: 'must not be acknowledged' });
    assert.equal(w.status, 503);

    // The majority elects a new leader and moves on, far enough to compact its log.
    const fresh = await cluster.waitLeader(10_000, [old]);
    assert.ok(others.includes(fresh));
    r = await put(cluster.url(fresh), 'iso', { value: 'after' });
    assert.equal(r.status, 200);
    for (let i = 0; i < 120; i++) {
      r = await put(cluster.url(others[i % 2]), `bulk/${i}`, { value: i });
      assert.ok(r.status < 300, JSON.stringify(r.body));
    }
    const st = await call(cluster.url(fresh), 'GET', '/status');
    assert.ok((st.body.first_index as number) > 3, `leader log not compacted: ${JSON.stringify(st.body)}`);

    // Still isolated: the old value is only ever visible as an explicitly stale read.
    r = await get(u, 'iso');
    assert.equal(r.status, 503);
    r = await get(u, 'iso', 'stale');
    assert.deepEqual([r.status, r.body.value, r.body.stale], [200, 'before', true]);

    r = await call(u, 'POST', '/admin/faults', { drop: [] });
    assert.equal(r.status, 200);
    await eventually(async () => (await get(u, 'bulk/119', 'stale')).status === 200, 8000, 'catch-up');
    r = await get(u, 'iso');
    assert.deepEqual([r.status, r.body.value], [200, 'after']);
    r = await get(u, 'iso-write');
    assert.equal(r.status, 404);
    const s = await call(u, 'GET', '/status');
    const counters = s.body.counters as { snapshotsRestored: number };
    assert.ok(counters.snapshotsRestored >= 1, `caught up without a snapshot: ${JSON.stringify(s.body)}`);
  });

  test('/admin/fail: 503 "Node is failed" and no replication; /admin/recover catches up before serving', async () => {
    const leader = await cluster.waitLeader();
    const victim = cluster.ids.find((id) => id !== leader) as number;
    const u = cluster.url(victim);
    let r = await call(u, 'POST', '/admin/fail');
    assert.equal(r.status, 200);
    for (const x of [await put(u, 'f', { value: 1 }), await get(u, 'f'), await get(u, 'f', 'stale')]) {
      assert.deepEqual([x.status, x.body.error], [503, 'Node is failed']);
      assert.ok(x.headers.get('retry-after') !== null);
    }
    r = await call(u, 'GET', '/health');
    assert.equal(r.status, 503);
    // The others keep a quorum and go on; the failed node hears nothing.
    for (let i = 0; i < 60; i++) {
      r = await put(cluster.url(leader), `while-failed/${i}`, { value: i });
      assert.ok(r.status < 300);
    }
    r = await call(u, 'GET', '/status');
    const appliedWhileFailed = r.body.applied as number;
    r = await call(cluster.url(leader), 'GET', '/status');
    assert.ok((r.body.commit as number) > appliedWhileFailed);

    r = await call(u, 'POST', '/admin/recover');
    assert.equal(r.status, 200);
    // The first successful answer already reflects everything written while it was failed.
    await eventually(
      async () => {
        const x = await get(u, 'while-failed/59', 'stale');
        if (x.status === 503) return false;
        assert.deepEqual([x.status, x.body.value], [200, 59]);
        return true;
      },
      8000,
      'recovery',
    );
    r = await call(u, 'GET', '/health');
    assert.equal(r.status, 200);
    r = await put(u, 'after-recover', { value: 'ok' });
    assert.equal(r.status, 201);
  });
  test('/admin/fail on the leader: the others take over; the recovered node serves current data', async () => {
    const old = await cluster.waitLeader();
    const u = cluster.url(old);
    assert.equal((await call(u, 'POST', '/admin/fail')).status, 200);
    const fresh = await cluster.waitLeader(10_000, [old]);
    assert.notEqual(fresh, old);
    let r = await put(cluster.url(fresh), 'leader-failed', { value: 'new' });
    assert.equal(r.status, 201);
    assert.equal((await call(u, 'POST', '/admin/recover')).status, 200);
    await eventually(async () => (await get(u, 'leader-failed')).status === 200, 8000, 'recovered leader to serve');
    r = await get(u, 'leader-failed');
    assert.deepEqual([r.body.value, r.body.leader], ['new', fresh]);
    r = await put(u, 'leader-failed', { value: 'newer' });
    assert.deepEqual([r.status, r.body.leader], [200, fresh]);
  });
});
