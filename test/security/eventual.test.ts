/**
 * Peer credentials in eventual mode: /replicate, /sync/digest and /sync/keys refuse requests from outside
 * without a valid credential (none, wrong, stale, replayed from the wire) and no replica's data changes.
 * Replica r1 reaches r2 through a recording proxy, which captures its pushes and anti-entropy requests.
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

test('eventual: internal routes refuse no, wrong, stale and replayed credentials; data unchanged', async () => {
  const secret = clusterSecret();
  const ports = (await freePorts(3)) as [number, number, number];
  const proxy = await RecordingProxy.start({ host: '127.0.0.1', port: ports[1] });
  const nodes: SpawnedNode[] = [];
  try {
    const peersOf = (i: number): string =>
      ports
        .map((p, j) => (j === i ? undefined : `127.0.0.1:${i === 0 && j === 1 ? proxy.port : p}`))
        .filter((x) => x !== undefined)
        .join(',');
    const started = await Promise.all(
      ports.map((p, i) =>
        spawnModeNode(
          'eventual',
          ['--id', `r${i + 1}`, '--port', String(p), '--peers', peersOf(i), '--anti-entropy-interval', '150'],
          secret.env,
        ),
      ),
    );
    nodes.push(...started);
    const [r1, r2] = started as [SpawnedNode, SpawnedNode, SpawnedNode];
    for (const k of ['a', 'b', 'c']) {
      assert.equal((await send(`${r1.url}/kvs/${k}`, 'PUT', JSON.stringify({ value: `v-${k}` }))).status, 201);
    }
    const data = async () =>
      Promise.all(nodes.map(async (n) => (await send(`${n.url}/data?tombstones=1`, 'GET', undefined)).body.data));
    await eventually(async () => (await data()).every((d) => Object.keys(d as object).length === 3));
    // The proxy has seen r1's pushes and its anti-entropy digests to r2.
    await eventually(async () => proxy.find('/sync/digest') !== undefined, 5000, 'a captured digest');
    const before = await data();

    const evilEntries = JSON.stringify({
      entries: [{ key: 'a', value: 'evil', ts: { wall: Date.now() + 3_600_000, logical: 0, node: 'zz' } }],
    });
    const routes: [string, string][] = [
      ['/replicate', evilEntries],
      ['/sync/digest', JSON.stringify({ buckets: [] })],
      ['/sync/keys', JSON.stringify({ buckets: [0], summary: [] })],
    ];
    for (const [route, body] of routes) {
      let r = await send(r2.url + route, 'POST', body);
      assert.equal(r.status, 401, route);
      assert.deepEqual(r.body, CREDENTIAL_REQUIRED);
      for (const sign of [wrongSigner(), skewedSigner(secret.file, -60_000)]) {
        r = await send(r2.url + route, 'POST', body, sign('POST', route, body));
        assert.equal(r.status, 403, route);
        assert.deepEqual(r.body, CREDENTIAL_INVALID);
      }
    }
    // Replays of what r1 sent r2 on the wire: a push, a digest (and the push with another body).
    for (const path of ['/replicate', '/sync/digest']) {
      const c = proxy.find(path);
      assert.ok(c !== undefined, path);
      assert.equal((await replay(r2.url, c)).status, 403, path);
    }
    const push = proxy.find('/replicate');
    assert.ok(push !== undefined);
    assert.equal((await replay(r2.url, push, evilEntries)).status, 403);
    // A request a secret holder signed is served once; the same bytes again are a replay.
    const keysBody = JSON.stringify({ buckets: [0], summary: [] });
    const signed = signerFor(secret.file)('POST', '/sync/keys', keysBody);
    assert.equal((await send(`${r2.url}/sync/keys`, 'POST', keysBody, signed)).status, 200);
    assert.equal((await send(`${r2.url}/sync/keys`, 'POST', keysBody, signed)).status, 403);

    // Nothing changed anywhere, the refusals are counted, and replication still runs.
    await new Promise((r) => setTimeout(r, 400)); // a couple of anti-entropy rounds
    assert.deepEqual(await data(), before);
    const n = await refusals(r2.url);
    assert.equal(n.get('http/missing'), 3);
    assert.equal(n.get('http/bad-signature'), 4); // 3 wrong secrets + the tampered push
    assert.equal(n.get('http/stale'), 3);
    assert.equal(n.get('http/replayed'), 3);
    assert.equal((await send(`${r2.url}/kvs/d`, 'PUT', JSON.stringify({ value: 'v-d' }))).status, 201);
    await eventually(async () => (await data()).every((d) => Object.keys(d as object).length === 4));
  } finally {
    await Promise.all(nodes.map((x) => x.stop()));
    await proxy.close();
    secret.dispose();
  }
});
