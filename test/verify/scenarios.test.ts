/**
 * Fault-tolerance scenarios on real node processes whose peer links go through the verify proxies:
 * leader crash, two followers down (5 and 3 nodes), an isolated leader, and a full restart.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { VerifyCluster } from '../../src/verify/cluster.js';
import { call, eventually, get, put, startVerifyCluster, writeOk } from './helpers.js';

async function withCluster(nodes: number, body: (c: VerifyCluster) => Promise<void>): Promise<void> {
  const { cluster, cleanup } = await startVerifyCluster(nodes);
  try {
    await body(cluster);
  } finally {
    await cleanup();
  }
}

const followersOf = (c: VerifyCluster, leader: number) => c.ids.filter((id) => id !== leader);

describe('fault-tolerance scenarios (real processes, proxied peer links)', { timeout: 120_000 }, () => {
  test('the leader is killed: a new leader serves, acknowledged writes survive, the old one catches up', async () => {
    await withCluster(3, async (c) => {
      const old = await c.waitLeader();
      for (let i = 0; i < 10; i++) assert.ok([200, 201].includes((await put(c.url(old), `a${i}`, `v${i}`)).status));
      await c.kill(old);
      const next = await c.waitLeader(10_000, [old]);
      assert.notEqual(next, old);
      await writeOk(c, 'after', 'x');
      for (let i = 0; i < 10; i++) assert.equal((await get(c.url(next), `a${i}`)).body.value, `v${i}`);
      await c.startNode(old);
      const caught = await eventually('old leader catches up', async () => {
        const r = await get(c.url(old), 'after', 'stale');
        return r.status === 200 && r.body.value === 'x' ? r : undefined;
      });
      assert.equal(caught.body.stale, true);
    });
  });

  test('5 nodes, two followers killed: writes and linearizable reads continue', async () => {
    await withCluster(5, async (c) => {
      const leader = await c.waitLeader();
      const [f1, f2] = followersOf(c, leader);
      await c.kill(f1 as number);
      await c.kill(f2 as number);
      for (let i = 0; i < 10; i++) {
        const via = followersOf(c, leader).filter((id) => c.isRunning(id))[i % 2] as number;
        const w = await put(c.url(via), `b${i}`, i);
        assert.ok([200, 201].includes(w.status), `write ${i}: ${w.status} ${JSON.stringify(w.body)}`);
        const r = await get(c.url(leader), `b${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.body.value, i);
      }
    });
  });

  test('3 nodes, two followers killed: writes refused with 503, stale reads served, back when one returns', async () => {
    await withCluster(3, async (c) => {
      const leader = await c.waitLeader();
      await writeOk(c, 'k', 'before');
      const [f1, f2] = followersOf(c, leader) as [number, number];
      await c.kill(f1);
      await c.kill(f2);
      const t0 = Date.now();
      const w = await put(c.url(leader), 'k', 'during');
      assert.ok(Date.now() - t0 < 5000, 'the 503 comes within the request timeout');
      assert.equal(w.status, 503, JSON.stringify(w.body));
      assert.equal(typeof w.body.error, 'string');
      assert.ok(w.headers.get('retry-after') !== null, 'a 503 carries Retry-After');
      // Once the leader notices it lost its quorum, the reason is the contract's.
      await eventually('503 No quorum', async () => {
        const r = await put(c.url(leader), 'k', 'during');
        assert.equal(r.status, 503);
        return r.body.error === 'No quorum' ? r : undefined;
      });
      const lin = await get(c.url(leader), 'k');
      assert.equal(lin.status, 503, 'no linearizable read without a quorum');
      const stale = await get(c.url(leader), 'k', 'stale');
      assert.equal(stale.status, 200);
      assert.equal(stale.body.value, 'before');
      assert.equal(stale.body.stale, true);
      await c.startNode(f1);
      await writeOk(c, 'k', 'after');
      const back = await eventually('linearizable read', async () => {
        const r = await get(c.url(f1), 'k');
        return r.status === 200 ? r : undefined;
      });
      assert.equal(back.body.value, 'after');
    });
  });

  test('minority partition: the isolated leader refuses, the majority carries on, the node catches up', async () => {
    await withCluster(3, async (c) => {
      const old = await c.waitLeader();
      await writeOk(c, 'p', 'v0');
      const rest = followersOf(c, old);
      c.partition([old], rest, 'blackhole');
      const next = await c.waitLeader(10_000, [old]);
      for (let i = 1; i <= 5; i++) {
        const w = await put(c.url(next), 'p', `v${i}`);
        assert.ok([200, 201].includes(w.status), `majority write ${i}: ${w.status}`);
      }
      await eventually('the isolated node answers No quorum', async () => {
        const w = await put(c.url(old), 'p', 'lost');
        assert.equal(w.status, 503, `isolated write: ${w.status} ${JSON.stringify(w.body)}`);
        return w.body.error === 'No quorum' ? w : undefined;
      });
      const r = await get(c.url(old), 'p');
      assert.equal(r.status, 503, `isolated linearizable read: ${r.status} ${JSON.stringify(r.body)}`);
      c.healLinks();
      await eventually('the isolated node catches up', async () => {
        const s = await get(c.url(old), 'p', 'stale');
        return s.status === 200 && s.body.value === 'v5' ? s : undefined;
      });
      const lin = await eventually('linearizable read through the healed node', async () => {
        const x = await get(c.url(old), 'p');
        return x.status === 200 ? x : undefined;
      });
      assert.equal(lin.body.value, 'v5');
    });
  });

  test('every node killed and restarted: nothing acknowledged is lost', async () => {
    await withCluster(3, async (c) => {
      const leader = await c.waitLeader();
      const acked = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const w = await put(c.url(c.ids[i % 3] as number), `r${i % 10}`, i);
        if (w.status === 200 || w.status === 201) acked.set(`r${i % 10}`, i);
      }
      assert.equal(acked.size, 10);
      await call(c.url(leader), 'DELETE', '/kvs/r0');
      acked.delete('r0');
      await Promise.all(c.ids.map((id) => c.kill(id)));
      await Promise.all(c.ids.map((id) => c.startNode(id)));
      const l = await c.waitLeader();
      for (const [k, v] of acked) {
        const r = await get(c.url(l), k);
        assert.equal(r.status, 200, k);
        assert.equal(r.body.value, v, k);
      }
      assert.equal((await get(c.url(l), 'r0')).status, 404);
    });
  });
});
