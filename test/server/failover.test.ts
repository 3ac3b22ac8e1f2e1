import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalCluster } from '../../src/server/local-cluster.js';
import { FAST, eventually, get, put, startCluster } from './helpers.js';

const TIMEOUT = FAST.requestTimeoutMs as number;

describe('failures of real node processes (durable storage)', () => {
  let cluster: LocalCluster;
  let cleanup: () => Promise<void>;
  /** Every write the cluster acknowledged, with its value. */
  const acked = new Map<string, string>();

  async function writeSome(prefix: string, n: number, via: number[]): Promise<void> {
    for (let i = 0; i < n; i++) {
      const key = `${prefix}-${i}`;
      const value = `${prefix}:${i}:${Date.now()}`;
      const r = await put(cluster.url(via[i % via.length]), key, { value });
      assert.ok(r.status === 200 || r.status === 201, `${key}: ${r.status} ${JSON.stringify(r.body)}`);
      acked.set(key, value);
    }
  }

  async function checkAllAcked(via: number): Promise<void> {
    for (const [key, value] of acked) {
      const r = await get(cluster.url(via), key);
      assert.equal(r.status, 200, `${key} missing: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.value, value, key);
    }
  }

  before(async () => {
    ({ cluster, cleanup } = await startCluster({ storage: 'disk' }));
  });
  after(() => cleanup());

  test('kill -9 the leader: a new leader is elected, writes succeed again, acknowledged writes survive', async () => {
    const old = await cluster.waitLeader();
    await writeSome('before-kill', 20, [...cluster.ids]);
    await cluster.kill(old);
    const t0 = Date.now();
    const fresh = await cluster.waitLeader(10_000, [old]);
    assert.notEqual(fresh, old);
    assert.ok(Date.now() - t0 < 5000, `election took ${Date.now() - t0} ms`);
    const live = cluster.ids.filter((id) => id !== old);
    await writeSome('after-kill', 20, live);
    await checkAllAcked(live[0]);
    // The old leader restarts from its disk and catches up.
    await cluster.startNode(old);
    await eventually(async () => (await get(cluster.url(old), 'after-kill-19', 'stale')).status === 200, 5000);
    await checkAllAcked(old);
  });

  test('two of three down: writes and linearizable reads 503 within the timeout, stale reads answer; one back: service resumes', async () => {
    const leader = await cluster.waitLeader();
    await writeSome('quorum', 5, [leader]);
    const survivor = leader;
    const down = cluster.ids.filter((id) => id !== survivor);
    for (const id of down) await cluster.kill(id);
    const u = cluster.url(survivor);
    for (let round = 0; round < 1; round++) {
      const w = await put(u, 'no-quorum', { value: round });
      assert.equal(w.status, 503, JSON.stringify(w.body));
      assert.equal(w.body.error, 'No quorum');
      assert.ok(w.headers.get('retry-after') !== null);
      assert.ok(w.ms < TIMEOUT + 1000, `write answered after ${w.ms} ms`);
      const r = await get(u, 'quorum-0');
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error, 'No quorum');
      assert.ok(r.ms < TIMEOUT + 1000, `read answered after ${r.ms} ms`);
      const s = await get(u, 'quorum-0', 'stale');
      assert.deepEqual([s.status, s.body.value, s.body.stale], [200, acked.get('quorum-0'), true]);
    }
    await cluster.startNode(down[0]);
    await eventually(
      async () => {
        const r = await put(u, 'quorum-back', { value: 'yes' });
        if (r.status >= 300) return false;
        acked.set('quorum-back', 'yes');
        return true;
      },
      10_000,
      'writes to resume',
    );
    await checkAllAcked(survivor);
    await cluster.startNode(down[1]);
  });

  test('stop every node and restart all: every acknowledged write is present', async () => {
    const leader = await cluster.waitLeader();
    await writeSome('restart', 20, [leader]);
    await cluster.stopAll('SIGKILL');
    await Promise.all(cluster.ids.map((id) => cluster.startNode(id)));
    const fresh = await cluster.waitLeader();
    for (const id of cluster.ids) await checkAllAcked(id);
    assert.ok(acked.size >= 66);
    assert.ok(fresh > 0);
  });
});
