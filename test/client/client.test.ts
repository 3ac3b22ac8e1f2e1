import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client,
  KvError,
  NotFoundError,
  PreconditionFailedError,
  UnavailableError,
  normalizeEndpoint,
} from '../../src/client/index.js';
import { FakeCluster } from './fake-cluster.js';

async function withCluster(
  n: number,
  opts: { forward?: boolean },
  fn: (c: FakeCluster) => Promise<void>,
): Promise<void> {
  const c = await FakeCluster.start(n, opts);
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

test('put / get / delete / cas / txn / list with typed results and errors', async () => {
  await withCluster(3, {}, async (c) => {
    const kv = new Client({ endpoints: c.endpoints });
    const key = 'dir/a b?c%d&é';
    const p1 = await kv.put(key, 'v1');
    assert.equal(p1.result, 'created');
    assert.equal(p1.version, 1);
    assert.equal(p1.leader, 1);
    assert.equal(typeof p1.revision, 'number');
    assert.ok(c.store.has(key), 'the key arrives URL-decoded');
    const p2 = await kv.put(key, { n: [1, 2] });
    assert.equal(p2.result, 'replaced');
    assert.equal(p2.version, 2);
    const g = await kv.get(key);
    assert.deepEqual(g.value, { n: [1, 2] });
    assert.equal(g.stale, false);
    assert.equal(g.revision, p2.revision);
    const s = await kv.get(key, { consistency: 'stale' });
    assert.equal(s.stale, true);
    assert.equal(typeof s.applied, 'number');

    await assert.rejects(kv.get('missing'), (e: unknown) => e instanceof NotFoundError && e.key === 'missing');
    await assert.rejects(kv.delete('missing'), NotFoundError);

    // cas and conditional puts
    const ok = await kv.cas(key, { n: [1, 2] }, 'v3');
    assert.equal(ok.version, 3);
    await assert.rejects(kv.cas(key, 'wrong', 'v4'), (e: unknown) => {
      assert.ok(e instanceof PreconditionFailedError);
      assert.equal(e.status, 412);
      assert.deepEqual((e.current as { value: string }).value, 'v3');
      return true;
    });
    await assert.rejects(kv.put(key, 'x', { ifVersion: 0 }), PreconditionFailedError);
    assert.equal((await kv.put('fresh', 'x', { ifVersion: 0 })).result, 'created');

    // txn
    const t = await kv.txn({
      compare: [{ key, target: 'value', op: '==', value: 'v3' }],
      success: [
        { op: 'put', key: 'dir/b', value: 2 },
        { op: 'get', key },
      ],
      failure: [{ op: 'delete', key }],
    });
    assert.equal(t.succeeded, true);
    assert.equal(t.results.length, 2);
    const t2 = await kv.txn({ compare: [{ key: 'nope', target: 'exists', op: '==', value: true }], success: [] });
    assert.equal(t2.succeeded, false);

    // list
    const l = await kv.list('dir/', 10);
    assert.deepEqual(
      l.items.map((i) => i.key),
      ['dir/a b?c%d&é', 'dir/b'],
    );
    assert.equal(l.items[1]?.value, 2);
    assert.equal(l.more, false);
    const page1 = await kv.list('dir/', 1);
    assert.equal(page1.items.length, 1);
    assert.equal(page1.more, true);
    const page2 = await kv.list('dir/', 1, { after: page1.items[0]?.key });
    assert.deepEqual(
      page2.items.map((i) => i.key),
      ['dir/b'],
    );

    const d = await kv.delete(key);
    assert.equal(d.result, 'deleted');
    await assert.rejects(kv.get(key), NotFoundError);

    // a 4xx is final: no retry, a KvError with the node's message
    const before = c.seen.length;
    await assert.rejects(kv.put('k'.repeat(2000), 1), (e: unknown) => {
      assert.ok(e instanceof KvError && !(e instanceof UnavailableError));
      assert.equal(e.status, 400);
      assert.equal(e.message, 'Key is too long');
      return true;
    });
    assert.equal(c.seen.length, before);
  });
});

test('follows 307 redirects and caches the leader', async () => {
  await withCluster(3, { forward: false }, async (c) => {
    const kv = new Client({ endpoints: [c.node(2).url, c.node(1).url, c.node(3).url] });
    await kv.put('a', 1);
    assert.deepEqual(
      c.seen.map((s) => s.node),
      [2, 1],
    );
    assert.equal(kv.currentEndpoint, c.node(1).url);
    assert.equal((await kv.get('a')).value, 1);
    assert.equal(c.seen.at(-1)?.node, 1);
    // leadership moves to 3: one redirect from 1, then 3 is cached
    c.leader = 3;
    await kv.put('a', 2);
    assert.deepEqual(
      c.seen.slice(-2).map((s) => s.node),
      [1, 3],
    );
    assert.equal(kv.currentEndpoint, c.node(3).url);
    // the retried request kept its request id across the redirect
    const [r1, r2] = c.seen.slice(-2);
    assert.equal(r1?.requestId, r2?.requestId);
  });
});

test('with forwarding on, learns which endpoint is the leader from /health ids', async () => {
  await withCluster(3, {}, async (c) => {
    const kv = new Client({ endpoints: [c.node(3).url, c.node(2).url, c.node(1).url] });
    await kv.put('a', 1);
    for (let i = 0; i < 50 && kv.currentEndpoint !== c.node(1).url; i++) {
      await new Promise((r) => setTimeout(r, 10));
      await kv.get('a');
    }
    assert.equal(kv.currentEndpoint, c.node(1).url);
  });
});

test('fails over on connection errors and 503, and gives up with UnavailableError', async () => {
  await withCluster(3, {}, async (c) => {
    await c.kill(1);
    c.leader = 2;
    c.node(2).behaviour = 'unavailable';
    const kv = new Client({ endpoints: c.endpoints, backoffMs: 5 });
    const r = await kv.put('k', 'v');
    assert.equal(r.result, 'created');
    assert.equal(r.endpoint, c.node(3).url);
    assert.equal(c.applied, 1);

    c.node(3).behaviour = 'unavailable';
    const kv2 = new Client({ endpoints: c.endpoints, backoffMs: 5, retries: 4, deadlineMs: 3000 });
    await assert.rejects(kv2.get('k'), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.equal(e.status, 503);
      assert.equal(e.body.error, 'No quorum');
      assert.equal(e.attempts.length, 5);
      assert.ok(e.attempts.some((a) => a.startsWith(c.node(1).url)));
      return true;
    });
  });
});

test('a write whose answer is lost is retried elsewhere with the same request id and applied once', async () => {
  await withCluster(3, {}, async (c) => {
    c.node(1).behaviour = 'apply-then-hang';
    const kv = new Client({ endpoints: c.endpoints, timeoutMs: 300, backoffMs: 5, clientId: 'cli7' });
    const r = await kv.put('once', 'v');
    assert.equal(r.result, 'created', 'the first outcome is returned');
    assert.equal(c.applied, 1);
    const puts = c.seen.filter((s) => s.method === 'PUT');
    assert.deepEqual(
      puts.map((s) => s.node),
      [1, 2],
    );
    assert.equal(puts[0]?.requestId, 'cli7:1');
    assert.equal(puts[1]?.requestId, 'cli7:1');
    // the next write gets the next sequence number
    c.node(1).behaviour = 'ok';
    await kv.put('once', 'w');
    assert.equal(c.seen.at(-1)?.requestId, 'cli7:2');
    assert.equal(c.applied, 2);
  });
});

test('timeouts everywhere end in UnavailableError within the deadline', async () => {
  await withCluster(2, {}, async (c) => {
    for (const n of c.nodes) n.behaviour = 'hang';
    const kv = new Client({ endpoints: c.endpoints, timeoutMs: 100, deadlineMs: 700, backoffMs: 5 });
    await assert.rejects(kv.get('x'), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.ok(e.attempts.length >= 2);
      assert.ok(e.attempts.every((a) => a.endsWith('timed out')));
      return true;
    });
  });
});

test('status() reports every node, unreachable ones as not ok', async () => {
  await withCluster(3, {}, async (c) => {
    await c.kill(2);
    const kv = new Client({ endpoints: c.endpoints });
    const st = await kv.status();
    assert.equal(st.length, 3);
    assert.equal(st[0]?.ok, true);
    assert.equal(st[1]?.ok, false);
    const s0 = st[0];
    if (s0?.ok) assert.equal(s0.status.role, 'leader');
  });
});

test('endpoints are validated and normalised', () => {
  assert.equal(normalizeEndpoint('127.0.0.1:8081'), 'http://127.0.0.1:8081');
  assert.equal(normalizeEndpoint('http://127.0.0.1:8081/'), 'http://127.0.0.1:8081');
  assert.throws(() => normalizeEndpoint('ftp://x'), TypeError);
  assert.throws(() => new Client({ endpoints: [] }), TypeError);
  const a = new Client({ endpoints: ['127.0.0.1:1'] });
  const b = new Client({ endpoints: ['127.0.0.1:1'] });
  assert.notEqual(a.clientId, b.clientId);
});

test('503 "No quorum" from every node ends the call after a short grace with that error; an election is waited out', async () => {
  await withCluster(3, {}, async (c) => {
    await c.kill(1);
    c.node(2).behaviour = 'unavailable';
    c.node(3).behaviour = 'unavailable';
    const kv = new Client({ endpoints: c.endpoints, backoffMs: 5, unavailableGraceMs: 500 });
    const t0 = Date.now();
    await assert.rejects(kv.put('k', 'v'), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.equal(e.status, 503);
      assert.deepEqual(e.everyNode, { error: 'No quorum', answered: 2, unreachable: 1 });
      assert.match(e.message, /^No quorum/);
      return true;
    });
    const took = Date.now() - t0;
    assert.ok(took < 3000, `gave up after ${took} ms, not at the 15 s deadline`);

    // Unavailable for less than the grace (a leader being elected): the call is retried and succeeds.
    setTimeout(() => (c.node(3).behaviour = 'ok'), 300);
    c.leader = 3;
    const slow = new Client({ endpoints: c.endpoints, backoffMs: 5, unavailableGraceMs: 2000 });
    const r = await slow.put('k2', 'v');
    assert.equal(r.result, 'created');
  });
});
