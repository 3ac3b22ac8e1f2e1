import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEventualNode, type RunningNode } from '../../../src/modes/eventual/index.js';
import { freePorts } from '../../../src/modes/common/spawn.js';
import { waitForConvergence } from '../../../src/check/convergence.js';

/** A guard against a hung test, not a timing assertion: the machine may be heavily loaded. */
const CALL_TIMEOUT_MS = 15_000;

// In-process replicas (the child-process path is covered by convergence.test.ts).
let nodes: RunningNode[] = [];
let ports: number[] = [];

function start(i: number, antiEntropyIntervalMs = 100, on = ports): Promise<RunningNode> {
  return startEventualNode({
    id: `r${i + 1}`,
    port: on[i],
    peers: on.filter((_, j) => j !== i).map((p) => `http://127.0.0.1:${p}`),
    antiEntropyIntervalMs,
    catchUpTimeoutMs: 500,
    peerTimeoutMs: 2000,
  });
}

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

before(async () => {
  ports = await freePorts(3);
  nodes = await Promise.all([0, 1, 2].map((i) => start(i)));
});

after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
});

test('/kvs contract: created, replaced, found, deleted, 404s, with timestamp and node_id', async () => {
  const [a, b] = nodes;
  let r = await call('PUT', `${a.url}/kvs/color`, { value: 'red' });
  assert.equal(r.status, 201);
  assert.equal(r.body.result, 'created');
  assert.equal(r.body.node_id, 'r1');
  const ts = r.body.timestamp as { wall: number; logical: number; node: string };
  assert.equal(ts.node, 'r1');
  assert.ok(Number.isInteger(ts.wall) && Number.isInteger(ts.logical));
  r = await call('PUT', `${a.url}/kvs/color`, { value: 'blue' });
  assert.deepEqual([r.status, r.body.result], [200, 'replaced']);
  const report = await waitForConvergence(
    nodes.map((n) => n.url),
    { timeoutMs: 10_000 },
  );
  assert.ok(report.converged);
  r = await call('GET', `${b.url}/kvs/color`);
  assert.deepEqual([r.status, r.body.result, r.body.value, r.body.node_id], [200, 'found', 'blue', 'r2']);
  r = await call('DELETE', `${b.url}/kvs/color`);
  assert.deepEqual([r.status, r.body.result, r.body.node_id], [200, 'deleted', 'r2']);
  r = await call('GET', `${b.url}/kvs/color`);
  assert.deepEqual([r.status, r.body], [404, { error: 'Key does not exist' }]);
  r = await call('DELETE', `${b.url}/kvs/color`);
  assert.deepEqual([r.status, r.body], [404, { error: 'Key does not exist' }]);

  r = await call('POST', `${a.url}/write`, { key: 'w', value: [1] });
  assert.deepEqual(
    [r.status, r.body.status, r.body.key, r.body.value, r.body.node_id],
    [200, 'success', 'w', [1], 'r1'],
  );
  r = await call('GET', `${a.url}/read?key=w`);
  assert.deepEqual([r.status, r.body.value], [200, [1]]);
  r = await call('GET', `${a.url}/health`);
  assert.deepEqual(r.body, { status: 'healthy', node_id: 'r1', mode: 'eventual', role: 'replica' });
  r = await call('GET', `${a.url}/status`);
  assert.equal((r.body.peers as unknown[]).length, 2);
});

test('bad input gets 4xx JSON errors', async () => {
  const u = nodes[0].url;
  const cases: [string, string, unknown, number, string | RegExp][] = [
    ['PUT', '/kvs/k', {}, 400, 'PUT request does not specify a value'],
    ['PUT', '/kvs/k', '{"value"', 400, /Malformed JSON/],
    ['PUT', `/kvs/${'x'.repeat(1025)}`, { value: 1 }, 400, 'Key is too long'],
    ['PUT', '/kvs/k', { value: 'x'.repeat(1024 * 1024 + 1) }, 413, 'Value is too large'],
    ['POST', '/write', { value: 1 }, 400, 'Write request does not specify a key'],
    ['POST', '/replicate', { entries: [{ key: 'k', value: 1 }] }, 400, 'Entry has no valid timestamp'],
    ['POST', '/sync/digest', { buckets: ['00'] }, 400, /256 buckets/],
    ['POST', '/sync/keys', { buckets: [1] }, 400, /summary/],
    ['GET', '/nope', undefined, 404, 'Not found'],
    ['POST', '/kvs/k', undefined, 405, /not allowed/],
  ];
  for (const [method, path, body, status, error] of cases) {
    const r = await call(method, `${u}${path}`, body);
    assert.equal(r.status, status, `${method} ${path}`);
    if (typeof error === 'string') assert.equal(r.body.error, error);
    else assert.match(String(r.body.error), error);
  }
});

test('concurrent writes to one key: every replica ends with the highest timestamp (node id breaks ties)', async () => {
  const writes = await Promise.all(nodes.map((n, i) => call('PUT', `${n.url}/kvs/contended`, { value: `from-${i}` })));
  const stamps = writes.map((w, i) => ({ ts: w.body.timestamp as { wall: number; logical: number; node: string }, i }));
  stamps.sort((x, y) => x.ts.wall - y.ts.wall || x.ts.logical - y.ts.logical || (x.ts.node < y.ts.node ? -1 : 1));
  const winner = `from-${stamps[stamps.length - 1].i}`;
  const report = await waitForConvergence(
    nodes.map((n) => n.url),
    { timeoutMs: 10_000 },
  );
  assert.ok(report.converged);
  for (const n of nodes) assert.equal((await call('GET', `${n.url}/kvs/contended`)).body.value, winner);
});

test('a failed replica refuses clients and peers; on recover it pulls only what differs, then serves', async () => {
  // Its own trio with periodic anti-entropy effectively off, so only the recovery's catch-up ships records.
  const own = await freePorts(3);
  const trio = await Promise.all([0, 1, 2].map((i) => start(i, 60_000, own)));
  try {
    await failAndRecover(trio);
  } finally {
    await Promise.all(trio.map((n) => n.close()));
  }
});

async function failAndRecover([a, b, c]: RunningNode[]): Promise<void> {
  await Promise.all(Array.from({ length: 60 }, (_, i) => call('PUT', `${a.url}/kvs/bulk-${i}`, { value: i })));
  assert.ok((await waitForConvergence([a.url, b.url, c.url], { timeoutMs: 10_000 })).converged);

  assert.equal((await call('POST', `${c.url}/admin/fail`)).body.status, 'failed');
  const refused = await call('GET', `${c.url}/kvs/bulk-1`);
  assert.deepEqual([refused.status, refused.body.error], [503, 'Node is failed']);
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal((await call('PUT', `${c.url}/kvs/x`, { value: 1 })).status, 503);
  assert.equal((await call('POST', `${c.url}/sync/digest`, { buckets: [] })).status, 503);

  for (const i of [3, 30, 59]) await call('PUT', `${b.url}/kvs/bulk-${i}`, { value: `changed-${i}` });
  await call('DELETE', `${a.url}/kvs/bulk-7`);
  await new Promise((r) => setTimeout(r, 250));
  const stale = await call('GET', `${c.url}/data`);
  assert.equal(stale.status, 503);

  const rec = await call('POST', `${c.url}/admin/recover`);
  assert.equal(rec.body.status, 'serving');
  const rounds = (rec.body.catch_up as { synced_from: { pulled: number; pushed: number }[] }).synced_from;
  const pulled = rounds.reduce((s, r) => s + r.pulled, 0);
  // Four records changed while it was failed; only those (at most once per peer) were shipped, not all 60.
  assert.ok(pulled >= 4 && pulled <= 8, `pulled ${pulled}`);
  assert.equal((await call('GET', `${c.url}/kvs/bulk-30`)).body.value, 'changed-30');
  assert.equal((await call('GET', `${c.url}/kvs/bulk-7`)).status, 404);
  assert.ok((await waitForConvergence([a.url, b.url, c.url], { timeoutMs: 10_000 })).converged);
}
