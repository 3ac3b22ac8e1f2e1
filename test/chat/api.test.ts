/**
 * The chat contract's answers, error column included, against a real 3-node cluster: bad input gets a
 * clear 4xx and writes nothing to the log; logins are rate-limited; tokens expire and can be revoked;
 * neither a password nor a token ever reaches a file in the data directories or a log line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startChatCluster, status } from './helpers.js';

interface Res {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(
  base: string,
  method: string,
  url: string,
  opts: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let payload: string | undefined = opts.raw;
  if (opts.body !== undefined) payload = JSON.stringify(opts.body);
  if (payload !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(base + url, { method, headers, body: payload, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { text };
  }
  return { status: res.status, body, headers: res.headers };
}

function expect(r: Res, status: number, body: Record<string, unknown>, what: string): void {
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  for (const [k, v] of Object.entries(body)) assert.deepEqual(r.body[k], v, `${what}: field ${k}`);
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

test('chat API: the contract, bad input, rate limits, expiry, and no secret on disk', async (t) => {
  const c = await startChatCluster(3, {
    chatLoginsPerMinute: 10,
    chatSessionTtlMs: 8000,
    snapshotThreshold: 20,
    snapshotTrailing: 2,
    logLevel: 'info',
  });
  try {
    const leader = await c.cluster.waitLeader();
    const L = c.cluster.url(leader);
    const F = c.cluster.url(c.cluster.ids.find((id) => id !== leader) as number); // a follower: forwards
    const PW = 'pw-secret-4bd1e7-correct';
    let token = '';

    await t.test('registration and login', async () => {
      const before = (await status(L)) as unknown as { last_index: number };
      const bad: [unknown, string | undefined, number, string][] = [
        [undefined, undefined, 400, 'Request body must be a JSON object'],
        [undefined, '{"username":', 400, ''],
        [['ann'], undefined, 400, 'Request body must be a JSON object'],
        [{ password: PW }, undefined, 400, 'Username must be 1 to 32 characters of A-Z, a-z, 0-9, "_", "." or "-"'],
        [{ username: 'a b', password: PW }, undefined, 400, ''],
        [{ username: 'x'.repeat(33), password: PW }, undefined, 400, ''],
        [{ username: 'ann', password: 'short' }, undefined, 400, 'Password must be 8 to 256 characters'],
        [{ username: 'ann', password: 'p'.repeat(257) }, undefined, 400, ''],
        [{ username: 'ann', password: 42 }, undefined, 400, ''],
      ];
      for (const [body, raw, code, error] of bad) {
        const r = await call(F, 'POST', '/chat/users', raw === undefined ? { body } : { raw });
        assert.equal(r.status, code, JSON.stringify(body ?? raw));
        assert.equal(typeof r.body.error, 'string');
        if (error !== '') assert.equal(r.body.error, error);
      }
      assert.match(
        (await call(F, 'POST', '/chat/users', { raw: '{"username":' })).body.error as string,
        /Malformed JSON/,
      );
      expect(
        await call(F, 'POST', '/chat/users', { body: { username: 'ann', password: PW } }),
        201,
        {
          result: 'created',
          username: 'ann',
        },
        'register',
      );
      expect(
        await call(L, 'POST', '/chat/users', { body: { username: 'ann', password: PW } }),
        409,
        {
          error: 'Username is taken',
        },
        'taken',
      );
      const after = (await status(L)) as unknown as { last_index: number };
      assert.equal(after.last_index, before.last_index + 1, 'only the good registration reached the log');

      expect(
        await call(F, 'POST', '/chat/sessions', { body: { username: 'ann', password: 'wrong-password' } }),
        401,
        {
          error: 'Wrong username or password',
        },
        'wrong password',
      );
      expect(
        await call(F, 'POST', '/chat/sessions', { body: { username: 'nobody', password: PW } }),
        401,
        {
          error: 'Wrong username or password',
        },
        'unknown user',
      );
      expect(await call(F, 'POST', '/chat/sessions', { body: { username: 'ann' } }), 400, {}, 'no password');
      const ok = await call(F, 'POST', '/chat/sessions', { body: { username: 'ann', password: PW } });
      expect(ok, 201, { username: 'ann' }, 'login');
      token = ok.body.token as string;
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    });

    await t.test('login attempts are limited per username (10 a minute), with 429 and Retry-After', async () => {
      await call(L, 'POST', '/chat/users', { body: { username: 'rl', password: PW } });
      for (let i = 0; i < 10; i++) {
        const r = await call(F, 'POST', '/chat/sessions', { body: { username: 'rl', password: `wrong-${i}-pass` } });
        assert.equal(r.status, 401);
      }
      const limited = await call(F, 'POST', '/chat/sessions', { body: { username: 'rl', password: PW } });
      expect(limited, 429, {}, 'the 11th attempt, even with the right password');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      const other = await call(F, 'POST', '/chat/sessions', { body: { username: 'ann', password: PW } });
      assert.equal(other.status, 201, 'another username is not limited');
    });

    await t.test('authentication: missing, malformed and forged tokens', async () => {
      const variants: Record<string, string>[] = [
        {},
        { authorization: 'Basic YW5uOnB3' },
        { authorization: 'Bearer forged-token' },
      ];
      for (const headers of variants) {
        for (const [method, url, body] of [
          ['GET', '/chat/rooms', undefined],
          ['POST', '/chat/rooms', { name: 'x' }],
          ['POST', '/chat/rooms/x/join', undefined],
          ['POST', '/chat/rooms/x/messages', { text: 'hi' }],
          ['GET', '/chat/rooms/x/messages', undefined],
          ['GET', '/chat/rooms/x/stream', undefined],
          ['DELETE', '/chat/sessions', undefined],
        ] as const) {
          expect(
            await call(F, method, url, { body, headers }),
            401,
            { error: 'Not authenticated' },
            `${method} ${url}`,
          );
        }
      }
    });

    const login = async (username: string): Promise<string> =>
      (await call(F, 'POST', '/chat/sessions', { body: { username, password: PW } })).body.token as string;

    await t.test('rooms, membership and posts', async () => {
      token = await login('ann'); // fresh: tokens here live 8 s
      const before = (await status(L)) as unknown as { last_index: number };
      expect(await call(F, 'POST', '/chat/rooms', { token, body: { name: 'bad name!' } }), 400, {}, 'room name');
      expect(await call(F, 'POST', '/chat/rooms', { token, body: {} }), 400, {}, 'no room name');
      expect(
        await call(F, 'POST', '/chat/rooms/nowhere/join', { token }),
        404,
        { error: 'Room does not exist' },
        'join',
      );
      expect(
        await call(F, 'POST', '/chat/rooms/nowhere/messages', { token, body: { text: 'x' } }),
        404,
        {
          error: 'Room does not exist',
        },
        'post to nowhere',
      );
      assert.equal((await status(L)).applied >= 0, true);
      assert.equal(
        ((await status(L)) as unknown as { last_index: number }).last_index,
        before.last_index,
        'nothing written',
      );

      expect(
        await call(F, 'POST', '/chat/rooms', { token, body: { name: 'general' } }),
        201,
        {
          result: 'created',
          name: 'general',
        },
        'create',
      );
      expect(
        await call(F, 'POST', '/chat/rooms', { token, body: { name: 'general' } }),
        409,
        { error: 'Room exists' },
        'dup',
      );

      const bobReg = await call(F, 'POST', '/chat/users', { body: { username: 'bob', password: PW } });
      assert.equal(bobReg.status, 201);
      const bob = (await call(F, 'POST', '/chat/sessions', { body: { username: 'bob', password: PW } })).body
        .token as string;
      const mark = ((await status(L)) as unknown as { last_index: number }).last_index;
      expect(
        await call(F, 'POST', '/chat/rooms/general/messages', { token: bob, body: { text: 'hi' } }),
        403,
        {
          error: 'Not a member',
        },
        'not a member',
      );
      expect(
        await call(F, 'GET', '/chat/rooms/general/messages', { token: bob }),
        403,
        { error: 'Not a member' },
        'read',
      );
      expect(
        await call(F, 'GET', '/chat/rooms/general/stream', { token: bob }),
        403,
        { error: 'Not a member' },
        'stream',
      );
      const post = (body: unknown, raw?: string) =>
        call(F, 'POST', '/chat/rooms/general/messages', raw === undefined ? { token, body } : { token, raw });
      expect(await post({ text: '' }), 400, { error: 'Message text is empty' }, 'empty');
      expect(await post({ text: ' \n\t ' }), 400, { error: 'Message text is empty' }, 'blank');
      expect(await post({ text: 7 }), 400, {}, 'not a string');
      expect(await post({}), 400, {}, 'no text');
      expect(await post(undefined, '{"text": "unterminated'), 400, {}, 'malformed JSON');
      expect(await post({ text: '€'.repeat(1366) }), 413, { error: 'Message is too long' }, '4098 bytes');
      expect(await post({ text: 'x'.repeat(200_000) }), 413, { error: 'Message is too long' }, 'oversized body');
      expect(await post({ text: 'x', request_id: 'r'.repeat(129) }), 400, {}, 'request id too long');
      expect(await post({ text: 'x', request_id: 5 }), 400, {}, 'request id not a string');
      assert.equal(((await status(L)) as unknown as { last_index: number }).last_index, mark, 'nothing written');

      const first = await post({ text: '€'.repeat(1365) + 'a', request_id: 'ann:1' });
      expect(first, 201, { seq: 1, room: 'general', user: 'ann', text: '€'.repeat(1365) + 'a' }, '4096 bytes');
      assert.equal(typeof first.body.time, 'number');
      assert.ok(Math.abs((first.body.time as number) - Date.now()) < 60_000);
      assert.deepEqual((await post({ text: 'a retry with another text', request_id: 'ann:1' })).body, first.body);
      expect(await post({ text: 'second' }), 201, { seq: 2 }, 'second');

      expect(await call(F, 'POST', '/chat/rooms/general/join', { token: bob }), 200, { result: 'joined' }, 'join');
      expect(await call(F, 'POST', '/chat/rooms/general/join', { token: bob }), 200, { result: 'joined' }, 'again');
      const list = await call(F, 'GET', '/chat/rooms', { token: bob });
      expect(list, 200, { rooms: [{ name: 'general', members: 2, last_seq: 2 }] }, 'rooms');
      const msgs = await call(F, 'GET', '/chat/rooms/general/messages?after=1&limit=5', { token: bob });
      expect(msgs, 200, { last_seq: 2 }, 'messages');
      assert.deepEqual(
        (msgs.body.messages as { seq: number; user: string; text: string }[]).map((m) => [m.seq, m.user, m.text]),
        [[2, 'ann', 'second']],
      );
      const stale = await call(F, 'GET', '/chat/rooms/general/messages?consistency=stale', { token: bob });
      expect(stale, 200, { stale: true }, 'stale read');
      assert.equal(typeof stale.body.applied, 'number');
      for (const q of ['limit=0', 'limit=1001', 'limit=x', 'after=-1', 'consistency=eventual']) {
        expect(await call(F, 'GET', `/chat/rooms/general/messages?${q}`, { token: bob }), 400, {}, q);
      }
      expect(
        await call(F, 'GET', '/chat/rooms/general/stream', { token: bob, headers: { 'last-event-id': 'abc' } }),
        400,
        {},
        'Last-Event-ID',
      );
      expect(await call(F, 'GET', '/chat/rooms/nowhere/stream', { token: bob }), 404, {}, 'stream of nowhere');
    });

    await t.test('methods and routes', async () => {
      expect(await call(F, 'GET', '/chat/users'), 405, {}, 'GET users');
      expect(await call(F, 'PUT', '/chat/rooms', { token }), 405, {}, 'PUT rooms');
      expect(await call(F, 'DELETE', '/chat/rooms/general/messages', { token }), 405, {}, 'DELETE messages');
      expect(await call(F, 'GET', '/chat/nothing'), 404, { error: 'Not found' }, 'unknown route');
      expect(await call(F, 'GET', '/kvs/x'), 404, { error: 'Not found' }, 'a chat node serves no KV routes');
    });

    await t.test('sessions end by logout and by expiry', async () => {
      const s = (await call(F, 'POST', '/chat/sessions', { body: { username: 'bob', password: PW } })).body
        .token as string;
      expect(
        await call(F, 'DELETE', '/chat/sessions', { token: s, headers: { 'content-type': 'application/json' } }),
        200,
        {
          result: 'deleted',
        },
        'logout (with a content-type and no body)',
      );
      expect(await call(F, 'GET', '/chat/rooms', { token: s }), 401, { error: 'Not authenticated' }, 'after logout');
      const e = (await call(F, 'POST', '/chat/sessions', { body: { username: 'bob', password: PW } })).body
        .token as string;
      assert.equal((await call(F, 'GET', '/chat/rooms', { token: e })).status, 200);
      await new Promise((r) => setTimeout(r, 8200));
      expect(await call(F, 'GET', '/chat/rooms', { token: e }), 401, { error: 'Not authenticated' }, 'expired');
      expect(
        await call(F, 'POST', '/chat/rooms/general/messages', { token: e, body: { text: 'late' } }),
        401,
        {},
        'expired',
      );
    });

    await t.test('no password and no token in any file of the data directories or in the logs', async () => {
      // Enough entries for snapshots (threshold 20) on every node.
      const fresh = (await call(F, 'POST', '/chat/sessions', { body: { username: 'ann', password: PW } })).body
        .token as string;
      for (let i = 0; i < 30; i++)
        await call(L, 'POST', '/chat/rooms/general/messages', { token: fresh, body: { text: `m${i}` } });
      const st = (await status(L)) as unknown as { counters: { snapshotsCreated: number } };
      assert.ok(st.counters.snapshotsCreated >= 1, 'a snapshot was taken');
      const secrets = [PW, fresh, token].map((s) => Buffer.from(s));
      const files = filesUnder(c.dir);
      assert.ok(files.some((f) => f.endsWith('chat.sqlite')));
      for (const f of files) {
        const bytes = readFileSync(f);
        for (const s of secrets) assert.equal(bytes.indexOf(s), -1, `${f} holds a secret`);
      }
      for (const id of c.cluster.ids) {
        const log = (c.cluster.stderr.get(id) ?? '') + (c.cluster.stdout.get(id) ?? '');
        assert.ok(log.includes('"msg"'), 'the node logged (info level)');
        for (const s of secrets) assert.equal(log.includes(s.toString()), false, `node ${id}'s log holds a secret`);
      }
    });
  } finally {
    await c.cleanup();
  }
});
