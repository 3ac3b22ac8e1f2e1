import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startQuorumNode, type RunningNode } from '../../../src/modes/quorum/index.js';
import { VersionedStore } from '../../../src/modes/quorum/store.js';
import { freePorts } from '../../../src/modes/common/spawn.js';

/** A guard against a hung test, not a timing assertion: the machine may be heavily loaded. */
const CALL_TIMEOUT_MS = 15_000;

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    redirect: 'manual',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** In-process cluster: the leader on a known port so followers can be started first or restarted. */
async function cluster(n: number, leaderOpts: { writeQuorum: number; minDelay?: number; maxDelay?: number }) {
  const [leaderPort, ...ports] = await freePorts(n + 1);
  const leaderUrl = `http://127.0.0.1:${leaderPort}`;
  const followerUrls = ports.map((p) => `http://127.0.0.1:${p}`);
  const startLeader = (writeQuorum: number) =>
    startQuorumNode({
      role: 'leader',
      port: leaderPort,
      followers: followerUrls,
      writeQuorum,
      minDelay: leaderOpts.minDelay ?? 0,
      maxDelay: leaderOpts.maxDelay ?? 2,
      writeTimeoutMs: 1000,
      replicateTimeoutMs: 500,
      repairIntervalMs: 50,
    });
  const startFollower = (i: number) =>
    startQuorumNode({ role: 'follower', id: `f${i}`, port: ports[i], leaderUrl, catchUpTimeoutMs: 1000 });
  const leader = await startLeader(leaderOpts.writeQuorum);
  const followers: RunningNode[] = [];
  for (let i = 0; i < n; i++) followers.push(await startFollower(i));
  return { leader, followers, followerUrls, startLeader, startFollower };
}

async function holders(urls: readonly string[], key: string, version: number): Promise<number> {
  const got = await Promise.all(urls.map((u) => call('GET', `${u}/read?key=${key}`)));
  return got.filter((g) => g.status === 200 && g.body.version === version).length;
}

test('W = 1: at least one follower holds the write when the leader answers; the rest follow in the background', async () => {
  const c = await cluster(3, { writeQuorum: 1, minDelay: 0, maxDelay: 40 });
  try {
    for (let i = 0; i < 10; i++) {
      const r = await call('POST', `${c.leader.url}/write`, { key: 'w1', value: i });
      assert.equal(r.status, 200);
      assert.ok((r.body.acks as number) >= 1);
      const version = r.body.version as number;
      assert.ok((await holders(c.followerUrls, 'w1', version)) >= 1);
      assert.ok(await waitFor(async () => (await holders(c.followerUrls, 'w1', version)) === 3, 10_000));
    }
  } finally {
    await Promise.all([c.leader, ...c.followers].map((n) => n.close()));
  }
});

test('a follower down: W = N fails with 503, W < N succeeds; a restarted leader continues the versions', async () => {
  const c = await cluster(3, { writeQuorum: 3 });
  try {
    assert.equal((await call('POST', `${c.leader.url}/write`, { key: 'k', value: 'a' })).body.version, 1);
    await c.followers[1].close();
    const r = await call('POST', `${c.leader.url}/write`, { key: 'k', value: 'b' });
    assert.deepEqual(
      [r.status, r.body],
      [503, { error: 'Write quorum not reached', status: 'error', acks: 2, required: 3 }],
    );
    assert.equal(r.headers.get('retry-after'), '1');

    // Same cluster, leader restarted with W = 2: it pulls the followers' state first, so versions continue.
    await c.leader.close();
    c.leader = await c.startLeader(2);
    const ok = await call('POST', `${c.leader.url}/write`, { key: 'k', value: 'c' });
    assert.deepEqual([ok.status, ok.body.status, ok.body.version, ok.body.acks], [200, 'success', 3, 2]);
    const put = await call('PUT', `${c.leader.url}/kvs/k`, { value: 'd' });
    assert.deepEqual([put.status, put.body.result, put.body.acks], [200, 'replaced', 2]);

    // The follower comes back: it pulls from the leader before serving, and replication to it resumes.
    c.followers[1] = await c.startFollower(1);
    const got = await call('GET', `${c.followerUrls[1]}/read?key=k`);
    assert.deepEqual([got.body.value, got.body.version], ['d', 4]);
    const again = await call('POST', `${c.leader.url}/write`, { key: 'k', value: 'e' });
    assert.deepEqual([again.status, again.body.version], [200, 5]);
    assert.ok(await waitFor(async () => (await holders(c.followerUrls, 'k', 5)) === 3, 10_000));
  } finally {
    await Promise.all([c.leader, ...c.followers].map((n) => n.close()));
  }
});

test('/admin/fail on a follower: it answers 503, misses writes, and has them on /admin/recover', async () => {
  const c = await cluster(3, { writeQuorum: 2 });
  try {
    const f = c.followerUrls[0];
    assert.deepEqual((await call('POST', `${f}/admin/fail`)).body.status, 'failed');
    const failed = await call('GET', `${f}/read?key=x`);
    assert.deepEqual([failed.status, failed.body.error], [503, 'Node is failed']);
    assert.equal(failed.headers.get('retry-after'), '1');
    assert.equal((await call('POST', `${f}/replicate`, { key: 'x', value: 1, version: 1 })).status, 503);
    for (let i = 0; i < 5; i++) {
      const r = await call('POST', `${c.leader.url}/write`, { key: `x${i}`, value: i });
      assert.deepEqual([r.status, r.body.acks], [200, 2]);
    }
    const st = await call('GET', `${c.leader.url}/status`);
    const peer = (st.body.peers as { url: string; state: string; missed_keys: number }[]).find((p) => p.url === f);
    assert.equal(peer?.state, 'down');
    assert.ok((peer?.missed_keys ?? 0) > 0);

    const rec = await call('POST', `${f}/admin/recover`);
    assert.equal(rec.body.status, 'serving');
    for (let i = 0; i < 5; i++) assert.equal((await call('GET', `${f}/read?key=x${i}`)).body.value, i);
    // The leader's repair loop also clears what it had recorded as missed.
    assert.ok(
      await waitFor(async () => {
        const s = await call('GET', `${c.leader.url}/status`);
        return (s.body.peers as { url: string; missed_keys: number }[]).every((p) => p.missed_keys === 0);
      }, 10_000),
    );
  } finally {
    await Promise.all([c.leader, ...c.followers].map((n) => n.close()));
  }
});

test('late or reordered replication never moves a follower backwards', async () => {
  const [port] = await freePorts(1);
  const f = await startQuorumNode({
    role: 'follower',
    port,
    leaderUrl: 'http://127.0.0.1:1',
    catchUpTimeoutMs: 0,
  });
  try {
    for (const version of [3, 1, 2, 3]) {
      const r = await call('POST', `${f.url}/replicate`, { key: 'r', value: `v${version}`, version });
      assert.equal(r.body.status, 'success');
    }
    const got = await call('GET', `${f.url}/read?key=r`);
    assert.deepEqual([got.body.value, got.body.version], ['v3', 3]);
    await call('POST', `${f.url}/replicate`, { entries: [{ key: 'r', version: 4, deleted: true }] });
    await call('POST', `${f.url}/replicate`, { key: 'r', value: 'late', version: 2 });
    assert.equal((await call('GET', `${f.url}/read?key=r`)).status, 404);
  } finally {
    await f.close();
  }
});

test('VersionedStore keeps the highest version whatever the delivery order', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 40 }), (versions) => {
      const s = new VersionedStore();
      for (const v of versions) s.apply('k', { value: v, version: v, deleted: v % 7 === 0 });
      const max = Math.max(...versions);
      assert.equal(s.get('k')?.version, max);
      assert.equal(s.get('k')?.value, max);
      assert.equal(s.liveCount, max % 7 === 0 ? 0 : 1);
    }),
  );
});
