import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { issueClientCert, readCa, createCa } from '../../src/net/certs.js';
import { tlsAgent } from '../../src/net/tls-config.js';
import { startCluster } from '../server/helpers.js';

const basic = (user: string, password: string): string =>
  'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64');

test('over HTTPS, a client certificate signed by the cluster CA authenticates its CN on every node', async () => {
  const { cluster, dir, cleanup } = await startCluster({ tls: true, auth: true, storage: 'memory' });
  try {
    const leader = await cluster.waitLeader();
    const follower = cluster.ids.find((id) => id !== leader) as number;
    const ca = readCa(path.join(dir, 'tls'));
    const caPem = cluster.caPem as string;
    const certy = await issueClientCert(ca, { name: 'certy' });
    const stranger = await issueClientCert(await createCa(), { name: 'certy' });
    const as = (client: { cert: string; key: string } | undefined) => {
      const agent = tlsAgent({ ca: caPem, ...(client ?? {}) });
      return async (id: number, method: string, url: string, body?: unknown, auth?: string) => {
        const headers: Record<string, string> = {};
        if (body !== undefined) headers['content-type'] = 'application/json';
        if (auth !== undefined) headers.authorization = auth;
        const res = await undiciFetch(cluster.url(id) + url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          dispatcher: agent,
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
    };
    const root = basic('root', cluster.rootPassword as string);
    const admin = as(undefined);
    // A certificate-only user (no password) with read on app/.
    assert.equal((await admin(leader, 'POST', '/auth/users', { name: 'certy', no_password: true }, root)).status, 201);
    await admin(leader, 'POST', '/auth/roles', { name: 'reader' }, root);
    await admin(leader, 'PUT', '/auth/roles/reader/permissions', { prefix: 'app/', read: true }, root);
    await admin(leader, 'POST', '/auth/users/certy/roles', { role: 'reader' }, root);
    assert.equal((await admin(leader, 'PUT', '/kvs/app/x', { value: 'v' }, root)).status, 201);

    const byCert = as(certy);
    for (const id of [leader, follower]) {
      // On a follower, linearizable reads are forwarded: the follower names the certificate's user.
      let r = await byCert(id, 'GET', '/kvs/app/x');
      assert.deepEqual([r.status, r.body.value], [200, 'v'], `node ${id}`);
      r = await byCert(id, 'GET', '/kvs/app/x?consistency=stale');
      assert.equal(r.status, 200);
      r = await byCert(id, 'PUT', '/kvs/app/x', { value: 'w' });
      assert.deepEqual([r.status, r.body.error], [403, 'Permission denied']);
      r = await byCert(id, 'GET', '/auth/status');
      assert.equal(r.body.user, 'certy');
      // An Authorization header wins over the certificate.
      r = await byCert(id, 'GET', '/kvs/app/x', undefined, root);
      assert.equal((await byCert(id, 'GET', '/auth/status', undefined, root)).body.user, 'root');
      assert.equal(r.status, 200);
      // A certificate from another CA, or none, names nobody.
      assert.equal((await as(stranger)(id, 'GET', '/kvs/app/x')).status, 401);
      assert.equal((await admin(id, 'GET', '/kvs/app/x')).status, 401);
    }
    // Revoking the role applies to the certificate's user too.
    await admin(leader, 'DELETE', '/auth/users/certy/roles/reader', undefined, root);
    assert.equal((await byCert(follower, 'GET', '/kvs/app/x')).status, 403);
  } finally {
    await cleanup();
  }
});
