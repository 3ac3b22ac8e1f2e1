/**
 * A replica that restarts with an empty memory while the only peer holding its last write is cut off: the new
 * incarnation reuses that write's sequence number. Incarnation ids make both sides exchange whole stores, so
 * every replica still ends with both writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, eventually, freeAddresses, spawnCluster, spawnReplica, type ReplicaProcess } from './helpers.js';

/** Every replica ends with the lost write of the old incarnation and the new write that reused its number. */
async function assertBothWrites(rs: readonly ReplicaProcess[]): Promise<void> {
  for (const r of rs) {
    assert.ok(
      await eventually(async () => {
        const a = await call(r.url, 'GET', '/kvs/old');
        const b = await call(r.url, 'GET', '/kvs/new');
        return a.body.value === 'from-old-r3' && b.body.value === 'from-new-r3';
      }, 8000),
      `${r.address} holds both writes`,
    );
  }
}

test('a restarted replica reusing sequence numbers still converges with a peer that held its lost write', async () => {
  const rs = await spawnCluster(3);
  try {
    const [r1, r2] = rs as [(typeof rs)[0], (typeof rs)[0], (typeof rs)[0]];
    const [a1, a2, a3] = rs.map((r) => r.address) as [string, string, string];
    // r3's next write reaches r1 only, and r1 cannot pass it on to r2.
    await call(r1.url, 'POST', '/admin/partition', { peers: [a2] });
    await call(rs[2]!.url, 'POST', '/admin/partition', { peers: [a2] });
    const old = await call(rs[2]!.url, 'PUT', '/kvs/old', { value: 'from-old-r3', 'causal-metadata': null });
    assert.equal(old.status, 201);
    assert.ok(await eventually(async () => (await call(r1.url, 'GET', '/kvs/old')).status === 200, 5000));
    await rs[2]!.kill();
    // r1 is now cut off from everyone; r3 restarts and can only copy r2's store, which lacks its write.
    await call(r1.url, 'POST', '/admin/partition', { peers: [a3] });
    rs[2] = await spawnReplica(a3, [a1, a2, a3]);
    const r3 = rs[2];
    assert.equal((await call(r3.url, 'GET', '/kvs/old')).status, 404);
    const fresh = await call(r3.url, 'PUT', '/kvs/new', { value: 'from-new-r3', 'causal-metadata': null });
    assert.equal(fresh.status, 201);
    // The sequence number is reused: the new write claims the same slot as the lost one.
    assert.deepEqual(fresh.body['causal-metadata'], old.body['causal-metadata']);
    await call(r1.url, 'POST', '/admin/heal');
    await assertBothWrites([r1, r2, r3]);
  } finally {
    await Promise.all(rs.map((r) => r.kill()));
  }
});

test('the same holds for a replica that never met the lost incarnation (only the one that did can notice)', async () => {
  const [a1, a2, a3] = (await freeAddresses(3)) as [string, string, string];
  const view = [a1, a2, a3];
  const rs: ReplicaProcess[] = [];
  try {
    // r2 refuses r3 before r3 ever runs, so r2 never learns the first incarnation of r3.
    const r1 = await spawnReplica(a1, view);
    rs.push(r1);
    const r2 = await spawnReplica(a2, view);
    rs.push(r2);
    await call(r2.url, 'POST', '/admin/partition', { peers: [a3] });
    await call(r1.url, 'POST', '/admin/partition', { peers: [a2] });
    let r3 = await spawnReplica(a3, view);
    rs.push(r3);
    const old = await call(r3.url, 'PUT', '/kvs/old', { value: 'from-old-r3', 'causal-metadata': null });
    assert.equal(old.status, 201);
    assert.ok(await eventually(async () => (await call(r1.url, 'GET', '/kvs/old')).status === 200, 5000));
    await r3.kill();
    // r1 (the only holder of the write) is cut off; r3 comes back empty and meets only r2.
    await call(r1.url, 'POST', '/admin/partition', { peers: [a2, a3] });
    await call(r2.url, 'POST', '/admin/heal');
    r3 = await spawnReplica(a3, view);
    rs[2] = r3;
    const fresh = await call(r3.url, 'PUT', '/kvs/new', { value: 'from-new-r3', 'causal-metadata': null });
    assert.equal(fresh.status, 201);
    assert.deepEqual(fresh.body['causal-metadata'], old.body['causal-metadata'], 'the sequence number is reused');
    assert.ok(await eventually(async () => (await call(r2.url, 'GET', '/kvs/new')).status === 200, 5000));
    await call(r1.url, 'POST', '/admin/heal');
    await assertBothWrites([r1, r2, r3]);
  } finally {
    await Promise.all(rs.map((r) => r.kill()));
  }
});
