import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OpsMeter, isClientRoute } from '../../src/dashboard/meter.js';
import { differingKeys, registerDashboard, type NodeSummary } from '../../src/dashboard/server.js';
import { createHttpServer } from '../../src/server/http-common.js';
import { SseParser } from '../../src/client/chat-stream.js';
import type { LocalCluster } from '../../src/server/local-cluster.js';
import { call, eventually, startCluster } from '../server/helpers.js';

test('the meter counts operations per second with their p50 and p99', () => {
  let now = 1_000_000;
  const m = new OpsMeter(() => now);
  for (let i = 0; i < 98; i++) m.record(1);
  m.record(50);
  m.record(50);
  now += 1000;
  m.record(2);
  now += 1000;
  const s = m.samples(3);
  assert.equal(s.length, 3);
  assert.deepEqual(
    s.map((x) => x.ops),
    [0, 100, 1],
  );
  const busy = s[1] as { p50: number; p99: number };
  // Log buckets a fifth wide: 1 ms is reported as at most ~1.2 ms, 50 ms as at most ~60 ms.
  assert.ok(busy.p50 >= 1 && busy.p50 < 1.25, `p50 ${busy.p50}`);
  assert.ok(busy.p99 >= 50 && busy.p99 < 60, `p99 ${busy.p99}`);
  assert.equal(s[0]?.p50, null);
  // Old seconds are forgotten when their slot comes round again.
  now += 300_000;
  assert.ok(m.samples().every((x) => x.ops === 0));
});

test('client routes are metered; streams, status and the dashboard are not', () => {
  for (const u of ['/kvs/*', '/kvs', '/txn', '/write', '/read', '/chat/rooms/:room/messages'])
    assert.ok(isClientRoute(u), u);
  for (const u of ['/watch', '/chat/rooms/:room/stream', '/status', '/ui/events', '/health', undefined]) {
    assert.ok(!isClientRoute(u), String(u));
  }
});

test('eventual convergence: keys whose timestamp differs or that a replica lacks', () => {
  const node = (url: string, digest: [string, string][]): NodeSummary => ({ url, ok: true, extra: { digest } });
  const d = differingKeys([
    node('a', [
      ['k1', 't1'],
      ['k2', 't2'],
    ]),
    node('b', [
      ['k1', 't1'],
      ['k2', 't3'],
      ['k3', 't4'],
    ]),
    { url: 'c', ok: false },
  ]);
  assert.equal(d.compared, 2);
  assert.equal(d.count, 2);
  assert.deepEqual(d.keys, [
    { key: 'k2', values: { a: 't2', b: 't3' } },
    { key: 'k3', values: { a: null, b: 't4' } },
  ]);
});

interface Summary {
  nodes: NodeSummary[];
  mode: string;
  supervised: boolean;
  self: string;
}

/** The first `n` summaries of a node's /ui/events. */
async function summaries(url: string, n: number, timeoutMs = 8000): Promise<Summary[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const out: Summary[] = [];
  try {
    const res = await fetch(`${url}/ui/events`, { signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const p = new SseParser();
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      for (const ev of p.push(chunk)) if (ev.event === 'summary') out.push(JSON.parse(ev.data) as Summary);
      if (out.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return out;
}

describe('dashboard routes on a raft cluster', () => {
  let cluster: LocalCluster;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ cluster, cleanup } = await startCluster({ storage: 'memory' }));
    await cluster.waitLeader();
  });
  after(() => cleanup());

  test('/ui serves the bundled page; /ui/events pushes one summary per second with every node', async () => {
    const url = cluster.url(2);
    const page = await fetch(`${url}/ui`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /<script src="\/ui\/app\.js">/);
    const js = await fetch(`${url}/ui/app.js`);
    assert.equal(js.status, 200);
    assert.ok((await js.text()).length > 10_000, 'the bundle holds Preact and uPlot');
    assert.equal((await fetch(`${url}/ui/app.css`)).status, 200);
    const t0 = Date.now();
    const got = await summaries(url, 3);
    const took = Date.now() - t0;
    assert.equal(got.length, 3);
    assert.ok(took >= 1500 && took < 6000, `three summaries in ${took} ms`);
    const last = got[2] as Summary;
    assert.equal(last.mode, 'raft');
    assert.equal(last.supervised, false);
    assert.equal(last.nodes.length, 3);
    assert.ok(last.nodes.every((n) => n.ok));
    assert.equal(last.nodes.filter((n) => n.status?.role === 'leader').length, 1);
    // The first summary carries minutes of operations; later ones the last seconds.
    assert.ok((got[0]?.nodes[0]?.ops?.length ?? 0) > 200);
    assert.ok((last.nodes[0]?.ops?.length ?? 0) <= 3);
  });

  test('key browser: put, get, list (with revisions) and delete through any node', async () => {
    const put = await call(cluster.url(3), 'PUT', '/ui/kv/ui%2Fa', { value: { n: 1 } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const got = await call(cluster.url(1), 'GET', '/ui/kv/ui%2Fa');
    assert.deepEqual(got.body.value, { n: 1 });
    const list = await call(cluster.url(2), 'GET', '/ui/keys?prefix=ui/');
    assert.equal(list.status, 200);
    const keys = list.body.keys as { key: string; revision: number }[];
    assert.deepEqual(
      keys.map((k) => k.key),
      ['ui/a'],
    );
    assert.equal(keys[0]?.revision, put.body.revision);
    assert.equal((await call(cluster.url(2), 'DELETE', '/ui/kv/ui%2Fa')).status, 200);
    assert.equal((await call(cluster.url(2), 'GET', '/ui/kv/ui%2Fa')).status, 404);
    // Operations show in the meter.
    await eventually(async () => {
      const s = await call(cluster.url(3), 'GET', '/ui/summary?seconds=5');
      return ((s.body.ops as { ops: number }[]) ?? []).some((x) => x.ops > 0);
    });
  });

  test('controls: bad input is a 400, process actions need a supervisor, partition and heal work', async () => {
    const bad = await call(cluster.url(1), 'POST', '/ui/control', { action: 'explode', node: 'x' });
    assert.equal(bad.status, 400);
    const kill = await call(cluster.url(1), 'POST', '/ui/control', { action: 'kill', node: cluster.url(2) });
    assert.equal(kill.status, 409);
    assert.match(kill.body.error as string, /supervisor/);
    const part = await call(cluster.url(1), 'POST', '/ui/control', { action: 'partition', node: cluster.url(3) });
    assert.equal(part.status, 200, JSON.stringify(part.body));
    const st = await call(cluster.url(3), 'GET', '/status');
    assert.deepEqual(st.body.dropped_peers, [1, 2]);
    assert.deepEqual((await call(cluster.url(1), 'GET', '/status')).body.dropped_peers, [3]);
    const heal = await call(cluster.url(2), 'POST', '/ui/control', { action: 'heal', node: cluster.url(3) });
    assert.equal(heal.status, 200);
    for (const id of cluster.ids)
      assert.deepEqual((await call(cluster.url(id), 'GET', '/status')).body.dropped_peers, []);
  });
});

test('with auth on, the node controls are root only', async () => {
  const { cluster, cleanup } = await startCluster({ storage: 'memory', auth: true });
  try {
    // Every node has applied the enabling (the leader acknowledged it a moment ago).
    for (const id of cluster.ids) {
      await eventually(async () => (await call(cluster.url(id), 'GET', '/status')).body.auth_enabled === true);
    }
    const body = JSON.stringify({ action: 'heal', node: cluster.url(2) });
    const post = (headers: Record<string, string>) =>
      fetch(`${cluster.url(1)}/ui/control`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    assert.equal((await post({})).status, 401);
    const root = `Basic ${Buffer.from(`root:${cluster.rootPassword as string}`).toString('base64')}`;
    const ok = await post({ authorization: root });
    assert.equal(ok.status, 200, await ok.text());
    // The page itself and its summaries are public, like /status.
    assert.equal((await fetch(`${cluster.url(1)}/ui`)).status, 200);
    assert.equal((await fetch(`${cluster.url(1)}/ui/kv/x`)).status, 401);
  } finally {
    await cleanup();
  }
});

test('a node reachable beyond loopback refuses the controls without client auth', async () => {
  const app = createHttpServer();
  app.get('/status', () => ({ role: 'replica' }));
  registerDashboard(app, {
    mode: 'eventual',
    selfUrl: () => 'http://10.0.0.1:8100',
    peerUrls: () => [],
    exposed: true,
  });
  try {
    const res = await app.inject({
      method: 'POST',
      url: '/ui/control',
      payload: { action: 'partition', node: 'http://10.0.0.2:8100' },
    });
    assert.equal(res.statusCode, 403);
    assert.match(res.body, /beyond loopback/);
    const summary = await app.inject({ method: 'GET', url: '/ui/summary?seconds=2' });
    assert.equal(summary.statusCode, 200);
    assert.equal((JSON.parse(summary.body) as NodeSummary).status?.role, 'replica');
  } finally {
    await app.close();
  }
});
