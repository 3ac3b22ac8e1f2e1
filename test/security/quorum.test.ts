/**
 * Peer credentials in quorum mode: a follower's /replicate refuses requests from outside — without a
 * credential, with a wrong, stale or tampered one, or replaying one the leader sent — and no node's data
 * changes. The leader's link to one follower runs through a recording proxy, which captures what to replay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterSecret } from '../../src/modes/common/cluster.js';
import { freePorts, spawnModeNode, type SpawnedNode } from '../../src/modes/common/spawn.js';
import {
  CREDENTIAL_INVALID,
  CREDENTIAL_REQUIRED,
  RecordingProxy,
  eventually,
  refusals,
  replay,
  send,
  signerFor,
  skewedSigner,
  wrongSigner,
} from './helpers.js';

test('quorum: /replicate from outside is refused with no, a wrong, a stale, a tampered or a replayed credential', async () => {
  const secret = clusterSecret();
  const [lp, f1p, f2p] = await freePorts(3);
  const proxy = await RecordingProxy.start({ host: '127.0.0.1', port: f1p as number });
  const nodes: SpawnedNode[] = [];
  let f1Err = '';
  try {
    const leader = await spawnModeNode(
      'quorum',
      ['--role', 'leader', '--port', String(lp), '--followers', `127.0.0.1:${proxy.port},127.0.0.1:${f2p}`],
      { ...secret.env, WRITE_QUORUM: '2' },
    );
    nodes.push(leader);
    for (const [id, p] of [
      ['f1', f1p],
      ['f2', f2p],
    ] as const) {
      const f = await spawnModeNode(
        'quorum',
        ['--role', 'follower', '--id', id, '--port', String(p), '--leader', `127.0.0.1:${lp}`],
        secret.env,
      );
      nodes.push(f);
    }
    const [, f1] = nodes as [SpawnedNode, SpawnedNode, SpawnedNode];
    f1.child.stderr?.on('data', (d: Buffer) => (f1Err += d.toString()));

    // The leader signs its replication: writes reach both followers (W = 2).
    for (const k of ['a', 'b', 'c']) {
      const r = await send(`${leader.url}/write`, 'POST', JSON.stringify({ key: k, value: `v-${k}` }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.acks, 2);
    }
    const data = async () =>
      Promise.all(nodes.map(async (n) => (await send(`${n.url}/data?tombstones=1`, 'GET', undefined)).body.data));
    await eventually(async () => (await data()).every((d) => Object.keys(d as object).length === 3));
    const before = await data();

    const url = `${f1.url}/replicate`;
    const evil = JSON.stringify({ key: 'a', value: 'evil', version: 99 });
    const batch = JSON.stringify({ entries: [{ key: 'z', value: 'evil', version: 1 }] });
    // No credential: both body forms, and the leader's /replicate too.
    for (const [u, b] of [
      [url, evil],
      [url, batch],
      [`${leader.url}/replicate`, evil],
    ] as const) {
      const r = await send(u, 'POST', b);
      assert.equal(r.status, 401, u);
      assert.deepEqual(r.body, CREDENTIAL_REQUIRED);
    }
    // A wrong secret; the right one with a clock 2 minutes off.
    for (const sign of [wrongSigner(), skewedSigner(secret.file, -120_000), skewedSigner(secret.file, 120_000)]) {
      const r = await send(url, 'POST', evil, sign('POST', '/replicate', evil));
      assert.equal(r.status, 403);
      assert.deepEqual(r.body, CREDENTIAL_INVALID);
    }
    // What the leader sent f1, captured on the wire: replayed as is, or with another body.
    const captured = proxy.find('/replicate', (c) => c.body.includes('"a"'));
    assert.ok(captured !== undefined, 'the leader sent a signed /replicate');
    assert.ok(captured.headers['x-qkv-signature'] !== undefined);
    let r = await replay(f1.url, captured);
    assert.equal(r.status, 403, 'replayed');
    r = await replay(f1.url, captured, evil);
    assert.equal(r.status, 403, 'tampered');
    // A signature for another route does not open this one.
    r = await send(url, 'POST', evil, signerFor(secret.file)('POST', '/write', evil));
    assert.equal(r.status, 403);

    assert.deepEqual(await data(), before);
    const n = await refusals(f1.url);
    assert.equal(n.get('http/missing'), 2);
    assert.equal(n.get('http/stale'), 2);
    assert.equal(n.get('http/bad-signature'), 3); // wrong secret, tampered body, other route
    assert.equal(n.get('http/replayed'), 1);
    assert.equal((await refusals(leader.url)).get('http/missing'), 1);
    // Logged once for this source, however many refusals.
    assert.equal(f1Err.split('peer auth: refused http from').length - 1, 1, f1Err);

    // Replication still works after all this.
    r = await send(`${leader.url}/write`, 'POST', JSON.stringify({ key: 'a', value: 'v2' }));
    assert.equal(r.status, 200);
    assert.equal(r.body.acks, 2);
    for (const node of nodes) assert.equal((await send(`${node.url}/read?key=a`, 'GET', undefined)).body.value, 'v2');
  } finally {
    await Promise.all(nodes.map((x) => x.stop()));
    await proxy.close();
    secret.dispose();
  }
});
