import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  startCausalNode,
  startCausalReplica,
  causalClusterAddresses,
  type CausalReplicaHandle,
} from '../../../src/modes/causal/index.js';
import { call, callRaw, freeAddresses } from './helpers.js';

let r: CausalReplicaHandle;
let self: string;

before(async () => {
  [self] = await freeAddresses(1);
  r = await startCausalReplica({ socketAddress: self!, view: [self!], syncIntervalMs: 100, dependencyWaitMs: 50 });
});
after(async () => {
  await r.close();
});

test('PUT/GET/DELETE with causal metadata: exact codes, strings and metadata round trip', async () => {
  let res = await call(r.url, 'PUT', '/kvs/k1', { value: 'a', 'causal-metadata': null });
  assert.equal(res.status, 201);
  assert.equal(res.body.result, 'created');
  const m1 = res.body['causal-metadata'];
  assert.deepEqual(m1, { [self]: 1 });
  res = await call(r.url, 'PUT', '/kvs/k1', { value: { nested: [1, 2] }, 'causal-metadata': m1 });
  assert.deepEqual([res.status, res.body.result], [200, 'replaced']);
  const m2 = res.body['causal-metadata'];
  res = await call(r.url, 'GET', '/kvs/k1', { 'causal-metadata': m2 });
  assert.deepEqual(res, { status: 200, body: { result: 'found', value: { nested: [1, 2] }, 'causal-metadata': m2 } });
  // Metadata may also travel in a header, and a GET may carry no body at all.
  res = await call(r.url, 'GET', '/kvs/k1', undefined, { 'x-causal-metadata': JSON.stringify(m2) });
  assert.equal(res.status, 200);
  res = await call(r.url, 'GET', '/kvs/k1');
  assert.equal(res.status, 200);
  res = await call(r.url, 'GET', '/kvs/nope', { 'causal-metadata': null });
  assert.deepEqual([res.status, res.body.error], [404, 'Key does not exist']);
  res = await call(r.url, 'DELETE', '/kvs/k1', { 'causal-metadata': m2 });
  assert.deepEqual([res.status, res.body.result], [200, 'deleted']);
  const m3 = res.body['causal-metadata'];
  res = await call(r.url, 'GET', '/kvs/k1', { 'causal-metadata': m3 });
  assert.deepEqual([res.status, res.body.error], [404, 'Key does not exist']);
  res = await call(r.url, 'DELETE', '/kvs/k1', { 'causal-metadata': m3 });
  assert.deepEqual([res.status, res.body.error], [404, 'Key does not exist']);
  res = await call(r.url, 'PUT', '/kvs/k1', { value: 'again', 'causal-metadata': m3 });
  assert.deepEqual([res.status, res.body.result], [201, 'created']);
  // Keys with slashes and non-ASCII characters are one key.
  res = await call(r.url, 'PUT', `/kvs/${encodeURIComponent('a/é')}`, { value: 1 });
  assert.equal(res.status, 201);
  res = await call(r.url, 'GET', `/kvs/${encodeURIComponent('a/é')}`);
  assert.equal(res.body.value, 1);
});

test('metadata from the future is a 503 with Retry-After, never a hang', async () => {
  const t0 = Date.now();
  const res = await callRaw(
    r.url,
    'GET',
    '/kvs/k1',
    JSON.stringify({ 'causal-metadata': { [self]: 999, '10.0.0.9:1': 3 } }),
  );
  assert.equal(res.status, 503);
  assert.ok(res.headers['retry-after']);
  assert.deepEqual(res.body, { error: 'Causal dependencies not satisfied; try again later' });
  assert.ok(Date.now() - t0 < 3000);
  const put = await call(r.url, 'PUT', '/kvs/k9', { value: 1, 'causal-metadata': { '10.0.0.9:1': 1 } });
  assert.deepEqual(put.body, { error: 'Causal dependencies not satisfied; try again later' });
});

test('bad input: long keys (characters, not bytes), missing value, bad JSON, bad metadata, wrong method', async () => {
  let res = await call(r.url, 'PUT', `/kvs/${'k'.repeat(51)}`, { value: 1 });
  assert.deepEqual(res, { status: 400, body: { error: 'Key is too long' } });
  res = await call(r.url, 'GET', `/kvs/${'k'.repeat(3000)}`);
  assert.deepEqual(res, { status: 400, body: { error: 'Key is too long' } });
  res = await call(r.url, 'PUT', `/kvs/${encodeURIComponent('é'.repeat(50))}`, { value: 1 });
  assert.equal(res.status, 201); // 50 characters, 100 bytes
  res = await call(r.url, 'PUT', '/kvs/big', { value: 'x'.repeat(1024 * 1024), 'causal-metadata': null });
  assert.deepEqual(res, { status: 413, body: { error: 'Value is too large' } });
  res = await call(r.url, 'PUT', '/kvs/big', { value: 'x'.repeat(2 * 1024 * 1024) });
  assert.deepEqual(res, { status: 413, body: { error: 'Value is too large' } });
  res = await call(r.url, 'PUT', '/kvs/k', { 'causal-metadata': null });
  assert.deepEqual(res, { status: 400, body: { error: 'PUT request does not specify a value' } });
  const raw = await callRaw(r.url, 'PUT', '/kvs/k', '{"value":');
  assert.equal(raw.status, 400);
  assert.match(String(raw.body.error), /Malformed JSON/);
  res = await call(r.url, 'GET', '/kvs/k', { 'causal-metadata': { x: 'one' } });
  assert.equal(res.status, 400);
  assert.match(String(res.body.error), /causal metadata/i);
  res = await call(r.url, 'GET', '/kvs/k', undefined, { 'x-causal-metadata': '{nope' });
  assert.equal(res.status, 400);
  res = await call(r.url, 'GET', '/kvs/k', [1, 2]);
  assert.equal(res.status, 400);
  res = await call(r.url, 'POST', '/kvs/k', { value: 1 });
  assert.equal(res.status, 405);
  res = await call(r.url, 'GET', '/nowhere');
  assert.deepEqual(res, { status: 404, body: { error: 'Not found' } });
  res = await call(r.url, 'PUT', '/view', { 'socket-address': 'not an address' });
  assert.equal(res.status, 400);
});

test('view: GET, PUT (added / already present), DELETE (deleted / no such replica)', async () => {
  let res = await call(r.url, 'GET', '/view');
  assert.deepEqual(res, { status: 200, body: { view: [self] } });
  res = await call(r.url, 'PUT', '/view', { 'socket-address': '127.0.0.1:1' });
  assert.deepEqual(res, { status: 201, body: { result: 'added' } });
  res = await call(r.url, 'PUT', '/view', { 'socket-address': '127.0.0.1:1' });
  assert.deepEqual(res, { status: 200, body: { result: 'already present' } });
  res = await call(r.url, 'GET', '/view');
  assert.deepEqual(res.body.view, ['127.0.0.1:1', self].sort());
  res = await call(r.url, 'DELETE', '/view', { 'socket-address': '127.0.0.1:1' });
  assert.deepEqual(res, { status: 200, body: { result: 'deleted' } });
  res = await call(r.url, 'DELETE', '/view', { 'socket-address': '127.0.0.1:1' });
  assert.deepEqual(res, { status: 404, body: { error: 'View has no such replica' } });
});

test('health, status, metrics, fail and recover', async () => {
  let res = await call(r.url, 'GET', '/health');
  assert.deepEqual(res.body, { status: 'healthy', node_id: self, mode: 'causal', role: 'replica' });
  res = await call(r.url, 'GET', '/status');
  assert.equal(res.body.mode, 'causal');
  assert.ok(Array.isArray(res.body.view));
  assert.equal(typeof res.body.vector_clock, 'object');
  const metrics = await (await fetch(`${r.url}/metrics`)).text();
  assert.match(metrics, /qkv_causal_keys \d+/);
  res = await call(r.url, 'POST', '/admin/fail');
  assert.equal(res.status, 200);
  res = await call(r.url, 'GET', '/kvs/k1');
  assert.deepEqual([res.status, res.body.error], [503, 'Node is failed']);
  res = await call(r.url, 'PUT', '/kvs/k1', { value: 1 });
  assert.equal(res.status, 503);
  res = await call(r.url, 'POST', '/internal/sync', { vc: {} });
  assert.equal(res.status, 503);
  res = await call(r.url, 'POST', '/admin/recover');
  assert.equal(res.status, 200);
  res = await call(r.url, 'GET', '/kvs/k1');
  assert.equal(res.status, 200);
  res = await call(r.url, 'POST', '/admin/partition', { peers: 'x' });
  assert.equal(res.status, 400);
});

test('cluster addresses helper', () => {
  assert.deepEqual(causalClusterAddresses(3, 8090), ['127.0.0.1:8090', '127.0.0.1:8091', '127.0.0.1:8092']);
});

test('CLI starter: socket address and view from the node config, or from SOCKET_ADDRESS / VIEW', async () => {
  const [a, b] = await freeAddresses(2);
  const [host, port] = a!.split(':');
  const other = { host: '127.0.0.1', port: Number(b!.split(':')[1]) };
  const cfg = {
    http: { host: host!, port: Number(port) },
    peerHttp: new Map([
      [1, { host: host!, port: Number(port) }],
      [2, other],
    ]),
  };
  const n = await startCausalNode(cfg, { syncIntervalMs: 100 }, {});
  try {
    assert.equal(n.url, `http://${a}`);
    assert.deepEqual((await call(n.url, 'GET', '/view')).body.view, [a, b].sort());
  } finally {
    await n.close();
  }
  const m = await startCausalNode(cfg, { syncIntervalMs: 100 }, { SOCKET_ADDRESS: b!, VIEW: `${b}` });
  try {
    assert.equal(m.url, `http://${b}`);
    assert.deepEqual((await call(m.url, 'GET', '/view')).body.view, [b]);
  } finally {
    await m.close();
  }
});
