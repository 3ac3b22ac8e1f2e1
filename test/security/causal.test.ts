/**
 * Peer credentials in causal mode: /internal/replicate, /internal/sync and a replica's view changes
 * (PUT / DELETE /view naming a sender in x-qkv-from) refuse requests from outside without a valid credential
 * (none, wrong, stale, replayed), and no replica's data or view changes; a client's PUT /view stays open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterSecret } from '../../src/modes/common/cluster.js';
import { spawnCluster, type ReplicaProcess } from '../modes/causal/helpers.js';
import {
  CREDENTIAL_INVALID,
  CREDENTIAL_REQUIRED,
  eventually,
  refusals,
  send,
  signerFor,
  skewedSigner,
  wrongSigner,
} from './helpers.js';

test('causal: internal routes and replica view changes refuse missing, wrong, stale and replayed credentials', async () => {
  const secret = clusterSecret();
  let rs: ReplicaProcess[] = [];
  try {
    rs = await spawnCluster(3, secret.env);
    const [r1, r2, r3] = rs as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
    let r2Err = '';
    r2.proc.stderr?.on('data', (d: Buffer) => (r2Err += d.toString()));
    let meta: unknown = null;
    for (const k of ['a', 'b', 'c']) {
      const r = await send(`${r1.url}/kvs/${k}`, 'PUT', JSON.stringify({ value: `v-${k}`, 'causal-metadata': meta }));
      assert.equal(r.status, 201, r.text);
      meta = r.body['causal-metadata'];
    }
    const state = async () =>
      Promise.all(
        rs.map(async (r) => {
          const s = (await send(`${r.url}/status`, 'GET', undefined)).body;
          const values = await Promise.all(
            ['a', 'b', 'c', 'evil'].map(async (k) => (await send(`${r.url}/kvs/${k}`, 'GET', undefined)).body.value),
          );
          return { clock: s.vector_clock, keys: s.keys, view: s.view, values };
        }),
      );
    await eventually(async () => (await state()).every((s) => s.keys === 3), 10_000, 'replication');
    const before = await state();

    const from = { 'x-qkv-from': r1.address };
    const forged = JSON.stringify({
      write: { key: 'evil', value: 'x', deleted: false, origin: r1.address, clock: { [r1.address]: 99 } },
    });
    const attacks: [string, string, string, Record<string, string>][] = [
      ['POST', '/internal/replicate', forged, {}],
      ['POST', '/internal/sync', JSON.stringify({ vc: {}, inc: 'x' }), from],
      ['PUT', '/view', JSON.stringify({ 'socket-address': '127.0.0.1:1' }), from],
      ['DELETE', '/view', JSON.stringify({ 'socket-address': r3.address }), from],
    ];
    for (const [method, path, body, headers] of attacks) {
      let r = await send(r2.url + path, method, body, headers);
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.deepEqual(r.body, CREDENTIAL_REQUIRED);
      for (const sign of [wrongSigner(), skewedSigner(secret.file, 90_000)]) {
        r = await send(r2.url + path, method, body, { ...headers, ...sign(method, path, body) });
        assert.equal(r.status, 403, `${method} ${path}`);
        assert.deepEqual(r.body, CREDENTIAL_INVALID);
      }
    }
    // A secret holder's requests are served once; the same bytes again are replays.
    const sign = signerFor(secret.file, r1.address);
    const syncBody = JSON.stringify({ vc: {}, inc: 'test' });
    const syncHeaders = { ...from, ...sign('POST', '/internal/sync', syncBody) };
    const sync = await send(`${r2.url}/internal/sync`, 'POST', syncBody, syncHeaders);
    assert.equal(sync.status, 200);
    const existing = (sync.body.entries as unknown[])[0];
    assert.ok(existing !== undefined);
    assert.equal((await send(`${r2.url}/internal/sync`, 'POST', syncBody, syncHeaders)).status, 403);
    const pushBody = JSON.stringify({ write: existing });
    const pushHeaders = sign('POST', '/internal/replicate', pushBody);
    assert.equal((await send(`${r2.url}/internal/replicate`, 'POST', pushBody, pushHeaders)).status, 200);
    assert.equal((await send(`${r2.url}/internal/replicate`, 'POST', pushBody, pushHeaders)).status, 403);
    // The captured push's credential on another write.
    assert.equal((await send(`${r2.url}/internal/replicate`, 'POST', forged, pushHeaders)).status, 403);

    // A client's view change needs no credential (the contract's /view): re-adding a member changes nothing.
    const client = await send(`${r2.url}/view`, 'PUT', JSON.stringify({ 'socket-address': r3.address }));
    assert.equal(client.status, 200);
    assert.equal(client.body.result, 'already present');

    await new Promise((r) => setTimeout(r, 300)); // a few peer-loop rounds
    assert.deepEqual(await state(), before);
    const n = await refusals(r2.url);
    assert.equal(n.get('http/missing'), 4);
    assert.equal(n.get('http/bad-signature'), 5); // 4 wrong secrets + the reused push credential
    assert.equal(n.get('http/stale'), 4);
    assert.equal(n.get('http/replayed'), 2);
    assert.equal(r2Err.split('peer auth: refused http from').length - 1, 1, r2Err);

    // Replication between the replicas (signed) still works.
    const w = await send(`${r3.url}/kvs/d`, 'PUT', JSON.stringify({ value: 'v-d', 'causal-metadata': null }));
    assert.equal(w.status, 201);
    await eventually(async () => (await send(`${r1.url}/kvs/d`, 'GET', undefined)).body.value === 'v-d');
  } finally {
    await Promise.all(rs.map((r) => r.kill()));
    secret.dispose();
  }
});
