import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { LocalCluster } from '../../src/server/local-cluster.js';
import { eventually, startCluster } from '../server/helpers.js';

interface Res {
  status: number;
  body: Record<string, unknown>;
}

const basic = (user: string, password: string): string =>
  'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64');

/** One request with an optional Authorization header and JSON body. */
async function req(base: string, method: string, url: string, auth?: string, body?: unknown): Promise<Res> {
  const headers: Record<string, string> = {};
  if (auth !== undefined) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

const PASSWORDS = { ann: 'ann-secret-pw-1', bob: 'bob-secret-pw-2', carl: 'carl-secret-pw-3' };

describe('users, roles and permissions on a 3-process raft cluster (auth on)', () => {
  let cluster: LocalCluster;
  let dir: string;
  let cleanup: () => Promise<void>;
  let leader: number;
  let follower: number;
  let root: string;
  const ann = basic('ann', PASSWORDS.ann);
  const bob = basic('bob', PASSWORDS.bob);
  const carl = basic('carl', PASSWORDS.carl);
  const urlOf = (id: number) => cluster.url(id);

  before(async () => {
    ({ cluster, dir, cleanup } = await startCluster({ auth: true, logLevel: 'info' }));
    leader = await cluster.waitLeader();
    follower = cluster.ids.find((id) => id !== leader) as number;
    root = basic('root', cluster.rootPassword as string);
    const u = urlOf(follower);
    // Management through a follower: forwarded to the leader with the Authorization header.
    for (const r of ['app-read', 'app-write'])
      assert.equal((await req(u, 'POST', '/auth/roles', root, { name: r })).status, 201);
    let r = await req(u, 'PUT', '/auth/roles/app-read/permissions', root, { prefix: 'app/', read: true });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await req(u, 'PUT', '/auth/roles/app-write/permissions', root, { prefix: 'app/', read: true, write: true });
    assert.equal(r.status, 200);
    for (const [name, password] of Object.entries(PASSWORDS)) {
      r = await req(u, 'POST', '/auth/users', root, { name, password });
      assert.deepEqual([r.status, r.body.result], [201, 'created']);
    }
    assert.equal((await req(u, 'POST', '/auth/users/ann/roles', root, { role: 'app-read' })).status, 200);
    assert.equal((await req(u, 'POST', '/auth/users/bob/roles', root, { role: 'app-write' })).status, 200);
    r = await req(u, 'PUT', '/kvs/app/x', root, { value: 'x0' });
    assert.equal(r.status, 201);
    assert.equal((await req(u, 'PUT', '/kvs/other/x', root, { value: 'o0' })).status, 201);
  });
  after(() => cleanup());

  test('no credential: 401 on every client and management route of every node; health, status, metrics open', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/kvs/app/x'],
      ['GET', '/kvs/app/x?consistency=stale'],
      ['GET', '/kvs/app/x?consistency=lease'],
      ['PUT', '/kvs/app/x', { value: 1 }],
      ['DELETE', '/kvs/app/x'],
      ['GET', '/kvs?prefix=app/'],
      ['GET', '/kvs?prefix=app/&consistency=stale'],
      ['POST', '/txn', { compare: [], success: [{ op: 'put', key: 'app/t', value: 1 }] }],
      ['GET', '/auth/users'],
      ['POST', '/auth/users', { name: 'eve', password: 'eve-password' }],
      ['DELETE', '/auth/users/ann'],
      ['POST', '/auth/roles', { name: 'r' }],
      ['PUT', '/auth/roles/app-read/permissions', { prefix: '', read: true }],
      ['POST', '/auth/disable'],
      ['POST', '/admin/fail'],
      ['POST', '/admin/faults', { drop: [] }],
    ];
    for (const id of cluster.ids) {
      for (const [m, p, b] of routes) {
        const r = await req(urlOf(id), m, p, undefined, b);
        assert.deepEqual([r.status, r.body], [401, { error: 'Not authenticated' }], `${m} ${p} on node ${id}`);
      }
      assert.equal((await req(urlOf(id), 'GET', '/health')).status, 200);
      const st = await req(urlOf(id), 'GET', '/status');
      assert.equal(st.status, 200);
      assert.equal(st.body.auth_enabled, true);
      assert.equal((await fetch(urlOf(id) + '/metrics')).status, 200);
      assert.deepEqual((await req(urlOf(id), 'GET', '/auth/status')).body, {
        enabled: true,
        revision: (await req(urlOf(id), 'GET', '/auth/status')).body.revision,
      });
    }
    // Nothing was written or failed by the refused requests.
    const r = await req(urlOf(leader), 'GET', '/kvs/app/x', root);
    assert.equal(r.body.value, 'x0');
    assert.equal((await req(urlOf(leader), 'GET', '/status')).body.state, 'serving');
  });

  test('wrong passwords, unknown users, malformed headers and unknown tokens: 401', async () => {
    const bad = [
      basic('ann', 'wrong-password'),
      basic('ann', ''),
      basic('nobody', 'whatever-pw'),
      basic('root', (cluster.rootPassword as string) + 'x'),
      'Basic !!!',
      'Basic ' + Buffer.from('no-colon').toString('base64'),
      'Bearer not-a-token',
      'Digest x',
    ];
    for (const h of bad) {
      for (const id of [leader, follower]) {
        const r = await req(urlOf(id), 'GET', '/kvs/app/x', h);
        assert.deepEqual([r.status, r.body.error], [401, 'Not authenticated'], `${h} on ${id}`);
        const s = await req(urlOf(id), 'GET', '/kvs/app/x?consistency=stale', h);
        assert.equal(s.status, 401);
      }
    }
    const r = await req(urlOf(follower), 'POST', '/auth/authenticate', undefined, { name: 'ann', password: 'nope' });
    assert.deepEqual([r.status, r.body.error], [401, 'Not authenticated']);
  });

  test('a read-only user reads app/ and can neither write it nor read elsewhere (403)', async () => {
    for (const id of cluster.ids) {
      const u = urlOf(id);
      let r = await req(u, 'GET', '/kvs/app/x', ann);
      assert.deepEqual([r.status, r.body.value], [200, 'x0']);
      r = await req(u, 'GET', '/kvs/app/x?consistency=stale', ann);
      assert.deepEqual([r.status, r.body.value, r.body.stale], [200, 'x0', true]);
      r = await req(u, 'GET', '/kvs/app/missing', ann);
      assert.equal(r.status, 404, 'a readable missing key is a 404, not a 403');
      for (const [m, p, b] of [
        ['PUT', '/kvs/app/x', { value: 'ann' }],
        ['DELETE', '/kvs/app/x', undefined],
        ['GET', '/kvs/other/x', undefined],
        ['GET', '/kvs/other/x?consistency=stale', undefined],
        ['GET', '/kvs?prefix=', undefined],
        ['GET', '/kvs?prefix=ap', undefined],
        ['GET', '/kvs?prefix=other/&consistency=stale', undefined],
        ['GET', '/auth/users', undefined],
        ['POST', '/auth/roles', { name: 'mine' }],
        ['POST', '/auth/users/ann/roles', { role: 'app-write' }],
        ['POST', '/admin/faults', { drop: [] }],
      ] as const) {
        r = await req(u, m, p, ann, b);
        assert.deepEqual([r.status, r.body], [403, { error: 'Permission denied' }], `${m} ${p} on node ${id}`);
      }
      r = await req(u, 'GET', '/kvs?prefix=app/', ann);
      assert.equal(r.status, 200);
      assert.deepEqual(
        (r.body.keys as { key: string }[]).map((k) => k.key),
        ['app/x'],
      );
      // A user may read its own record, not another's.
      assert.deepEqual((await req(u, 'GET', '/auth/users/ann', ann)).body.roles, ['app-read']);
      assert.equal((await req(u, 'GET', '/auth/users/bob', ann)).status, 403);
      // A user without roles is authenticated but may do nothing.
      assert.equal((await req(u, 'GET', '/kvs/app/x', carl)).status, 403);
    }
    assert.equal((await req(urlOf(leader), 'GET', '/kvs/app/x', root)).body.value, 'x0');
  });

  test('write permission: put and delete under the prefix through any node, nothing elsewhere', async () => {
    for (const id of cluster.ids) {
      const u = urlOf(id);
      let r = await req(u, 'PUT', `/kvs/app/b${id}`, bob, { value: id });
      assert.deepEqual([r.status, r.body.result], [201, 'created']);
      r = await req(u, 'PUT', `/kvs/app/b${id}`, bob, { value: id + 10, if_version: 1 });
      assert.deepEqual([r.status, r.body.version], [200, 2]);
      r = await req(u, 'DELETE', `/kvs/app/b${id}`, bob);
      assert.deepEqual([r.status, r.body.result], [200, 'deleted']);
      r = await req(u, 'PUT', `/kvs/other/b${id}`, bob, { value: id });
      assert.equal(r.status, 403);
      r = await req(u, 'DELETE', '/kvs/other/x', bob);
      assert.equal(r.status, 403);
    }
    assert.equal((await req(urlOf(leader), 'GET', '/kvs/other/b1', root)).status, 404);
    assert.equal((await req(urlOf(leader), 'GET', '/kvs/other/x', root)).body.value, 'o0');
  });

  test('transactions: read on compared and fetched keys, write on written keys, both branches', async () => {
    const u = urlOf(follower);
    const txn = (compareKey: string, putKey: string, failureKey: string, getKey = 'app/x') => ({
      compare: [{ key: compareKey, target: 'exists', value: true }],
      success: [{ op: 'put', key: putKey, value: 'txn' }],
      failure: [
        { op: 'delete', key: failureKey },
        { op: 'get', key: getKey },
      ],
    });
    let r = await req(u, 'POST', '/txn', bob, txn('app/x', 'app/t', 'app/u'));
    assert.deepEqual([r.status, r.body.succeeded], [200, true]);
    for (const [body, why] of [
      [txn('other/x', 'app/t', 'app/u'), 'compare outside'],
      [txn('app/x', 'other/t', 'app/u'), 'put outside'],
      [txn('app/x', 'app/t', 'other/u'), 'delete in the failure branch outside'],
      [txn('app/x', 'app/t', 'app/u', 'other/x'), 'get outside'],
    ] as const) {
      r = await req(u, 'POST', '/txn', bob, body);
      assert.deepEqual([r.status, r.body.error], [403, 'Permission denied'], why);
    }
    // A read-only user may run a transaction that only compares and gets.
    r = await req(u, 'POST', '/txn', ann, {
      compare: [{ key: 'app/x', target: 'exists', value: true }],
      success: [{ op: 'get', key: 'app/x' }],
    });
    assert.deepEqual([r.status, r.body.succeeded], [200, true]);
    r = await req(u, 'POST', '/txn', ann, txn('app/x', 'app/t', 'app/u'));
    assert.equal(r.status, 403);
    r = await req(u, 'POST', '/txn', root, txn('other/x', 'other/t', 'other/u'));
    assert.equal(r.status, 200);
  });

  test('root-only management and admin; user and role listings', async () => {
    const u = urlOf(follower);
    let r = await req(u, 'GET', '/auth/users', root);
    assert.deepEqual(
      (r.body.users as { name: string }[]).map((x) => x.name),
      ['ann', 'bob', 'carl', 'root'],
    );
    assert.ok(!JSON.stringify(r.body).includes('hash') && !JSON.stringify(r.body).includes('salt'));
    r = await req(u, 'GET', '/auth/roles', root);
    assert.deepEqual(
      (r.body.roles as { name: string }[]).map((x) => x.name),
      ['root', 'app-read', 'app-write'],
    );
    r = await req(u, 'GET', '/auth/roles/app-read', ann);
    assert.deepEqual(r.body.permissions, [{ prefix: 'app/', read: true, write: false }], 'a role its user holds');
    assert.equal((await req(u, 'GET', '/auth/roles/app-write', ann)).status, 403);
    // Errors of management.
    assert.equal((await req(u, 'POST', '/auth/users', root, { name: 'ann', password: 'another-pw' })).status, 409);
    assert.equal((await req(u, 'POST', '/auth/users', root, { name: 'x:y', password: 'another-pw' })).status, 400);
    assert.equal((await req(u, 'POST', '/auth/users', root, { name: 'short', password: 'short' })).status, 400);
    assert.equal((await req(u, 'DELETE', '/auth/users/ghost', root)).status, 404);
    assert.equal((await req(u, 'DELETE', '/auth/users/root', root)).status, 409);
    assert.equal((await req(u, 'DELETE', '/auth/users/root/roles/root', root)).status, 409);
    assert.equal((await req(u, 'DELETE', '/auth/roles/root', root)).status, 409);
    assert.equal((await req(u, 'POST', '/auth/users/ann/roles', root, { role: 'ghost' })).status, 404);
    assert.equal((await req(u, 'DELETE', '/auth/roles/app-read/permissions?prefix=zz/', root)).status, 404);
    assert.equal((await req(u, 'PUT', '/auth/roles/app-read/permissions', root, { prefix: 'a/' })).status, 400);
    // Admin routes with the root credential (local to the node).
    r = await req(urlOf(follower), 'POST', '/admin/faults', root, { drop: [] });
    assert.deepEqual([r.status, r.body.result], [200, 'ok']);
    assert.equal((await req(urlOf(follower), 'POST', '/admin/fail', bob)).status, 403);
    // Another administrator: a user granted the root role.
    await req(u, 'POST', '/auth/users', root, { name: 'admin2', password: 'admin2-password' });
    await req(u, 'POST', '/auth/users/admin2/roles', root, { role: 'root' });
    const admin2 = basic('admin2', 'admin2-password');
    assert.equal((await req(u, 'GET', '/auth/users', admin2)).status, 200);
    assert.equal((await req(u, 'DELETE', '/auth/users/admin2', admin2)).status, 200);
    assert.equal((await req(u, 'GET', '/auth/users', admin2)).status, 401, 'a deleted user is no longer known');
  });

  test('bearer tokens: issued for a password, valid on every node, ended by logout and by a password change', async () => {
    let r = await req(urlOf(follower), 'POST', '/auth/authenticate', undefined, {
      name: 'ann',
      password: PASSWORDS.ann,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.name, 'ann');
    const token = `Bearer ${r.body.token as string}`;
    for (const id of cluster.ids) {
      await eventually(
        async () => (await req(urlOf(id), 'GET', '/kvs/app/x?consistency=stale', token)).status === 200,
        5000,
        `token known on node ${id}`,
      );
      assert.equal((await req(urlOf(id), 'GET', '/kvs/app/x', token)).status, 200);
      assert.equal((await req(urlOf(id), 'PUT', '/kvs/app/x', token, { value: 1 })).status, 403);
    }
    assert.equal((await req(urlOf(leader), 'GET', '/auth/status', token)).body.user, 'ann');
    r = await req(urlOf(follower), 'DELETE', '/auth/authenticate', token);
    assert.deepEqual([r.status, r.body.result], [200, 'deleted']);
    for (const id of cluster.ids) {
      assert.equal((await req(urlOf(id), 'GET', '/kvs/app/x', token)).status, 401);
    }
    // A password change ends the user's tokens and its cached password checks.
    r = await req(urlOf(leader), 'POST', '/auth/authenticate', undefined, { name: 'carl', password: PASSWORDS.carl });
    const carlToken = `Bearer ${r.body.token as string}`;
    assert.equal((await req(urlOf(leader), 'GET', '/auth/status', carlToken)).status, 200);
    assert.equal((await req(urlOf(leader), 'GET', '/auth/status', carl)).status, 200);
    r = await req(urlOf(leader), 'PUT', '/auth/users/carl/password', root, { password: 'carl-new-password' });
    assert.equal(r.status, 200);
    assert.equal((await req(urlOf(leader), 'GET', '/auth/status', carlToken)).status, 401);
    assert.equal((await req(urlOf(leader), 'GET', '/auth/status', carl)).status, 401);
    assert.equal(
      (await req(urlOf(leader), 'GET', '/auth/status', basic('carl', 'carl-new-password'))).body.user,
      'carl',
    );
  });

  test('revoking a role takes effect on the leader at once and on every follower', async () => {
    await req(urlOf(leader), 'POST', '/auth/roles', root, { name: 'temp' });
    await req(urlOf(leader), 'PUT', '/auth/roles/temp/permissions', root, { prefix: 'other/', read: true });
    await req(urlOf(leader), 'POST', '/auth/users/ann/roles', root, { role: 'temp' });
    // Granted: every node, stale reads included, lets ann read other/ once it applied the grant.
    for (const id of cluster.ids) {
      assert.equal((await req(urlOf(id), 'GET', '/kvs/other/x', ann)).status, 200);
      await eventually(
        async () => (await req(urlOf(id), 'GET', '/kvs/other/x?consistency=stale', ann)).status === 200,
        5000,
        `grant applied on node ${id}`,
      );
    }
    const r = await req(urlOf(follower), 'DELETE', '/auth/users/ann/roles/temp', root);
    assert.deepEqual([r.status, r.body.result], [200, 'revoked']);
    for (const id of cluster.ids) {
      // Linearizable reads are checked on the leader after a read barrier: refused at once.
      assert.equal((await req(urlOf(id), 'GET', '/kvs/other/x', ann)).status, 403, `node ${id}`);
      // A node's own (stale) answers follow once it has applied the revocation.
      await eventually(
        async () => (await req(urlOf(id), 'GET', '/kvs/other/x?consistency=stale', ann)).status === 403,
        5000,
        `revocation applied on node ${id}`,
      );
    }
    // Deleting the role entirely, and the permission on a prefix, work the same way.
    await req(urlOf(leader), 'DELETE', '/auth/roles/app-read/permissions?prefix=app%2F', root);
    for (const id of cluster.ids) assert.equal((await req(urlOf(id), 'GET', '/kvs/app/x', ann)).status, 403);
    await req(urlOf(leader), 'PUT', '/auth/roles/app-read/permissions', root, { prefix: 'app/', read: true });
    for (const id of cluster.ids) assert.equal((await req(urlOf(id), 'GET', '/kvs/app/x', ann)).status, 200);
  });

  test('the auth state survives a restart of every node (kill -9), tokens included', async () => {
    const t = await req(urlOf(leader), 'POST', '/auth/authenticate', undefined, {
      name: 'bob',
      password: PASSWORDS.bob,
    });
    const token = `Bearer ${t.body.token as string}`;
    await cluster.stopAll();
    await Promise.all(cluster.ids.map((id) => cluster.startNode(id)));
    leader = await cluster.waitLeader();
    follower = cluster.ids.find((id) => id !== leader) as number;
    for (const id of cluster.ids) {
      const u = urlOf(id);
      assert.equal((await req(u, 'GET', '/kvs/app/x')).status, 401);
      assert.equal((await req(u, 'GET', '/kvs/app/x', ann)).status, 200);
      assert.equal((await req(u, 'PUT', '/kvs/app/x', ann, { value: 2 })).status, 403);
      assert.equal((await req(u, 'PUT', '/kvs/app/r', token, { value: id })).status < 300, true);
      assert.equal((await req(u, 'GET', '/kvs/other/x', bob)).status, 403);
      assert.equal((await req(u, 'GET', '/auth/users', root)).status, 200);
    }
  });

  test('no password in any file under the data directories nor in any node log line', async () => {
    const secrets = [
      ...Object.values(PASSWORDS),
      'carl-new-password',
      'admin2-password',
      cluster.rootPassword as string,
    ];
    const forms = secrets.flatMap((s) => [s, Buffer.from(s).toString('base64')]);
    const files = filesUnder(dir);
    assert.ok(files.length > 5);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const s of forms) assert.ok(!bytes.includes(s), `${s} found in ${f}`);
    }
    for (const id of cluster.ids) {
      const log = (cluster.stdout.get(id) ?? '') + (cluster.stderr.get(id) ?? '');
      assert.ok(log.length > 0, 'the nodes log at info level');
      for (const s of forms) assert.ok(!log.includes(s), `${s} in node ${id}'s log`);
      for (const s of ['Basic ', 'authorization']) assert.ok(!log.toLowerCase().includes(s.toLowerCase()), s);
    }
  });

  test('auth disable by root: the contract is back to no credentials at all', async () => {
    let r = await req(urlOf(follower), 'POST', '/auth/disable', ann);
    assert.equal(r.status, 403);
    r = await req(urlOf(follower), 'POST', '/auth/disable', root);
    assert.deepEqual([r.status, r.body.result], [200, 'disabled']);
    for (const id of cluster.ids) {
      assert.equal((await req(urlOf(id), 'PUT', `/kvs/free${id}`, undefined, { value: 1 })).status, 201);
      assert.equal((await req(urlOf(id), 'GET', `/kvs/free${id}`)).status, 200);
    }
    assert.equal(
      (await req(urlOf(leader), 'POST', '/auth/authenticate', undefined, { name: 'ann', password: PASSWORDS.ann }))
        .status,
      409,
    );
    r = await req(urlOf(leader), 'POST', '/auth/enable');
    assert.deepEqual([r.status, r.body.result], [200, 'enabled']);
    assert.equal((await req(urlOf(leader), 'GET', '/kvs/free1')).status, 401);
  });
});
