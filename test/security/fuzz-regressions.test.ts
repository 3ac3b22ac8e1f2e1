/**
 * Regressions for what the fuzzer (src/fuzz) found, each reduced to the request that showed it, against
 * real node processes:
 *
 * 1. A request that presents peer credential headers (well-formed, fresh, with a signature that proves
 *    nothing — no secret needed) and whose body is never read (no content type) while its connection
 *    breaks (a chunk size of -1) ended a quorum or eventual node: the body-hashing stream's error had no
 *    listener.
 * 2. A value nested deeper than the stack allows answered 500 "Maximum call stack size exceeded" (quorum,
 *    eventual, causal), and values nested 1,000 to 4,000 levels deep were stored. JSON bodies nested more
 *    than 1,000 levels deep are now refused with a 400 in every mode.
 * 3. `GET /read?key=a&key=b` (quorum, eventual) answered 500: a repeated query parameter is an array.
 * 4. Peer authentication judged the raw request target while the router matches an absolute-form target
 *    (`http://host/replicate`) by its path and decodes percent-escapes (`/%72eplicate`): such unsigned
 *    requests reached the internal routes (quorum and eventual /replicate, causal /internal/replicate: data
 *    written without the secret) and, on a node beyond loopback, /admin/*.
 * 5. A request presenting credential headers (no secret needed) whose body was never read — no or an
 *    unsupported content type, answered 415 — stalled its connection with the body unread (open until
 *    Node's request timeout, 5 minutes; a keep-alive connection's next request never answered).
 * 6. Chat logins kept every distinct username sent (up to 64 KiB each) in the login limiter for a minute:
 *    2,000 attempts with 60,000-character names held about 140 MiB on the leader. A name no account can
 *    have is now refused at once and not counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { clusterSecret } from '../../src/modes/common/cluster.js';
import { freePorts, spawnModeNode, type SpawnedNode } from '../../src/modes/common/spawn.js';
import { LocalCluster } from '../../src/server/local-cluster.js';
import { jsonNestingExceeds } from '../../src/server/http-common.js';
import { send } from './helpers.js';

/** The status line of the answer to `POST <target>` with a JSON body, sent as is. */
async function postRaw(port: number, target: string, body: string): Promise<string> {
  const answer = await raw(
    port,
    `POST ${target} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return answer.split('\r\n')[0] as string;
}

/** Writes `bytes` on a new connection and waits until the node closes it. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = net.connect(port, '127.0.0.1', () => s.end(bytes));
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve(out));
  });
}

/** A request with credential headers that pass the format and clock checks, and a broken chunked body. */
function brokenSignedRequest(target: string): string {
  return (
    `POST ${target} HTTP/1.1\r\nhost: x\r\n` +
    `x-qkv-peer: nobody\r\nx-qkv-ts: ${Date.now()}\r\nx-qkv-nonce: ${randomBytes(8).toString('hex')}.1\r\n` +
    `x-qkv-signature: ${randomBytes(32).toString('hex')}\r\ntransfer-encoding: chunked\r\n\r\n-1\r\n{}\r\n0\r\n\r\n`
  );
}

const alive = (n: SpawnedNode) => n.child.exitCode === null && n.child.signalCode === null;

function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

test('JSON nesting scan: counts arrays and objects, skips strings and escapes', () => {
  assert.equal(jsonNestingExceeds(nested(1000)), false);
  assert.equal(jsonNestingExceeds(nested(1001)), true);
  assert.equal(jsonNestingExceeds('{"a":'.repeat(1001) + '1' + '}'.repeat(1001)), true);
  // Brackets inside strings (escaped quotes included) do not count.
  assert.equal(jsonNestingExceeds(JSON.stringify({ v: '['.repeat(5000) + '"\\' + '{'.repeat(5000) })), false);
  assert.equal(jsonNestingExceeds(JSON.stringify('x'.repeat(5000))), false);
  assert.equal(jsonNestingExceeds('[' + '"\\"",'.repeat(600) + nested(999) + ']'), false);
});

test('quorum, eventual, causal: no crash, no 5xx, nothing stored for the requests the fuzzer found', async () => {
  const secret = clusterSecret();
  const [q, f, e, c] = (await freePorts(4)) as [number, number, number, number];
  const nodes: SpawnedNode[] = [];
  try {
    nodes.push(
      await spawnModeNode('quorum', ['--role', 'leader', '--port', String(q), '--followers', `127.0.0.1:${f}`], {
        ...secret.env,
        WRITE_QUORUM: '1',
      }),
    );
    nodes.push(
      await spawnModeNode(
        'quorum',
        ['--role', 'follower', '--port', String(f), '--leader', `127.0.0.1:${q}`],
        secret.env,
      ),
    );
    nodes.push(await spawnModeNode('eventual', ['--id', 'r1', '--port', String(e), '--peers', ''], secret.env));
    nodes.push(await spawnModeNode('causal', [], { ...secret.env, SOCKET_ADDRESS: `127.0.0.1:${c}` }));
    const [leader, follower, eventual, causal] = nodes as [SpawnedNode, SpawnedNode, SpawnedNode, SpawnedNode];

    // 1. The broken signed request, on a public route, an internal route and an unknown one: every node lives.
    for (const n of nodes) {
      const port = Number(new URL(n.url).port);
      for (const target of ['/kvs/x', '/replicate', '/internal/sync', '/nothing']) {
        const answer = await raw(port, brokenSignedRequest(target));
        assert.ok(answer === '' || /^HTTP\/1\.1 4\d\d /.test(answer), answer);
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(alive(n), `${n.url} ended`);
      assert.equal((await send(`${n.url}/health`, 'GET', undefined)).status, 200);
    }

    // 2. Deep values: a 400 (nothing stored); a body nested exactly 1,000 levels deep is still a value.
    const deep = `{"value":${nested(200_000)}}`;
    for (const [url, method, body] of [
      [`${leader.url}/kvs/deep`, 'PUT', deep],
      [`${leader.url}/write`, 'POST', `{"key":"deep","value":${nested(200_000)}}`],
      [`${eventual.url}/kvs/deep`, 'PUT', deep],
      [`${eventual.url}/write`, 'POST', `{"key":"deep","value":${nested(5000)}}`],
      [`${causal.url}/kvs/deep`, 'PUT', `{"value":${nested(1500)},"causal-metadata":null}`],
      [`${causal.url}/kvs/deep`, 'DELETE', `{"causal-metadata":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`],
    ] as const) {
      const r = await send(url, method, body);
      assert.equal(r.status, 400, `${method} ${url}: ${r.text}`);
      assert.match(String(r.body.error), /nested more than 1000 levels deep/);
    }
    for (const n of [leader, eventual]) {
      assert.equal((await send(`${n.url}/data`, 'GET', undefined)).body.count, 0, n.url);
    }
    assert.equal((await send(`${causal.url}/status`, 'GET', undefined)).body.keys, 0);
    const edge = await send(`${eventual.url}/kvs/edge`, 'PUT', `{"value":${nested(999)}}`);
    assert.equal(edge.status, 201, edge.text);
    assert.equal((await send(`${eventual.url}/kvs/edge`, 'GET', undefined)).status, 200);

    // 3. A key given twice.
    for (const n of [leader, follower, eventual]) {
      const r = await send(`${n.url}/read?key=a&key=b`, 'GET', undefined);
      assert.equal(r.status, 400, `${n.url}: ${r.text}`);
    }
    for (const n of nodes) assert.ok(alive(n), `${n.url} ended`);
  } finally {
    await Promise.all(nodes.map((n) => n.stop(true)));
    secret.dispose();
  }
});

test('raft: the broken signed request and deep bodies are refused, nothing changes', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-fuzz-regress-'));
  const c = await LocalCluster.start({ nodes: 1, dir, logLevel: 'warn' });
  try {
    await c.waitLeader(15_000);
    const url = c.url(1);
    const port = Number(new URL(url).port);
    for (const target of ['/kvs/x', '/txn', '/nothing']) await raw(port, brokenSignedRequest(target));
    const r = await send(`${url}/kvs/deep`, 'PUT', `{"value":1,"x":${nested(100_000)}}`);
    assert.equal(r.status, 400, r.text);
    assert.equal((await send(`${url}/kvs?prefix=&consistency=stale`, 'GET', undefined)).body.count, 0);
    assert.ok(c.isRunning(1));
    assert.equal((await send(`${url}/health`, 'GET', undefined)).status, 200);
  } finally {
    await c.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chat: a login with a name no account can have is refused at once and not counted by the limiter', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-fuzz-regress-chat-'));
  const c = await LocalCluster.start({ nodes: 1, dir, app: 'chat', logLevel: 'warn' });
  try {
    await c.waitLeader(15_000);
    const url = c.url(1);
    for (const name of ['a b', 'x'.repeat(33), 'é', 'u'.repeat(60_000)]) {
      // More attempts than the limiter allows a name in a minute: none is 429, each is the usual 401.
      for (let i = 0; i < 11; i++) {
        const r = await send(
          `${url}/chat/sessions`,
          'POST',
          JSON.stringify({ username: name, password: 'wrong-password' }),
        );
        assert.equal(r.status, 401, `${name.slice(0, 10)} attempt ${i + 1}: ${r.text}`);
        assert.deepEqual(r.body, { error: 'Wrong username or password' });
      }
    }
    // A name that could exist is still limited.
    let last = 0;
    for (let i = 0; i < 11; i++) {
      last = (
        await send(`${url}/chat/sessions`, 'POST', JSON.stringify({ username: 'nobody', password: 'wrong-password' }))
      ).status;
    }
    assert.equal(last, 429);
  } finally {
    await c.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('internal and admin routes need a credential however the request target is spelled', async () => {
  const secret = clusterSecret();
  const [q, f, e, c, x] = (await freePorts(5)) as [number, number, number, number, number];
  const nodes: SpawnedNode[] = [];
  try {
    nodes.push(
      await spawnModeNode('quorum', ['--role', 'leader', '--port', String(q), '--followers', `127.0.0.1:${f}`], {
        ...secret.env,
        WRITE_QUORUM: '1',
      }),
    );
    const follower = await spawnModeNode(
      'quorum',
      ['--role', 'follower', '--port', String(f), '--leader', `127.0.0.1:${q}`],
      secret.env,
    );
    nodes.push(follower);
    const eventual = await spawnModeNode('eventual', ['--id', 'r1', '--port', String(e), '--peers', ''], secret.env);
    nodes.push(eventual);
    const causal = await spawnModeNode('causal', [], { ...secret.env, SOCKET_ADDRESS: `127.0.0.1:${c}` });
    nodes.push(causal);
    // A node beyond loopback: /admin/* needs a credential there.
    const exposed = await spawnModeNode(
      'quorum',
      ['--role', 'leader', '--host', '0.0.0.0', '--port', String(x), '--followers', `127.0.0.1:${f}`],
      { ...secret.env, QKV_INSECURE: '1' },
    );
    nodes.push(exposed);

    const spellings = (p: string) => [
      p,
      `http://x${p}`,
      `https://a@b${p}`,
      p.replace(/^\/(.)/, (_, ch: string) => `/%${ch.charCodeAt(0).toString(16)}`),
    ];
    const record = JSON.stringify({ key: 'evil', value: 'injected', version: 99 });
    const entries = JSON.stringify({
      entries: [{ key: 'evil', value: 'injected', ts: { wall: 1, logical: 0, node: 'zz' } }],
    });
    const write = JSON.stringify({
      write: { key: 'evil', value: 'injected', deleted: false, origin: '127.0.0.1:1', clock: { '127.0.0.1:1': 1 } },
    });
    for (const [n, route, body] of [
      [follower, '/replicate', record],
      [eventual, '/replicate', entries],
      [eventual, '/sync/keys', JSON.stringify({ buckets: [0], summary: [] })],
      [causal, '/internal/replicate', write],
      [causal, '/internal/sync', '{}'],
      [exposed, '/admin/fail', '{}'],
    ] as const) {
      for (const target of spellings(route)) {
        const status = await postRaw(Number(new URL(n.url).port), target, body);
        assert.match(status, /^HTTP\/1\.1 401 /, `${n.url} ${target}`);
      }
    }
    assert.equal((await send(`${follower.url}/data`, 'GET', undefined)).body.count, 0);
    assert.equal((await send(`${eventual.url}/data`, 'GET', undefined)).body.count, 0);
    assert.equal((await send(`${causal.url}/kvs/evil`, 'GET', undefined)).status, 404);
    assert.equal((await send(`http://127.0.0.1:${x}/status`, 'GET', undefined)).body.state, 'serving');
  } finally {
    await Promise.all(nodes.map((n) => n.stop(true)));
    secret.dispose();
  }
});

test('an answer sent before a signed body is read does not stall the connection', async () => {
  const secret = clusterSecret();
  const [e] = (await freePorts(1)) as [number];
  const node = await spawnModeNode('eventual', ['--id', 'r1', '--port', String(e), '--peers', ''], secret.env);
  try {
    const body = JSON.stringify({ a: 'x'.repeat(200_000) });
    for (const contentType of ['', 'content-type: text/x-unknown\r\n']) {
      const first =
        `POST /kvs/x HTTP/1.1\r\nhost: x\r\n${contentType}content-length: ${body.length}\r\n` +
        `x-qkv-peer: nobody\r\nx-qkv-ts: ${Date.now()}\r\nx-qkv-nonce: ${randomBytes(8).toString('hex')}.1\r\n` +
        `x-qkv-signature: ${randomBytes(32).toString('hex')}\r\n\r\n${body}`;
      const answer = await Promise.race([
        raw(e, first + 'GET /health HTTP/1.1\r\nhost: x\r\n\r\n'),
        new Promise<string>((resolve) => setTimeout(() => resolve('still open after 10 s'), 10_000)),
      ]);
      const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
      assert.deepEqual(statuses, ['415', '200'], JSON.stringify(contentType) + ': ' + answer.slice(0, 300));
    }
  } finally {
    await node.stop(true);
    secret.dispose();
  }
});
