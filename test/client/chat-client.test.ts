import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChatClient,
  ChatError,
  ChatNotFoundError,
  ChatRequestError,
  ConflictError,
  ForbiddenError,
  KvError,
  NotAuthenticatedError,
  SseParser,
  UnavailableError,
  type ChatClientOptions,
  type ChatMessage,
  type FailoverInfo,
  type OutboxEntry,
} from '../../src/client/index.js';
import { FakeChat } from './fake-chat.js';

const PW = 'secret123';

async function withChat(n: number, opts: { forward?: boolean }, fn: (c: FakeChat) => Promise<void>): Promise<void> {
  const c = await FakeChat.start(n, opts);
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

/** A client logged in as `user`, a member of `rooms` (seeded into the fake). */
async function loggedIn(
  c: FakeChat,
  user = 'alice',
  rooms = ['general'],
  opts: Partial<ChatClientOptions> = {},
): Promise<ChatClient> {
  c.seedUser(user, PW, rooms);
  const client = new ChatClient({ endpoints: c.endpoints, backoffMs: 10, ...opts });
  await client.login(user, PW);
  return client;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const seqs = (ms: readonly ChatMessage[]): number[] => ms.map((m) => m.seq);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

test('register, login, rooms, join, post, messages, logout; typed errors; the bearer token on every request', async () => {
  await withChat(3, {}, async (c) => {
    const alice = new ChatClient({ endpoints: c.endpoints });
    assert.deepEqual(await alice.register('alice', PW), { username: 'alice' });
    await assert.rejects(alice.register('alice', PW), (e: unknown) => {
      assert.ok(e instanceof ConflictError && e instanceof ChatError && e instanceof KvError);
      assert.equal(e.status, 409);
      assert.equal(e.error, 'Username is taken');
      return true;
    });
    await assert.rejects(alice.register('a b', PW), ChatRequestError);
    await assert.rejects(alice.login('alice', 'wrong-password'), (e: unknown) => {
      assert.ok(e instanceof NotAuthenticatedError);
      assert.equal(e.error, 'Wrong username or password');
      return true;
    });
    await assert.rejects(
      alice.rooms(),
      (e: unknown) => e instanceof NotAuthenticatedError && e.error === 'Not authenticated',
    );

    const { token } = await alice.login('alice', PW);
    const sinceLogin = c.seen.length;
    assert.equal(alice.token, token);
    assert.equal(alice.username, 'alice');
    assert.deepEqual(await alice.createRoom('general'), { name: 'general' });
    await assert.rejects(
      alice.createRoom('general'),
      (e: unknown) => e instanceof ConflictError && e.error === 'Room exists',
    );
    await assert.rejects(alice.joinRoom('nope'), (e: unknown) => {
      assert.ok(e instanceof ChatNotFoundError);
      assert.equal(e.status, 404);
      assert.equal(e.error, 'Room does not exist');
      return true;
    });
    const m1 = await alice.post('general', 'hello');
    assert.equal(m1.seq, 1);
    assert.equal(m1.room, 'general');
    assert.equal(m1.user, 'alice');
    assert.equal(m1.text, 'hello');
    assert.equal(typeof m1.time, 'number');
    await assert.rejects(alice.post('general', ''), (e: unknown) => e instanceof ChatRequestError && e.status === 400);
    await assert.rejects(alice.post('general', 'x'.repeat(5000)), (e: unknown) => {
      assert.ok(e instanceof ChatRequestError);
      assert.equal(e.status, 413);
      assert.equal(e.error, 'Message is too long');
      return true;
    });

    // A client constructed with a token.
    c.seedUser('bob', PW);
    const bobToken = (await new ChatClient({ endpoints: c.endpoints }).login('bob', PW)).token;
    const bob = new ChatClient({ endpoints: c.endpoints, token: bobToken });
    await assert.rejects(
      bob.post('general', 'hi'),
      (e: unknown) => e instanceof ForbiddenError && e.error === 'Not a member',
    );
    await bob.joinRoom('general');
    assert.equal((await bob.post('general', 'hi')).seq, 2);

    const all = await alice.messages('general');
    assert.deepEqual(
      all.messages.map((m) => [m.seq, m.room, m.user, m.text]),
      [
        [1, 'general', 'alice', 'hello'],
        [2, 'general', 'bob', 'hi'],
      ],
    );
    assert.equal(all.lastSeq, 2);
    assert.equal(all.stale, false);
    assert.deepEqual(seqs((await alice.messages('general', { after: 1 })).messages), [2]);
    assert.deepEqual(seqs((await alice.messages('general', { limit: 1 })).messages), [1]);
    assert.deepEqual(await alice.rooms(), [{ name: 'general', members: 2, lastSeq: 2 }]);

    for (const s of c.seen.slice(sinceLogin).filter((r) => r.url.startsWith('/chat/rooms'))) {
      assert.match(s.authorization ?? '', /^Bearer [0-9a-f]+$/, `${s.method} ${s.url} carries the token`);
    }
    await alice.logout();
    assert.equal(alice.token, undefined);
    await assert.rejects(alice.rooms(), NotAuthenticatedError);
    await assert.rejects(new ChatClient({ endpoints: c.endpoints, token }).rooms(), NotAuthenticatedError);
  });
});

test('307 redirects are followed and the leader cached; a dead node is failed over with an event', async () => {
  await withChat(3, { forward: false }, async (c) => {
    c.leader = 2;
    const client = await loggedIn(c);
    assert.equal(client.currentEndpoint, c.node(2).url);
    assert.deepEqual(
      c.seen.map((s) => [s.node, s.url]),
      [
        [1, '/chat/sessions'],
        [2, '/chat/sessions'],
      ],
    );
    const failovers: FailoverInfo[] = [];
    client.on('failover', (f) => failovers.push(f));
    await c.kill(2);
    c.leader = 3;
    assert.equal((await client.post('general', 'after the leader died')).seq, 1);
    assert.equal(client.currentEndpoint, c.node(3).url);
    assert.equal(failovers[0]?.from, c.node(2).url);
    assert.equal(failovers[0]?.to, c.node(3).url);
    assert.deepEqual(c.texts('general'), ['after the leader died']);
  });
});

test('a post whose answer was lost is retried with the same request id and applied once', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c, 'alice', ['general'], { timeoutMs: 300, clientId: 'cli-1' });
    c.node(1).behaviour = 'apply-then-hang';
    const m = await client.post('general', 'once');
    assert.equal(m.seq, 1);
    assert.equal(c.applied, 1);
    assert.deepEqual(c.texts('general'), ['once']);
    const ids = c.seen.filter((s) => s.url === '/chat/rooms/general/messages').map((s) => [s.node, s.requestId]);
    assert.deepEqual(ids, [
      [1, 'cli-1:1'],
      [2, 'cli-1:1'],
    ]);
    c.node(1).behaviour = 'ok';
    assert.equal((await client.post('general', 'twice')).seq, 2);
    assert.equal(c.seen[c.seen.length - 1]?.requestId, 'cli-1:2');
  });
});

test('no quorum: post fails with UnavailableError carrying the server message after the deadline', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c, 'alice', ['general'], { deadlineMs: 600 });
    const events: string[] = [];
    client.on('unavailable', (u) => events.push(`unavailable ${u.reason}`));
    client.on('available', () => events.push('available'));
    c.setAll('no-quorum');
    const t0 = Date.now();
    await assert.rejects(client.post('general', 'lost?'), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.equal(e.status, 503);
      assert.equal(e.body.error, 'No quorum');
      assert.match(e.message, /No quorum/);
      assert.ok(e.attempts.length >= 3);
      return true;
    });
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(c.applied, 0);
    c.setAll('ok');
    await client.post('general', 'back');
    assert.deepEqual(events, ['unavailable 503 No quorum', 'available']);
  });
});

test('outbox: posts made without a quorum are delivered later, in order, exactly once (a lost answer too)', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c, 'alice', ['general'], { timeoutMs: 300, deadlineMs: 800 });
    const events: string[] = [];
    client.on('queued', (e) => events.push(`queued ${e.text}`));
    client.on('delivered', (e, m) => events.push(`delivered ${e.text} #${m.seq}`));
    // The first attempt of the first post is applied by node 1, whose answer is lost; then no quorum anywhere.
    c.node(1).behaviour = 'apply-then-hang';
    c.node(2).behaviour = 'no-quorum';
    c.node(3).behaviour = 'no-quorum';
    const p1 = client.postWithOutbox('general', 'one');
    await waitFor('the first attempt', () => c.applied === 1);
    c.setAll('no-quorum');
    const p2 = client.postWithOutbox('general', 'two');
    const p3 = client.postWithOutbox('general', 'three');
    await waitFor('every post queued', () => events.length === 3);
    assert.deepEqual(events, ['queued one', 'queued two', 'queued three']);
    const pending: readonly OutboxEntry[] = client.outbox;
    assert.deepEqual(
      pending.map((e) => [e.requestId, e.text, e.queued]),
      [
        [p1.requestId, 'one', true],
        [p2.requestId, 'two', true],
        [p3.requestId, 'three', true],
      ],
    );
    await new Promise((r) => setTimeout(r, 1200)); // a few more failed attempts
    assert.ok((client.outbox[0]?.attempts ?? 0) >= 2);
    assert.match(client.outbox[0]?.lastError ?? '', /No quorum/);
    assert.equal(c.applied, 1);

    c.setAll('ok');
    const delivered = await Promise.all([p1.delivered, p2.delivered, p3.delivered]);
    assert.deepEqual(
      delivered.map((m) => [m.seq, m.text]),
      [
        [1, 'one'],
        [2, 'two'],
        [3, 'three'],
      ],
    );
    await client.drain();
    assert.deepEqual(client.outbox, []);
    assert.deepEqual(c.texts('general'), ['one', 'two', 'three']);
    assert.equal(c.applied, 3);
    assert.deepEqual(events.slice(3), ['delivered one #1', 'delivered two #2', 'delivered three #3']);
    // Every attempt of a post carried its one request id.
    const rids = c.seen.filter((s) => s.url === '/chat/rooms/general/messages').map((s) => s.requestId);
    assert.deepEqual([...new Set(rids)], [p1.requestId, p2.requestId, p3.requestId]);
    client.close();
  });
});

test('outbox: a refused post is dropped with its typed error; close() rejects pending posts and stops retrying', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c, 'alice', ['general'], { deadlineMs: 300 });
    c.seedUser('bob', PW, ['private']);
    const failed: string[] = [];
    client.on('failed', (e, err) => failed.push(`${e.text}: ${err.error}`));
    const refused = client.postWithOutbox('private', 'let me in');
    await assert.rejects(refused.delivered, ForbiddenError);
    assert.deepEqual(failed, ['let me in: Not a member']);
    await client.drain();

    c.setAll('no-quorum');
    const p = client.postWithOutbox('general', 'never');
    await waitFor('an attempt', () => c.seen.some((s) => s.requestId === p.requestId));
    client.close();
    await assert.rejects(p.delivered, (e: unknown) => e instanceof ChatError && e.error === 'Client closed');
    assert.deepEqual(client.outbox, []);
    await new Promise((r) => setTimeout(r, 100)); // a request already on the wire may still arrive
    const seen = c.seen.length;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(c.seen.length, seen, 'no request after close()');
    assert.throws(() => client.postWithOutbox('general', 'late'), ChatError);
  });
});

test('reads: linearizable by default; with allowStale a stale answer when no node has a quorum', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c, 'alice', ['general'], { deadlineMs: 5000 });
    c.append('general', 'alice', 'a');
    c.append('general', 'bob', 'b');
    c.setAll('no-quorum');
    const quick = new ChatClient({ endpoints: c.endpoints, token: client.token ?? '', deadlineMs: 500, backoffMs: 10 });
    await assert.rejects(quick.messages('general'), UnavailableError);
    const t0 = Date.now();
    const r = await client.messages('general', { allowStale: true });
    assert.ok(Date.now() - t0 < 3000, 'falls back after one round, not at the deadline');
    assert.equal(r.stale, true);
    assert.equal(typeof r.applied, 'number');
    assert.deepEqual(
      r.messages.map((m) => m.text),
      ['a', 'b'],
    );
    assert.ok(c.seen.some((s) => s.url.includes('consistency=stale')));
    c.setAll('ok');
    assert.equal((await client.messages('general', { allowStale: true })).stale, false);
  });
});

test('stream: follows a room across node deaths (Last-Event-ID), with no gap and no duplicate', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c);
    c.append('general', 'bob', 'm1');
    c.append('general', 'bob', 'm2');
    const s = client.stream('general');
    const got: ChatMessage[] = [];
    const failovers: FailoverInfo[] = [];
    s.on('failover', (f) => failovers.push(f));
    const reading = (async () => {
      for await (const m of s) got.push(m);
    })();
    await waitFor('history', () => got.length === 2);
    assert.equal(s.endpoint, c.node(1).url);
    for (let i = 3; i <= 4; i++) c.append('general', 'bob', `m${i}`);
    await waitFor('live messages', () => got.length === 4);

    await c.kill(1);
    for (let i = 5; i <= 7; i++) c.append('general', 'bob', `m${i}`); // while the stream is down
    await waitFor('messages after the first failover', () => got.length === 7);
    assert.equal(s.endpoint, c.node(2).url);
    assert.equal(failovers[0]?.from, c.node(1).url);
    assert.equal(failovers[0]?.to, c.node(2).url);
    const resumed = c.seen.find((r) => r.node === 2 && r.url.includes('/stream'));
    assert.equal(resumed?.lastEventId, '4');

    await c.kill(2);
    for (let i = 8; i <= 9; i++) c.append('general', 'bob', `m${i}`);
    await waitFor('messages after the second failover', () => got.length === 9);
    assert.equal(s.endpoint, c.node(3).url);
    assert.equal(s.lastSeq, 9);
    assert.deepEqual(seqs(got), range(9));
    assert.deepEqual(
      got.map((m) => m.text),
      range(9).map((i) => `m${i}`),
    );
    assert.equal(got[0]?.room, 'general');
    s.close();
    await reading;
    assert.equal(s.closed, true);
  });
});

test('stream: duplicates are dropped, a gap reconnects elsewhere, a silent node is left after the idle time', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c, 'alice', ['general'], { streamIdleMs: 400 });
    for (let i = 1; i <= 5; i++) c.append('general', 'bob', `m${i}`);
    c.node(1).streamMode = 'skip'; // sends 1, 2, 4, 5: a gap at 4
    c.node(1).skip = new Set([3]);
    c.node(2).streamMode = 'replay-all'; // sends everything from 1 whatever Last-Event-ID says
    const s = client.stream('general');
    const got: ChatMessage[] = [];
    const reasons: string[] = [];
    s.on('message', (m) => got.push(m));
    s.on('disconnected', (d) => reasons.push(d.reason));
    await waitFor('every message', () => got.length === 5);
    assert.deepEqual(seqs(got), range(5));
    assert.equal(s.endpoint, c.node(2).url);
    assert.match(reasons[0] ?? '', /gap: #4 after #2/);
    c.append('general', 'bob', 'm6');
    await waitFor('a live message', () => got.length === 6);
    s.close();

    // A node that stops sending anything (not even heartbeats) is left after streamIdleMs.
    c.node(1).streamMode = 'silent';
    const s2 = client.stream('general', { after: 6 });
    const got2: ChatMessage[] = [];
    s2.on('message', (m) => got2.push(m));
    await waitFor('connected to the silent node', () => s2.endpoint === c.node(1).url);
    c.append('general', 'bob', 'm7');
    await waitFor('m7 through another node', () => got2.length === 1, 3000);
    assert.equal(got2[0]?.seq, 7);
    assert.notEqual(s2.endpoint, c.node(1).url);
    client.close();
    assert.equal(s2.closed, true);
  });
});

test('stream: a node that stops advancing is left once a message known to be committed does not arrive', async () => {
  await withChat(3, {}, async (c) => {
    const client = await loggedIn(c, 'alice', ['general'], { streamLagMs: 300 });
    const s = client.stream('general');
    const got: ChatMessage[] = [];
    const reasons: string[] = [];
    s.on('message', (m) => got.push(m));
    s.on('failover', (f) => reasons.push(f.reason));
    await waitFor('connected', () => s.endpoint === c.node(1).url);
    await client.post('general', 'first');
    await waitFor('first', () => got.length === 1);
    c.node(1).streamMode = 'frozen'; // heartbeats, no messages: the idle timeout (30 s) would not notice
    await client.post('general', 'second');
    await waitFor('second through another node', () => got.length === 2, 3000);
    assert.deepEqual(seqs(got), [1, 2]);
    assert.equal(s.endpoint, c.node(2).url);
    assert.match(reasons[0] ?? '', /^behind: #2 is committed, #1 delivered$/);
    client.close();
  });
});

test('stream: a final error (403 Not a member) ends the iteration with the typed error', async () => {
  await withChat(2, {}, async (c) => {
    const client = await loggedIn(c, 'alice', []);
    c.seedUser('bob', PW, ['private']);
    const s = client.stream('private');
    let closedWith: Error | undefined;
    s.on('closed', (e) => (closedWith = e));
    await assert.rejects(
      (async () => {
        for await (const _m of s) assert.fail('no message expected');
      })(),
      (e: unknown) => e instanceof ForbiddenError && e.error === 'Not a member',
    );
    assert.ok(closedWith instanceof ForbiddenError);
    const s404 = client.stream('nope');
    await assert.rejects(s404[Symbol.asyncIterator]().next(), ChatNotFoundError);
  });
});

test('SseParser: events split anywhere, CRLF, comments, multi-line data, UTF-8 across chunks', () => {
  const text =
    ': hello\r\n\r\nid: 1\r\ndata: {"seq":1,"text":"h\u00e9"}\r\n\r\n:ping\n\nevent: other\ndata: x\n\nid:2\ndata:a\ndata: b\n\n';
  const bytes = new TextEncoder().encode(text);
  const expected = [
    { id: '1', event: 'message', data: '{"seq":1,"text":"h\u00e9"}' },
    { event: 'other', data: 'x' },
    { id: '2', event: 'message', data: 'a\nb' },
  ];
  for (let cut = 0; cut <= bytes.length; cut++) {
    for (const size of [1, 3, bytes.length]) {
      const p = new SseParser();
      const out = [...p.push(bytes.slice(0, cut))];
      for (let i = cut; i < bytes.length; i += size) out.push(...p.push(bytes.slice(i, i + size)));
      assert.deepEqual(out, expected, `cut at ${cut}, chunks of ${size}`);
    }
  }
});
