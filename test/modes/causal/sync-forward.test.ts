/**
 * Causal mode, the original's details (issue 21): the replicas' store exchange at `GET /kvs/sync` (peer
 * credential required when a replica asks; a client still reads the key `sync`), and `--forward-to`: writes
 * received by a replica go to the designated one with their causal metadata, and the answer comes back.
 * In-process replicas sharing a cluster secret.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCausalReplica, type CausalReplicaHandle } from '../../../src/modes/causal/index.js';
import { clusterSecret, type ClusterSecret } from '../../../src/modes/common/cluster.js';
import { call, callRaw, freeAddresses } from './helpers.js';
import { signerFor, wrongSigner } from '../../security/helpers.js';

const TUNABLES = { syncIntervalMs: 100, peerTimeoutMs: 1000, failThreshold: 4, dependencyWaitMs: 150 };

let secret: ClusterSecret;
const handles: CausalReplicaHandle[] = [];

before(() => {
  secret = clusterSecret();
});
after(async () => {
  await Promise.all(handles.map((h) => h.close()));
  secret.dispose();
});

async function replica(address: string, view: readonly string[], forwardTo?: string): Promise<CausalReplicaHandle> {
  const h = await startCausalReplica({
    ...TUNABLES,
    socketAddress: address,
    view,
    clusterSecretFile: secret.file,
    ...(forwardTo === undefined ? {} : { forwardTo }),
  });
  handles.push(h);
  return h;
}

type Clock = Record<string, number>;

describe('GET /kvs/sync', () => {
  let a: CausalReplicaHandle;
  let addrs: string[];

  before(async () => {
    addrs = await freeAddresses(2);
    a = await replica(addrs[0] as string, [addrs[0] as string]);
  });

  test('a replica with the credential gets the clock and the writes it lacks', async () => {
    let meta: unknown = null;
    for (const k of ['x', 'y']) {
      const r = await call(a.url, 'PUT', `/kvs/${k}`, { value: `v-${k}`, 'causal-metadata': meta });
      assert.equal(r.status, 201);
      meta = r.body['causal-metadata'];
    }
    const sign = signerFor(secret.file, addrs[1]);
    const from = { 'x-qkv-from': addrs[1] as string };
    // No body: everything.
    let r = await callRaw(a.url, 'GET', '/kvs/sync', undefined, { ...from, ...sign('GET', '/kvs/sync', undefined) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.vc, { [addrs[0] as string]: 2 });
    const keys = (r.body.entries as { key: string; value: unknown }[]).map((e) => [e.key, e.value]).sort();
    assert.deepEqual(keys, [
      ['x', 'v-x'],
      ['y', 'v-y'],
    ]);
    assert.equal(typeof r.body.inc, 'string');
    // With the asker's clock: only what it lacks.
    const body = JSON.stringify({ vc: { [addrs[0] as string]: 1 } });
    r = await callRaw(a.url, 'GET', '/kvs/sync', body, { ...from, ...sign('GET', '/kvs/sync', body) });
    assert.equal(r.status, 200);
    assert.deepEqual(
      (r.body.entries as { key: string }[]).map((e) => e.key),
      ['y'],
    );
    const all = JSON.stringify({ vc: { [addrs[0] as string]: 2 } });
    r = await callRaw(a.url, 'GET', '/kvs/sync', all, { ...from, ...sign('GET', '/kvs/sync', all) });
    assert.deepEqual(r.body.entries, []);
    // A malformed clock is a 400.
    const bad = JSON.stringify({ vc: 'nope' });
    r = await callRaw(a.url, 'GET', '/kvs/sync', bad, { ...from, ...sign('GET', '/kvs/sync', bad) });
    assert.equal(r.status, 400);
  });

  test('a replica without a valid credential is refused; a client reads the key "sync"', async () => {
    const from = { 'x-qkv-from': addrs[1] as string };
    let r: { status: number; body: Record<string, unknown> } = await callRaw(
      a.url,
      'GET',
      '/kvs/sync',
      undefined,
      from,
    );
    assert.deepEqual([r.status, r.body], [401, { error: 'Peer credential required' }]);
    r = await callRaw(a.url, 'GET', '/kvs/sync', undefined, {
      ...from,
      ...wrongSigner()('GET', '/kvs/sync', undefined),
    });
    assert.deepEqual([r.status, r.body.error], [403, 'Invalid peer credential']);
    // A replay of a valid request is refused too.
    const headers = { ...from, ...signerFor(secret.file, addrs[1])('GET', '/kvs/sync', undefined) };
    assert.equal((await callRaw(a.url, 'GET', '/kvs/sync', undefined, headers)).status, 200);
    assert.equal((await callRaw(a.url, 'GET', '/kvs/sync', undefined, headers)).status, 403);

    r = await call(a.url, 'GET', '/kvs/sync');
    assert.deepEqual([r.status, r.body.error], [404, 'Key does not exist']);
    const put = await call(a.url, 'PUT', '/kvs/sync', { value: 'a key like any other', 'causal-metadata': null });
    assert.equal(put.status, 201);
    r = await call(a.url, 'GET', '/kvs/sync', { 'causal-metadata': put.body['causal-metadata'] });
    assert.deepEqual([r.status, r.body.value], [200, 'a key like any other']);
    // The contract's JSON /health is unchanged.
    r = await call(a.url, 'GET', '/health');
    assert.deepEqual([r.status, r.body.status, r.body.mode], [200, 'healthy', 'causal']);
  });
});

describe('--forward-to', () => {
  let main: CausalReplicaHandle;
  let b: CausalReplicaHandle;
  let d: CausalReplicaHandle;
  let addrs: string[];

  before(async () => {
    // main is the designated replica; b forwards to it; d (not forwarding) takes writes of its own.
    addrs = await freeAddresses(3);
    const [am, ab, ad] = addrs as [string, string, string];
    main = await replica(am, addrs);
    b = await replica(ab, addrs, am);
    d = await replica(ad, addrs);
  });

  test('a write sent to a forwarding replica is made by the designated one; the answer is relayed', async () => {
    const [am, ab] = addrs as [string, string];
    let r = await call(b.url, 'PUT', '/kvs/k1', { value: 'one', 'causal-metadata': null });
    assert.deepEqual([r.status, r.body.result], [201, 'created'], JSON.stringify(r.body));
    const m1 = r.body['causal-metadata'] as Clock;
    assert.deepEqual(m1, { [am]: 1 }, 'the write is the designated replica’s');
    // The designated replica has it at once; the forwarding replica has originated nothing.
    r = await call(main.url, 'GET', '/kvs/k1', { 'causal-metadata': m1 });
    assert.deepEqual([r.status, r.body.value], [200, 'one']);
    const st = await call(b.url, 'GET', '/status');
    assert.equal(st.body.forward_to, am);
    assert.equal((st.body.vector_clock as Clock)[ab], undefined);
    // Metadata given as a header travels too; a replace and a delete are relayed as such.
    r = await call(b.url, 'PUT', '/kvs/k1', { value: 'two' }, { 'x-causal-metadata': JSON.stringify(m1) });
    assert.deepEqual([r.status, r.body.result], [200, 'replaced']);
    const m2 = r.body['causal-metadata'] as Clock;
    assert.deepEqual(m2, { [am]: 2 });
    r = await call(b.url, 'DELETE', '/kvs/k1', { 'causal-metadata': m2 });
    assert.deepEqual([r.status, r.body.result], [200, 'deleted']);
    r = await call(b.url, 'DELETE', '/kvs/never', { 'causal-metadata': null });
    assert.deepEqual([r.status, r.body.error], [404, 'Key does not exist']);
    // Bad input is refused where it arrives, with the contract's errors.
    r = await call(b.url, 'PUT', '/kvs/k2', { 'causal-metadata': null });
    assert.deepEqual([r.status, r.body.error], [400, 'PUT request does not specify a value']);
    // Reads stay local: b serves k1's deletion once it has it.
    r = await call(b.url, 'GET', '/kvs/k1', { 'causal-metadata': r.body['causal-metadata'] ?? m2 });
    assert.ok(r.status === 404 || r.status === 503, JSON.stringify(r.body));
  });

  test('the causal metadata reaches the designated replica: it waits for what it lacks', async () => {
    const [am, , ad] = addrs as [string, string, string];
    // A write at d is a cause; a client that saw it writes through b, and main's answer depends on it.
    let r = await call(d.url, 'PUT', '/kvs/cause', { value: 'c', 'causal-metadata': null });
    assert.equal(r.status, 201);
    const cause = r.body['causal-metadata'] as Clock;
    r = await call(b.url, 'PUT', '/kvs/effect', { value: 'e', 'causal-metadata': cause });
    assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body));
    const m = r.body['causal-metadata'] as Clock;
    assert.ok((m[ad] ?? 0) >= (cause[ad] ?? 0) && (m[am] ?? 0) >= 1, JSON.stringify(m));
    r = await call(main.url, 'GET', '/kvs/cause', { 'causal-metadata': m });
    assert.deepEqual([r.status, r.body.value], [200, 'c'], 'main holds the cause when it acknowledges the effect');
    // A past no replica has (d made one write, not five): main cannot satisfy it, and says so through b.
    r = await call(b.url, 'PUT', '/kvs/effect', { value: 'e2', 'causal-metadata': { [ad]: 5 } });
    assert.deepEqual([r.status, r.body.error], [503, 'Causal dependencies not satisfied; try again later']);
    r = await call(main.url, 'GET', '/kvs/effect', { 'causal-metadata': m });
    assert.equal(r.body.value, 'e', 'the refused write was not made');
  });

  test('an unreachable designated replica: 503 with Retry-After', async () => {
    const [am] = addrs as [string];
    await call(b.url, 'POST', '/admin/partition', { peers: [am] });
    const r = await callRaw(b.url, 'PUT', '/kvs/k3', JSON.stringify({ value: 3, 'causal-metadata': null }));
    assert.deepEqual([r.status, r.body.error, r.body.forward_to], [503, 'Forward target unreachable', am]);
    assert.equal(r.headers['retry-after'], '1');
    await call(b.url, 'POST', '/admin/heal');
    await main.close();
    handles.splice(handles.indexOf(main), 1);
    const r2 = await call(b.url, 'DELETE', '/kvs/k1', { 'causal-metadata': null });
    assert.deepEqual([r2.status, r2.body.error], [503, 'Forward target unreachable']);
  });
});
