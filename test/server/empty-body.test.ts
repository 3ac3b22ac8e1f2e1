/**
 * The contract, every route, every mode: an empty body is no body, whatever its content type says
 * (../shared/api.md; issue 21). Many HTTP clients send `Content-Type: application/json` on every request,
 * `curl -X DELETE -H 'content-type: application/json' .../kvs/k` among them.
 *
 * Each route of each mode (raft KV, the chat app, quorum, causal, eventual) is sent twice on equal state:
 * once with no body and no content type, once with `Content-Type: application/json` and an empty body. Both
 * must get the same status and the same error (a route whose body is optional succeeds both times; a route
 * that needs a body says what is missing both times), and never a "Malformed JSON body" answer.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../../src/server/local-cluster.js';
import { startQuorumNode } from '../../src/modes/quorum/index.js';
import { startEventualNode } from '../../src/modes/eventual/index.js';
import { startCausalReplica } from '../../src/modes/causal/index.js';
import { freePorts } from '../../src/modes/common/spawn.js';
import { FAST } from './helpers.js';

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

type Variant = 'bare' | 'json';

/** One request; `json` adds `content-type: application/json` with an empty body (content-length 0). */
function send(
  base: string,
  method: string,
  target: string,
  variant: Variant | 'body',
  extra: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  const url = new URL(target, base);
  const payload = body === undefined ? '' : JSON.stringify(body);
  const headers: Record<string, string> = { ...extra };
  if (variant !== 'bare') {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, timeout: 15_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: Record<string, unknown>;
          try {
            parsed = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            parsed = { text: text.slice(0, 80) };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${target} timed out`)));
    req.on('error', reject);
    req.end(payload.length > 0 ? payload : undefined);
  });
}

/** A route to try; `{v}` in the target is replaced by the variant, so each variant has its own keys. */
interface Route {
  readonly method: string;
  readonly target: string;
  /** The status both variants must get. */
  readonly expect: number;
  /** Prepares the state this route needs for one variant (a key to read or delete). */
  readonly setup?: (v: Variant) => Promise<void>;
  readonly headers?: (v: Variant) => Record<string, string>;
  /** Runs after each variant (e.g. recover after /admin/fail). */
  readonly teardown?: () => Promise<void>;
}

async function checkRoutes(base: (r: Route) => string, routes: readonly Route[]): Promise<void> {
  const problems: string[] = [];
  for (const r of routes) {
    const answers: Answer[] = [];
    for (const v of ['bare', 'json'] as const) {
      await r.setup?.(v);
      answers.push(await send(base(r), r.method, r.target.replaceAll('{v}', v), v, r.headers?.(v) ?? {}));
      await r.teardown?.();
    }
    const [bare, json] = answers as [Answer, Answer];
    const name = `${r.method} ${r.target}`;
    if (bare.status !== r.expect) problems.push(`${name} without body: ${bare.status} ${JSON.stringify(bare.body)}`);
    if (json.status !== bare.status || json.body.error !== bare.body.error) {
      problems.push(`${name} with content-type and empty body: ${json.status} ${JSON.stringify(json.body)}`);
    }
    if (typeof json.body.error === 'string' && json.body.error.startsWith('Malformed JSON body')) {
      problems.push(`${name}: ${json.body.error}`);
    }
  }
  assert.deepEqual(problems, []);
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const kvsRoutes = (put: (key: string) => Promise<void>): Route[] => [
  { method: 'PUT', target: '/kvs/{v}-put', expect: 400 },
  { method: 'GET', target: '/kvs/{v}-get', expect: 200, setup: (v) => put(`${v}-get`) },
  { method: 'DELETE', target: '/kvs/{v}-del', expect: 200, setup: (v) => put(`${v}-del`) },
  { method: 'GET', target: '/kvs/{v}-absent', expect: 404 },
  { method: 'DELETE', target: '/kvs/{v}-absent', expect: 404 },
];

const commonRoutes: Route[] = [
  { method: 'GET', target: '/health', expect: 200 },
  { method: 'GET', target: '/ready', expect: 200 },
  { method: 'GET', target: '/status', expect: 200 },
  { method: 'GET', target: '/metrics', expect: 200 },
  { method: 'GET', target: '/no-such-route', expect: 404 },
];

function failRecover(base: string): Route {
  return {
    method: 'POST',
    target: '/admin/fail',
    expect: 200,
    teardown: async () => {
      const r = await send(base, 'POST', '/admin/recover', 'json');
      assert.equal(r.status, 200, `recover: ${JSON.stringify(r.body)}`);
    },
  };
}

async function waitReady(base: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await send(base, 'GET', '/ready', 'bare')).status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${base} not ready`);
}

describe('an empty body with content-type application/json is no body', () => {
  test('raft KV', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-empty-'));
    const cluster = await LocalCluster.start({ nodes: 1, dir, ...FAST, storage: 'memory' });
    cleanups.push(async () => {
      await cluster.stopAll();
      rmSync(dir, { recursive: true, force: true });
    });
    await cluster.waitLeader(10_000);
    const base = cluster.url(cluster.ids[0] as number);
    await waitReady(base);
    const put = async (key: string) => {
      const r = await send(base, 'PUT', `/kvs/${key}`, 'body', {}, { value: key });
      assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
    };
    await checkRoutes(
      () => base,
      [
        ...kvsRoutes(put),
        { method: 'GET', target: '/kvs/{v}-get?consistency=stale', expect: 200, setup: (v) => put(`${v}-get`) },
        { method: 'GET', target: '/kvs?prefix=json', expect: 200 },
        { method: 'POST', target: '/txn', expect: 400 },
        ...commonRoutes,
        failRecover(base),
      ],
    );
  });

  test('chat app', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-empty-chat-'));
    const cluster = await LocalCluster.start({
      nodes: 1,
      dir,
      ...FAST,
      app: 'chat',
      chatLoginsPerMinute: 1000,
    });
    cleanups.push(async () => {
      await cluster.stopAll();
      rmSync(dir, { recursive: true, force: true });
    });
    await cluster.waitLeader(10_000);
    const base = cluster.url(cluster.ids[0] as number);
    await waitReady(base);
    const creds = { username: 'ann', password: 'correct horse battery' };
    assert.equal((await send(base, 'POST', '/chat/users', 'body', {}, creds)).status, 201);
    const login = async (): Promise<string> => {
      const r = await send(base, 'POST', '/chat/sessions', 'body', {}, creds);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.token as string;
    };
    const token = await login();
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await send(base, 'POST', '/chat/rooms', 'body', auth, { name: 'general' })).status, 201);
    assert.equal((await send(base, 'POST', '/chat/rooms', 'body', auth, { name: 'other' })).status, 201);
    // A second user joins rooms it is not yet a member of.
    const bob = { username: 'bob', password: 'correct horse battery' };
    assert.equal((await send(base, 'POST', '/chat/users', 'body', {}, bob)).status, 201);
    const bobToken = (await send(base, 'POST', '/chat/sessions', 'body', {}, bob)).body.token as string;
    for (const v of ['bare', 'json']) {
      const r = await send(base, 'POST', '/chat/rooms', 'body', auth, { name: `join-${v}` });
      assert.equal(r.status, 201);
    }
    let sessionToDrop = '';
    await checkRoutes(
      () => base,
      [
        { method: 'POST', target: '/chat/users', expect: 400 },
        { method: 'POST', target: '/chat/sessions', expect: 400 },
        { method: 'GET', target: '/chat/rooms', expect: 200, headers: () => auth },
        { method: 'POST', target: '/chat/rooms', expect: 400, headers: () => auth },
        {
          method: 'POST',
          target: '/chat/rooms/join-{v}/join',
          expect: 200,
          headers: () => ({ authorization: `Bearer ${bobToken}` }),
        },
        { method: 'GET', target: '/chat/rooms/general/messages?after=0', expect: 200, headers: () => auth },
        { method: 'POST', target: '/chat/rooms/general/messages', expect: 400, headers: () => auth },
        {
          method: 'DELETE',
          target: '/chat/sessions',
          expect: 200,
          setup: async () => {
            sessionToDrop = await login();
          },
          headers: () => ({ authorization: `Bearer ${sessionToDrop}` }),
        },
        ...commonRoutes,
      ],
    );
  });

  test('quorum mode', async () => {
    const [lp, fp] = (await freePorts(2)) as [number, number];
    const follower = await startQuorumNode({
      role: 'follower',
      port: fp,
      leaderUrl: `http://127.0.0.1:${lp}`,
      catchUpTimeoutMs: 200,
    });
    const leader = await startQuorumNode({
      role: 'leader',
      port: lp,
      followers: [follower.url],
      writeQuorum: 1,
      minDelay: 0,
      maxDelay: 0,
    });
    cleanups.push(async () => {
      await leader.close();
      await follower.close();
    });
    await waitReady(leader.url);
    const put = async (key: string) => {
      const r = await send(leader.url, 'PUT', `/kvs/${key}`, 'body', {}, { value: key });
      assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
    };
    await checkRoutes(
      () => leader.url,
      [
        ...kvsRoutes(put),
        { method: 'POST', target: '/write', expect: 400 },
        { method: 'GET', target: '/read?key={v}-get', expect: 200, setup: (v) => put(`${v}-get`) },
        { method: 'GET', target: '/data', expect: 200 },
        ...commonRoutes,
        failRecover(leader.url),
      ],
    );
    await checkRoutes(
      () => follower.url,
      [
        { method: 'POST', target: '/replicate', expect: 400 },
        { method: 'POST', target: '/write', expect: 307 },
        { method: 'DELETE', target: '/kvs/x', expect: 307 },
        { method: 'GET', target: '/data', expect: 200 },
        ...commonRoutes,
        failRecover(follower.url),
      ],
    );
  });

  test('causal mode', async () => {
    const [port] = (await freePorts(1)) as [number];
    const self = `127.0.0.1:${port}`;
    const replica = await startCausalReplica({ socketAddress: self, view: [self] });
    cleanups.push(() => replica.close());
    const base = replica.url;
    await waitReady(base);
    const put = async (key: string) => {
      const r = await send(base, 'PUT', `/kvs/${key}`, 'body', {}, { value: key, 'causal-metadata': null });
      assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
    };
    await checkRoutes(
      () => base,
      [
        ...kvsRoutes(put),
        { method: 'GET', target: '/view', expect: 200 },
        { method: 'PUT', target: '/view', expect: 400 },
        { method: 'DELETE', target: '/view', expect: 400 },
        { method: 'POST', target: '/internal/replicate', expect: 400 },
        { method: 'POST', target: '/internal/sync', expect: 200 },
        { method: 'GET', target: '/kvs/sync', expect: 200, headers: () => ({ 'x-qkv-from': self }) },
        ...commonRoutes,
        failRecover(base),
        { method: 'POST', target: '/admin/heal', expect: 200 },
      ],
    );
  });

  test('eventual mode', async () => {
    const [port] = (await freePorts(1)) as [number];
    const node = await startEventualNode({ id: 'r1', port, peers: [], catchUpTimeoutMs: 100 });
    cleanups.push(() => node.close());
    await waitReady(node.url);
    const put = async (key: string) => {
      const r = await send(node.url, 'PUT', `/kvs/${key}`, 'body', {}, { value: key });
      assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
    };
    await checkRoutes(
      () => node.url,
      [
        ...kvsRoutes(put),
        { method: 'POST', target: '/write', expect: 400 },
        { method: 'GET', target: '/read?key={v}-get', expect: 200, setup: (v) => put(`${v}-get`) },
        { method: 'GET', target: '/data', expect: 200 },
        { method: 'POST', target: '/replicate', expect: 400 },
        { method: 'POST', target: '/sync/digest', expect: 400 },
        { method: 'POST', target: '/sync/keys', expect: 400 },
        ...commonRoutes,
        failRecover(node.url),
      ],
    );
  });
});
