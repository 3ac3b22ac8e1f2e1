import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalCluster } from '../../src/server/local-cluster.js';
import { call, del, get, put, startCluster } from './helpers.js';

describe('raft-mode HTTP API on a 3-process cluster', () => {
  let cluster: LocalCluster;
  let cleanup: () => Promise<void>;
  let leader: number;

  before(async () => {
    ({ cluster, cleanup } = await startCluster({ storage: 'memory' }));
    leader = await cluster.waitLeader();
  });
  after(() => cleanup());

  test('put / get / delete through every node (followers forward)', async () => {
    for (const id of cluster.ids) {
      const u = cluster.url(id);
      const key = `dir/key ${id}/é`;
      let r = await put(u, key, { value: `v${id}` });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.result, 'created');
      assert.equal(r.body.version, 1);
      assert.equal(r.body.leader, leader);
      assert.equal(typeof r.body.revision, 'number');
      const rev1 = r.body.revision as number;
      r = await put(u, key, { value: { nested: [1, 2, id] } });
      assert.deepEqual([r.status, r.body.result, r.body.version], [200, 'replaced', 2]);
      assert.ok((r.body.revision as number) > rev1);
      for (const other of cluster.ids) {
        r = await get(cluster.url(other), key);
        assert.equal(r.status, 200);
        assert.deepEqual(r.body.value, { nested: [1, 2, id] });
        assert.deepEqual([r.body.result, r.body.version, r.body.leader], ['found', 2, leader]);
      }
      r = await del(u, key);
      assert.deepEqual([r.status, r.body.result], [200, 'deleted']);
      r = await get(u, key);
      assert.deepEqual([r.status, r.body.error], [404, 'Key does not exist']);
      r = await del(u, key);
      assert.deepEqual([r.status, r.body.error], [404, 'Key does not exist']);
    }
  });

  test('read levels: linearizable, lease, stale', async () => {
    const follower = cluster.ids.find((id) => id !== leader) as number;
    await put(cluster.url(leader), 'levels', { value: 1 });
    let r = await get(cluster.url(follower), 'levels', 'linearizable');
    assert.deepEqual([r.status, r.body.value], [200, 1]);
    r = await get(cluster.url(leader), 'levels', 'lease');
    assert.deepEqual([r.status, r.body.value], [200, 1]);
    r = await get(cluster.url(follower), 'levels', 'lease');
    assert.deepEqual([r.status, r.body.value], [200, 1]);
    r = await get(cluster.url(follower), 'levels', 'stale');
    assert.equal(r.body.stale, true);
    assert.equal(typeof r.body.applied, 'number');
    r = await get(cluster.url(follower), 'levels', 'bogus');
    assert.equal(r.status, 400);
    assert.equal(typeof r.body.error, 'string');
  });

  test('conditional writes: if_version and if_value give 412 with the current record', async () => {
    const u = cluster.url(cluster.ids.find((id) => id !== leader) as number);
    let r = await put(u, 'cas', { value: 'a', if_version: 0 });
    assert.equal(r.status, 201);
    r = await put(u, 'cas', { value: 'b', if_version: 0 });
    assert.equal(r.status, 412);
    assert.equal(r.body.error, 'Precondition failed');
    assert.deepEqual((r.body.current as Record<string, unknown>).value, 'a');
    assert.equal((r.body.current as Record<string, unknown>).version, 1);
    r = await put(u, 'cas', { value: 'b', if_version: 1 });
    assert.deepEqual([r.status, r.body.version], [200, 2]);
    r = await put(u, 'cas', { value: 'c', if_value: 'a' });
    assert.deepEqual([r.status, r.body.error], [412, 'Precondition failed']);
    r = await put(u, 'cas', { value: 'c', if_value: 'b' });
    assert.equal(r.status, 200);
    r = await put(u, 'cas-missing', { value: 'c', if_version: 3 });
    assert.equal(r.status, 412);
    assert.equal(r.body.current, null);
  });

  test('exactly-once retries with request_id', async () => {
    const u = cluster.url(cluster.ids.find((id) => id !== leader) as number);
    const first = await put(u, 'once', { value: 1, request_id: 'client-a:1' });
    assert.equal(first.status, 201);
    const retry = await put(u, 'once', { value: 1, request_id: 'client-a:1' });
    assert.equal(retry.status, 201);
    assert.equal(retry.body.revision, first.body.revision);
    const r = await get(u, 'once');
    assert.equal(r.body.version, 1);
    const next = await put(u, 'once', { value: 2, request_id: 'client-a:2' });
    assert.deepEqual([next.status, next.body.version], [200, 2]);
  });

  test('transactions apply atomically in one entry', async () => {
    const u = cluster.url(cluster.ids[0]);
    await put(u, 'acct/a', { value: 10 });
    const txn = {
      compare: [{ key: 'acct/a', target: 'value', op: '==', value: 10 }],
      success: [
        { op: 'put', key: 'acct/a', value: 5 },
        { op: 'put', key: 'acct/b', value: 5 },
        { op: 'get', key: 'acct/a' },
      ],
      failure: [{ op: 'get', key: 'acct/a' }],
    };
    let r = await call(u, 'POST', '/txn', txn);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.succeeded, true);
    const results = r.body.results as Record<string, unknown>[];
    assert.equal(results.length, 3);
    assert.equal(results[2].value, 5);
    const a = await get(cluster.url(cluster.ids[1]), 'acct/a');
    const b = await get(cluster.url(cluster.ids[2]), 'acct/b');
    assert.equal(a.body.revision, b.body.revision);
    r = await call(u, 'POST', '/txn', txn);
    assert.deepEqual([r.status, r.body.succeeded], [200, false]);
    r = await call(u, 'POST', '/txn', { compare: 'nope' });
    assert.equal(r.status, 400);
    assert.equal(typeof r.body.error, 'string');
  });

  test('prefix listing with limit', async () => {
    const u = cluster.url(cluster.ids[2]);
    for (let i = 0; i < 5; i++) await put(u, `list/${i}`, { value: i });
    await put(u, 'listx', { value: 'other' });
    let r = await call(u, 'GET', '/kvs?prefix=list/');
    assert.equal(r.status, 200);
    const keys = (r.body.keys as { key: string; value: number }[]).map((k) => k.key);
    assert.deepEqual(keys, ['list/0', 'list/1', 'list/2', 'list/3', 'list/4']);
    r = await call(u, 'GET', '/kvs?prefix=list/&limit=2');
    assert.deepEqual(
      (r.body.keys as { key: string }[]).map((k) => k.key),
      ['list/0', 'list/1'],
    );
    assert.equal(r.body.more, true);
    r = await call(u, 'GET', '/kvs?prefix=list/&limit=abc');
    assert.equal(r.status, 400);
    r = await call(u, 'GET', '/kvs?prefix=list/&consistency=stale');
    assert.deepEqual([r.status, r.body.stale], [200, true]);
  });

  test('malformed requests get 4xx JSON errors and the node keeps serving', async () => {
    for (const id of cluster.ids) {
      const u = cluster.url(id);
      let r = await call(u, 'PUT', '/kvs/k', undefined, { raw: '{"value":' });
      assert.equal(r.status, 400);
      assert.match(r.body.error as string, /JSON/);
      r = await call(u, 'PUT', '/kvs/k', {});
      assert.deepEqual([r.status, r.body.error], [400, 'PUT request does not specify a value']);
      r = await call(u, 'PUT', '/kvs/k', [1, 2]);
      assert.equal(r.status, 400);
      r = await call(u, 'PUT', '/kvs/k', 'just a string');
      assert.equal(r.status, 400);
      r = await call(u, 'PUT', '/kvs/k', { value: 1, if_version: 'x' });
      assert.equal(r.status, 400);
      r = await call(u, 'PUT', '/kvs/k', { value: 1, request_id: 42 });
      assert.equal(r.status, 400);
      r = await put(u, 'k'.repeat(1025), { value: 1 });
      assert.deepEqual([r.status, r.body.error], [400, 'Key is too long']);
      r = await put(u, 'big', { value: 'x'.repeat(1024 * 1024 + 10) });
      assert.deepEqual([r.status, r.body.error], [413, 'Value is too large']);
      r = await call(u, 'PUT', '/kvs/big', undefined, { raw: 'x'.repeat(3 * 1024 * 1024) });
      assert.equal(r.status, 413);
      r = await call(u, 'PUT', '/kvs/k', undefined, { raw: 'value=1', contentType: 'text/plain' });
      assert.ok(r.status >= 400 && r.status < 500, String(r.status));
      r = await call(u, 'GET', '/kvs/');
      assert.equal(r.status, 400);
      r = await call(u, 'GET', '/nope');
      assert.deepEqual([r.status, r.body.error], [404, 'Not found']);
      r = await call(u, 'PATCH', '/kvs/k', { value: 1 });
      assert.equal(r.status, 405);
      r = await call(u, 'GET', '/txn');
      assert.equal(r.status, 405);
      r = await call(u, 'POST', '/txn', undefined, { raw: '{' });
      assert.equal(r.status, 400);
      r = await call(u, 'POST', '/admin/faults', { drop: 'all' });
      assert.equal(r.status, 400);
      r = await call(u, 'GET', '/health');
      assert.deepEqual([r.status, r.body.status, r.body.mode, r.body.node_id], [200, 'healthy', 'raft', id]);
      r = await put(u, `still-${id}`, { value: 'ok' });
      assert.equal(r.status, 201);
    }
  });

  test('/status and /metrics', async () => {
    for (const id of cluster.ids) {
      const r = await call(cluster.url(id), 'GET', '/status');
      assert.equal(r.status, 200);
      assert.deepEqual([r.body.id, r.body.mode, r.body.leader], [id, 'raft', leader]);
      assert.equal(r.body.role, id === leader ? 'leader' : 'follower');
      for (const f of ['term', 'commit', 'applied']) assert.equal(typeof r.body[f], 'number', f);
      const peers = r.body.peers as { id: number; connected: boolean }[];
      assert.equal(peers.length, 2);
      const res = await fetch(cluster.url(id) + '/metrics');
      const text = await res.text();
      assert.equal(res.status, 200);
      assert.match(text, /quorumkv_http_requests_total\{/);
      assert.match(text, /quorumkv_raft_commit_index \d+/);
      assert.match(text, /quorumkv_http_request_duration_seconds_bucket/);
      if (id === leader) assert.match(text, /quorumkv_raft_proposals_total [1-9]/);
    }
  });
});

describe('forwarding off', () => {
  test('a follower answers 307 with Location and the leader', async () => {
    const { cluster, cleanup } = await startCluster({ storage: 'memory', forward: false });
    try {
      const leader = await cluster.waitLeader();
      const follower = cluster.ids.find((id) => id !== leader) as number;
      const r = await put(cluster.url(follower), 'k', { value: 1 });
      assert.equal(r.status, 307);
      assert.deepEqual(r.body, { error: 'Not leader', leader, leader_url: cluster.url(leader) });
      assert.equal(r.headers.get('location'), cluster.url(leader) + '/kvs/k');
      const g = await get(cluster.url(follower), 'k', 'stale');
      assert.equal(g.status, 404);
      const w = await put(cluster.url(leader), 'k', { value: 1 });
      assert.equal(w.status, 201);
    } finally {
      await cleanup();
    }
  });
});
