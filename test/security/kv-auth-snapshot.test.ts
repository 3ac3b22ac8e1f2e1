import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { eventually, startCluster } from '../server/helpers.js';

const basic = (user: string, password: string): string =>
  'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64');

async function req(base: string, method: string, url: string, auth?: string, body?: unknown) {
  const headers: Record<string, string> = {};
  if (auth !== undefined) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('users and roles travel in snapshots to a node that catches up by snapshot', async () => {
  const { cluster, dir, cleanup } = await startCluster({ auth: true, snapshotThreshold: 20, snapshotTrailing: 5 });
  try {
    const leader = await cluster.waitLeader();
    const late = cluster.ids.find((id) => id !== leader) as number;
    const lu = cluster.url(leader);
    const root = basic('root', cluster.rootPassword as string);
    await req(lu, 'POST', '/auth/roles', root, { name: 'data' });
    await req(lu, 'PUT', '/auth/roles/data/permissions', root, { prefix: 'data/', read: true, write: true });
    for (const name of ['dave', 'erin']) {
      assert.equal((await req(lu, 'POST', '/auth/users', root, { name, password: `${name}-password` })).status, 201);
      await req(lu, 'POST', `/auth/users/${name}/roles`, root, { role: 'data' });
    }
    const dave = basic('dave', 'dave-password');
    const erin = basic('erin', 'erin-password');
    const frank = basic('frank', 'frank-password');
    await eventually(
      async () => (await req(cluster.url(late), 'GET', '/kvs?prefix=data/&consistency=stale', erin)).status === 200,
      5000,
      'erin known on the late node',
    );

    // Cut the late node off (dropped messages are not queued for it) — admin routes need root.
    const cut = async (drop: (id: number) => number[]) => {
      for (const id of cluster.ids) {
        const r = await req(cluster.url(id), 'POST', '/admin/faults', root, { drop: drop(id) });
        assert.equal(r.status, 200);
      }
    };
    await cut((id) => (id === late ? cluster.ids.filter((x) => x !== late) : [late]));
    // While it is cut off: the auth state changes and the log moves far past a snapshot.
    assert.equal((await req(lu, 'DELETE', '/auth/users/erin/roles/data', root)).status, 200);
    assert.equal(
      (await req(lu, 'POST', '/auth/users', root, { name: 'frank', password: 'frank-password' })).status,
      201,
    );
    assert.equal((await req(lu, 'POST', '/auth/users/frank/roles', root, { role: 'data' })).status, 200);
    for (let i = 0; i < 80; i++) {
      assert.equal((await req(lu, 'PUT', `/kvs/data/k${i}`, dave, { value: i })).status, 201);
    }
    const before = await req(lu, 'GET', '/status');
    assert.ok((before.body.first_index as number) > 30, `the leader compacted its log: ${before.body.first_index}`);

    await cut(() => []);
    const u = cluster.url(late);
    await eventually(
      async () => {
        const s = await req(u, 'GET', '/status');
        return (s.body.applied as number) >= (before.body.commit as number);
      },
      10_000,
      'the late node caught up',
    );
    const st = await req(u, 'GET', '/status');
    assert.ok((st.body.counters as { snapshotsRestored: number }).snapshotsRestored >= 1, 'caught up by snapshot');
    assert.equal(st.body.auth_enabled, true);
    // Its own (stale) answers use the auth state the snapshot brought.
    const stale = '/kvs/data/k1?consistency=stale';
    assert.equal((await req(u, 'GET', stale)).status, 401);
    assert.deepEqual(
      [(await req(u, 'GET', stale, frank)).status, (await req(u, 'GET', stale, frank)).body.value],
      [200, 1],
    );
    assert.equal((await req(u, 'GET', stale, dave)).status, 200);
    assert.equal((await req(u, 'GET', stale, erin)).status, 403);
    assert.equal((await req(u, 'GET', '/kvs?prefix=data/&consistency=stale', erin)).status, 403);
    // And after a restart of that node, from its own snapshot.
    await cluster.kill(late);
    await cluster.startNode(late);
    await eventually(async () => (await req(u, 'GET', stale, frank)).status === 200, 5000, 'frank after restart');
    assert.equal((await req(u, 'GET', stale, erin)).status, 403);

    const secrets = ['dave-password', 'erin-password', 'frank-password', cluster.rootPassword as string];
    const snapshots = filesUnder(dir).filter((f) => /snap/i.test(path.basename(f)));
    assert.ok(snapshots.length > 0, 'snapshot files exist');
    for (const f of filesUnder(dir)) {
      const bytes = readFileSync(f);
      for (const s of secrets) assert.ok(!bytes.includes(s), `${s} in ${f}`);
    }
  } finally {
    await cleanup();
  }
});
