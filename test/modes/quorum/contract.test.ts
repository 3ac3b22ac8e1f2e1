import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePorts, spawnModeNode, type SpawnedNode } from '../../../src/modes/common/spawn.js';

/** A guard against a hung test, not a timing assertion: the machine may be heavily loaded. */
const CALL_TIMEOUT_MS = 15_000;

// A real cluster of child processes: a leader with W = N = 3 and three followers, small simulated delays.
interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(method: string, url: string, body?: unknown): Promise<Answer> {
  const res = await fetch(url, {
    method,
    redirect: 'manual',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}

let leader: SpawnedNode;
let followers: SpawnedNode[] = [];
let followerPorts: number[] = [];
let leaderPort = 0;

function startFollower(port: number): Promise<SpawnedNode> {
  return spawnModeNode('quorum', ['--role', 'follower', '--port', String(port), '--leader', `127.0.0.1:${leaderPort}`]);
}

before(async () => {
  [leaderPort, ...followerPorts] = await freePorts(4);
  leader = await spawnModeNode(
    'quorum',
    [
      '--role',
      'leader',
      '--port',
      String(leaderPort),
      '--followers',
      followerPorts.map((p) => `127.0.0.1:${p}`).join(','),
    ],
    { WRITE_QUORUM: '3', MIN_DELAY: '0.5', MAX_DELAY: '5', WRITE_TIMEOUT_MS: '1500', REPAIR_INTERVAL_MS: '100' },
  );
  followers = await Promise.all(followerPorts.map(startFollower));
});

after(async () => {
  await Promise.all([leader, ...followers].filter((n) => n !== undefined).map((n) => n.stop()));
});

test('W = N: every follower holds the write when the leader answers', async () => {
  for (let i = 0; i < 20; i++) {
    const r = await call('POST', `${leader.url}/write`, { key: `k${i % 5}`, value: `v${i}` });
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'success');
    assert.equal(r.body.acks, 3);
    const version = r.body.version as number;
    for (const f of followers) {
      const got = await call('GET', `${f.url}/read?key=k${i % 5}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.value, `v${i}`);
      assert.equal(got.body.version, version);
    }
  }
  const r = await call('POST', `${leader.url}/write`, { key: 'k0', value: { nested: [1, 2] } });
  assert.deepEqual(r.body, { status: 'success', key: 'k0', value: { nested: [1, 2] }, version: 5, acks: 3 });
});

test('read, data, health and the /kvs routes follow the contract', async () => {
  let r = await call('PUT', `${leader.url}/kvs/fruit`, { value: 'apple' });
  assert.equal(r.status, 201);
  assert.equal(r.body.result, 'created');
  r = await call('PUT', `${leader.url}/kvs/fruit`, { value: 'pear' });
  assert.equal(r.status, 200);
  assert.equal(r.body.result, 'replaced');
  assert.equal(r.body.version, 2);
  r = await call('GET', `${followers[1].url}/kvs/fruit`);
  assert.deepEqual([r.status, r.body.result, r.body.value, r.body.version], [200, 'found', 'pear', 2]);
  r = await call('GET', `${followers[0].url}/read?key=fruit`);
  assert.deepEqual(r.body, { key: 'fruit', value: 'pear', version: 2, node_id: r.body.node_id });
  r = await call('DELETE', `${leader.url}/kvs/fruit`);
  assert.deepEqual([r.status, r.body.result, r.body.version], [200, 'deleted', 3]);
  for (const n of [leader, ...followers]) {
    r = await call('GET', `${n.url}/kvs/fruit`);
    assert.deepEqual([r.status, r.body], [404, { error: 'Key does not exist' }]);
    r = await call('GET', `${n.url}/read?key=fruit`);
    assert.deepEqual([r.status, r.body], [404, { error: 'Key does not exist' }]);
  }
  r = await call('DELETE', `${leader.url}/kvs/fruit`);
  assert.deepEqual([r.status, r.body], [404, { error: 'Key does not exist' }]);
  // A re-created key continues its version numbering, so followers never see it move backwards.
  r = await call('PUT', `${leader.url}/kvs/fruit`, { value: 'fig' });
  assert.deepEqual([r.status, r.body.result, r.body.version], [201, 'created', 4]);

  r = await call('GET', `${followers[2].url}/data`);
  assert.equal(r.status, 200);
  const data = r.body.data as Record<string, { value: unknown; version: number }>;
  assert.deepEqual(data.fruit, { value: 'fig', version: 4 });
  assert.equal(r.body.count, Object.keys(data).length);
  assert.equal(typeof r.body.node_id, 'string');

  r = await call('GET', `${leader.url}/health`);
  // The contract's fields, plus the leader's view of its write quorum.
  assert.deepEqual(r.body, {
    status: 'healthy',
    node_id: 'leader',
    mode: 'quorum',
    role: 'leader',
    quorum: true,
    reachable: 3,
    required: 3,
  });
  r = await call('GET', `${leader.url}/ready`);
  assert.deepEqual([r.status, r.body.ready], [200, true]);
  r = await call('GET', `${followers[0].url}/health`);
  assert.equal(r.body.role, 'follower');
  r = await call('GET', `${leader.url}/status`);
  assert.equal(r.body.write_quorum, 3);
  assert.equal((r.body.peers as unknown[]).length, 3);
  const metrics = await (await fetch(`${leader.url}/metrics`)).text();
  assert.match(metrics, /quorumkv_writes_total\{outcome="ok",mode="quorum",node_id="leader"\} \d+/);
});

test('followers redirect writes to the leader with 307', async () => {
  let r = await call('POST', `${followers[0].url}/write`, { key: 'a', value: 1 });
  assert.equal(r.status, 307);
  assert.equal(r.headers.get('location'), `${leader.url}/write`);
  assert.deepEqual(r.body, { error: 'Not leader', leader: 'leader', leader_url: leader.url });
  r = await call('PUT', `${followers[1].url}/kvs/a%2Fb`, { value: 1 });
  assert.equal(r.status, 307);
  assert.equal(r.headers.get('location'), `${leader.url}/kvs/a%2Fb`);
  // fetch follows the 307 with the same method and body.
  const res = await fetch(`${followers[1].url}/kvs/redirected`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value: 'via follower' }),
  });
  assert.equal(res.status, 201);
  r = await call('GET', `${followers[1].url}/kvs/redirected`);
  assert.equal(r.body.value, 'via follower');
});

test('bad input gets 4xx JSON errors', async () => {
  const cases: [string, string, unknown, number, string | RegExp][] = [
    ['POST', '/write', { value: 1 }, 400, 'Write request does not specify a key'],
    ['POST', '/write', { key: 'k' }, 400, 'PUT request does not specify a value'],
    ['POST', '/write', '{"key":', 400, /Malformed JSON/],
    ['POST', '/write', [1], 400, /JSON object/],
    ['POST', '/write', { key: 'x'.repeat(1025), value: 1 }, 400, 'Key is too long'],
    ['POST', '/write', { key: 'k', value: 'x'.repeat(1024 * 1024 + 1) }, 413, 'Value is too large'],
    ['PUT', '/kvs/k', {}, 400, 'PUT request does not specify a value'],
    ['GET', '/read', undefined, 400, 'Key is empty'],
    ['GET', '/nope', undefined, 404, 'Not found'],
    ['PATCH', '/kvs/k', undefined, 405, /not allowed/],
    ['GET', '/write', undefined, 405, /not allowed/],
    ['POST', '/replicate', { key: 'k', value: 1, version: 1 }, 409, /does not accept/],
  ];
  for (const [method, path, body, status, error] of cases) {
    const r = await call(method, `${leader.url}${path}`, body);
    assert.equal(r.status, status, `${method} ${path}`);
    if (typeof error === 'string') assert.equal(r.body.error, error);
    else assert.match(String(r.body.error), error);
  }
  const bad = await call('POST', `${followers[0].url}/replicate`, { key: 'k', value: 1, version: -1 });
  assert.equal(bad.status, 400);
});

test('a follower down: W = N writes fail with the 503 contract, the write stays on the leader and live followers; the follower catches up on restart', async () => {
  await followers[2].stop();
  const r = await call('POST', `${leader.url}/write`, { key: 'during-outage', value: 'v1' });
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('retry-after'), '1');
  assert.deepEqual(r.body, { error: 'Write quorum not reached', status: 'error', acks: 2, required: 3 });
  // What this mode does not guarantee: the failed write is not rolled back.
  for (const n of [leader, followers[0], followers[1]]) {
    const got = await call('GET', `${n.url}/read?key=during-outage`);
    assert.deepEqual([got.status, got.body.value, got.body.version], [200, 'v1', 1]);
  }
  const put = await call('PUT', `${leader.url}/kvs/during-outage`, { value: 'v2' });
  assert.equal(put.status, 503);
  assert.deepEqual(put.body, { error: 'Write quorum not reached', acks: 2, required: 3 });

  followers[2] = await startFollower(followerPorts[2]);
  const got = await call('GET', `${followers[2].url}/read?key=during-outage`);
  assert.deepEqual([got.status, got.body.value, got.body.version], [200, 'v2', 2]);
  const k0 = await call('GET', `${followers[2].url}/read?key=k0`);
  assert.equal(k0.body.version, 5);
  // Replication to it resumes: W = N succeeds again.
  const ok = await call('POST', `${leader.url}/write`, { key: 'after', value: 'x' });
  assert.deepEqual([ok.status, ok.body.acks], [200, 3]);
  assert.equal((await call('GET', `${followers[2].url}/read?key=after`)).body.value, 'x');
});
