/**
 * The classic causal scenarios on three replicas running as real processes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, eventually, spawnCluster, spawnReplica, type ReplicaProcess } from './helpers.js';

let rs: ReplicaProcess[] = [];
let addrs: string[] = [];

before(async () => {
  rs = await spawnCluster(3);
  addrs = rs.map((r) => r.address);
});
after(async () => {
  await Promise.all(rs.map((r) => r.kill()));
});

const view = async (r: ReplicaProcess): Promise<string[]> => (await call(r.url, 'GET', '/view')).body.view as string[];
const sameSet = (a: string[], b: string[]): boolean =>
  a.length === b.length && [...a].sort().join() === [...b].sort().join();

test('a write at one replica becomes visible at the others', async () => {
  const [r1, r2, r3] = rs as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
  const w = await call(r1.url, 'PUT', '/kvs/x', { value: 'one', 'causal-metadata': null });
  assert.equal(w.status, 201);
  const m = w.body['causal-metadata'];
  // A client carrying the write's metadata sees it at once (or gets a 503 until it arrives, then sees it).
  for (const r of [r2, r3]) {
    assert.ok(
      await eventually(async () => {
        const g = await call(r.url, 'GET', '/kvs/x', { 'causal-metadata': m });
        return g.status === 200 && g.body.value === 'one';
      }, 5000),
    );
  }
  // A fresh client (no metadata) sees it too, thanks to broadcast.
  assert.ok(await eventually(async () => (await call(r3.url, 'GET', '/kvs/x')).body.value === 'one', 5000));
});

test('a replica cut off from the rest keeps serving writes; the others answer 503 to clients that saw them', async () => {
  const [r1, r2, r3] = rs as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
  // Cut r3 off (both directions are dropped at r3) for longer than failure detection takes.
  assert.equal((await call(r3.url, 'POST', '/admin/partition', { peers: [addrs[0], addrs[1]] })).status, 200);
  const w = await call(r3.url, 'PUT', '/kvs/island', { value: 'from-r3', 'causal-metadata': null });
  assert.equal(w.status, 201, 'writes stay available at the cut-off replica');
  const m3 = w.body['causal-metadata'];
  assert.equal((await call(r3.url, 'GET', '/kvs/island', { 'causal-metadata': m3 })).body.value, 'from-r3');

  const w1 = await call(r1.url, 'PUT', '/kvs/mainland', { value: 'from-r1', 'causal-metadata': null });
  assert.equal(w1.status, 201);
  const m1 = w1.body['causal-metadata'];
  // r3 missed the write: a client carrying the newer metadata gets a 503, quickly...
  const t0 = Date.now();
  const late = await call(r3.url, 'GET', '/kvs/mainland', { 'causal-metadata': m1 });
  assert.deepEqual(late, { status: 503, body: { error: 'Causal dependencies not satisfied; try again later' } });
  assert.ok(Date.now() - t0 < 3000);
  // ...while a client with older metadata is served from r3's own state.
  const old = await call(r3.url, 'GET', '/kvs/x', { 'causal-metadata': null });
  assert.deepEqual([old.status, old.body.value], [200, 'one']);
  const none = await call(r3.url, 'GET', '/kvs/mainland', { 'causal-metadata': null });
  assert.equal(none.status, 404);
  // Same the other way: r1 lacks r3's write.
  assert.equal((await call(r1.url, 'GET', '/kvs/island', { 'causal-metadata': m3 })).status, 503);

  // Long enough for each side to drop the other from its view.
  assert.ok(await eventually(async () => !(await view(r1)).includes(addrs[2]!), 5000), 'r1 drops r3');
  assert.ok(await eventually(async () => sameSet(await view(r3), [addrs[2]!]), 5000), 'r3 drops r1, r2');

  // Heal: the views come back and anti-entropy delivers both sides' writes.
  assert.equal((await call(r3.url, 'POST', '/admin/heal')).status, 200);
  for (const r of [r1, r2, r3]) {
    assert.ok(await eventually(async () => sameSet(await view(r), addrs), 5000), `view of ${r.address} heals`);
  }
  for (const r of [r1, r2, r3]) {
    assert.ok(
      await eventually(async () => {
        const a = await call(r.url, 'GET', '/kvs/island', { 'causal-metadata': m3 });
        const b = await call(r.url, 'GET', '/kvs/mainland', { 'causal-metadata': m1 });
        return a.body.value === 'from-r3' && b.body.value === 'from-r1';
      }, 5000),
      `${r.address} converges`,
    );
  }
});

test('concurrent writes to one key converge to the same value everywhere', async () => {
  const [r1, r2, r3] = rs as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
  await Promise.all(rs.map((r, i) => call(r.url, 'PUT', '/kvs/race', { value: `v${i}`, 'causal-metadata': null })));
  let values: unknown[] = [];
  assert.ok(
    await eventually(async () => {
      values = await Promise.all([r1, r2, r3].map(async (r) => (await call(r.url, 'GET', '/kvs/race')).body.value));
      return values[0] !== undefined && values.every((v) => v === values[0]);
    }, 5000),
    `replicas disagree: ${JSON.stringify(values)}`,
  );
});

test('a failed replica (admin/fail) leaves the views and catches up on recover', async () => {
  const [r1, r2] = rs as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
  assert.equal((await call(r2.url, 'POST', '/admin/fail')).status, 200);
  assert.deepEqual((await call(r2.url, 'GET', '/kvs/x')).body, { error: 'Node is failed' });
  assert.ok(await eventually(async () => !(await view(r1)).includes(addrs[1]!), 5000));
  const w = await call(r1.url, 'PUT', '/kvs/while-failed', { value: 'w', 'causal-metadata': null });
  assert.equal((await call(r2.url, 'POST', '/admin/recover')).status, 200);
  const g = await call(r2.url, 'GET', '/kvs/while-failed', { 'causal-metadata': w.body['causal-metadata'] });
  assert.deepEqual([g.status, g.body.value], [200, 'w'], 'recovered replica caught up before serving');
  assert.ok(await eventually(async () => (await view(r1)).includes(addrs[1]!), 5000));
});

test('a killed replica leaves every view; restarted, it rejoins every view and serves the old keys', async () => {
  const [r1, r2, r3] = rs as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
  const w = await call(r1.url, 'PUT', '/kvs/durable', { value: 'kept', 'causal-metadata': null });
  const m = w.body['causal-metadata'];
  assert.ok(await eventually(async () => (await call(r3.url, 'GET', '/kvs/durable')).status === 200, 5000));
  await r3.kill();
  for (const r of [r1, r2]) {
    assert.ok(await eventually(async () => sameSet(await view(r), [addrs[0]!, addrs[1]!]), 5000));
  }
  rs[2] = await spawnReplica(addrs[2]!, addrs);
  const back = rs[2];
  // It announced itself and copied the store before serving.
  for (const r of [r1, r2, back]) {
    assert.ok(await eventually(async () => sameSet(await view(r), addrs), 5000), `${r.address} sees all three`);
  }
  for (const key of ['x', 'durable', 'island', 'mainland']) {
    const g = await call(back.url, 'GET', `/kvs/${key}`, { 'causal-metadata': m });
    assert.equal(g.status, 200, `restarted replica serves ${key}`);
  }
  // New writes from the restarted replica replicate as usual.
  const nw = await call(back.url, 'PUT', '/kvs/after-restart', { value: 'new', 'causal-metadata': m });
  assert.equal(nw.status, 201);
  const nm = nw.body['causal-metadata'];
  assert.ok(
    await eventually(
      async () => (await call(r1.url, 'GET', '/kvs/after-restart', { 'causal-metadata': nm })).body.value === 'new',
      5000,
    ),
  );
});
