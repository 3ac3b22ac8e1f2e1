import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthState, MAX_SESSIONS_PER_USER } from '../../src/kv/auth.js';
import {
  decodeCommand,
  encodeCommand,
  InvalidCommandError,
  type AuthAction,
  type Command,
  type LogCommand,
} from '../../src/kv/commands.js';
import { renderResult } from '../../src/kv/results.js';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { pack, unpack } from '../../src/util/msgpack.js';

const SECRET = { salt: Uint8Array.from([1, 2, 3]), hash: Uint8Array.from([4, 5, 6]) };

/** Applies commands from index 1 (or `from`), through their encoded bytes. */
function applier(sm: KvStateMachine, from = 1) {
  let index = from;
  return (cmd: LogCommand) => sm.apply(index++, encodeCommand(cmd));
}

const act = (action: AuthAction, by?: string): LogCommand =>
  by === undefined ? { op: 'auth', action } : { op: 'auth', action, by };
const as = (user: string, command: Command): LogCommand => ({ op: 'as-user', user, command });

/** A machine with root, a reader of app/, a writer of app/ and auth enabled. */
function setup(): { sm: KvStateMachine; run: (cmd: LogCommand) => ReturnType<KvStateMachine['apply']> } {
  const sm = new KvStateMachine();
  const run = applier(sm);
  run(act({ kind: 'user-add', name: 'root', secret: SECRET }));
  run(act({ kind: 'user-add', name: 'ann', secret: SECRET }));
  run(act({ kind: 'user-add', name: 'bob', secret: SECRET }));
  run(act({ kind: 'role-add', name: 'app-read' }));
  run(act({ kind: 'role-add', name: 'app-write' }));
  run(act({ kind: 'role-grant', name: 'app-read', permission: { prefix: 'app/', read: true, write: false } }));
  run(act({ kind: 'role-grant', name: 'app-write', permission: { prefix: 'app/', read: true, write: true } }));
  run(act({ kind: 'user-grant', name: 'ann', role: 'app-read' }));
  run(act({ kind: 'user-grant', name: 'bob', role: 'app-write' }));
  assert.deepEqual(run(act({ kind: 'enable' })), { kind: 'auth', status: 200, result: 'enabled' });
  return { sm, run };
}

test('every auth action and as-user round-trip through the log encoding; malformed ones are invalid', () => {
  const actions: AuthAction[] = [
    { kind: 'user-add', name: 'u', secret: SECRET },
    { kind: 'user-add', name: 'cert-only' },
    { kind: 'user-delete', name: 'u' },
    { kind: 'user-password', name: 'u', secret: SECRET },
    { kind: 'user-password', name: 'u' },
    { kind: 'user-grant', name: 'u', role: 'r' },
    { kind: 'user-revoke', name: 'u', role: 'r' },
    { kind: 'role-add', name: 'r' },
    { kind: 'role-delete', name: 'r' },
    { kind: 'role-grant', name: 'r', permission: { prefix: '', read: true, write: false } },
    { kind: 'role-revoke', name: 'r', prefix: 'p/' },
    { kind: 'enable' },
    { kind: 'disable' },
    { kind: 'login', name: 'u', session: 'ab', time: 5, expires: 10 },
    { kind: 'logout', session: 'ab' },
  ];
  for (const a of actions) {
    assert.deepEqual(decodeCommand(encodeCommand(act(a))), act(a));
    assert.deepEqual(decodeCommand(encodeCommand(act(a, 'root'))), act(a, 'root'));
  }
  const inner: Command[] = [
    { op: 'put', key: 'k', value: { a: 1 }, ifVersion: 2, requestId: { client: 'c', seq: 3 } },
    { op: 'delete', key: 'k' },
    { op: 'txn', compare: [{ key: 'a', target: 'value', op: '==', value: 1 }], success: [], failure: [] },
  ];
  for (const c of inner) assert.deepEqual(decodeCommand(encodeCommand(as('ann', c))), as('ann', c));
  const wrapped = encodeCommand(as('ann', inner[0] as Command));
  assert.deepEqual([wrapped[0], wrapped[1]], [0xc1, 3], 'as-user is binary');
  const plain = encodeCommand(inner[0] as Command);
  assert.deepEqual(Buffer.from(wrapped.subarray(wrapped.length - plain.length)), Buffer.from(plain));
  // The plain put keeps its binary form.
  assert.equal(encodeCommand({ op: 'put', key: 'k', value: 1 })[0], 0xc1);
  const bad = [
    pack({ t: 'a', a: 'zz' }),
    pack({ t: 'a', a: 'ua' }),
    pack({ t: 'a', a: 'ua', n: 'u', s: 'not bytes', h: new Uint8Array(1) }),
    pack({ t: 'a', a: 'rg', n: 'r', p: '', rd: 1, wr: true }),
    pack({ t: 'a', a: 'li', n: 'u', sid: 's', tm: -1, ex: 1 }),
    pack({ t: 'u', u: 'ann', c: encodeCommand({ op: 'delete', key: 'k' }) }),
    // Binary as-user: wrapping an auth command, truncated, unknown flags, an empty user, no command.
    Buffer.concat([Buffer.from([0xc1, 3, 0, 3]), Buffer.from('ann'), encodeCommand(act({ kind: 'enable' }))]),
    Buffer.from([0xc1, 3, 0, 9, 0x61]),
    Buffer.concat([Buffer.from([0xc1, 3, 1, 3]), Buffer.from('ann'), encodeCommand({ op: 'delete', key: 'k' })]),
    Buffer.concat([Buffer.from([0xc1, 3, 0, 0]), encodeCommand({ op: 'delete', key: 'k' })]),
    Buffer.concat([Buffer.from([0xc1, 3, 0, 3]), Buffer.from('ann')]),
  ];
  for (const b of bad) assert.throws(() => decodeCommand(b), InvalidCommandError);
  const sm = new KvStateMachine();
  assert.equal(sm.apply(1, bad[0] as Uint8Array).kind, 'invalid');
});

test('auth is enabled only once a root user exists, which then holds the root role', () => {
  const sm = new KvStateMachine();
  const run = applier(sm);
  assert.deepEqual(run(act({ kind: 'enable' })), {
    kind: 'auth',
    status: 409,
    error: 'Auth cannot be enabled without a root user',
  });
  assert.equal(sm.auth.enabled, false);
  run(act({ kind: 'user-add', name: 'root', secret: SECRET }));
  assert.deepEqual(sm.auth.user('root')?.roles, []);
  run(act({ kind: 'enable' }));
  assert.equal(sm.auth.enabled, true);
  assert.deepEqual(sm.auth.user('root')?.roles, ['root']);
  assert.ok(sm.auth.isRoot('root'));
  // The root user and its role are kept while enabled.
  assert.equal(run(act({ kind: 'user-delete', name: 'root' }, 'root')).kind, 'auth');
  assert.ok(sm.auth.user('root') !== undefined);
  assert.deepEqual(renderResult(run(act({ kind: 'user-revoke', name: 'root', role: 'root' }, 'root'))).status, 409);
  assert.ok(sm.auth.isRoot('root'));
  assert.equal(renderResult(run(act({ kind: 'role-delete', name: 'root' }, 'root'))).status, 409);
  assert.equal(renderResult(run(act({ kind: 'role-add', name: 'root' }, 'root'))).status, 409);
  const grant = { kind: 'role-grant', name: 'root', permission: { prefix: '', read: true, write: true } } as const;
  assert.equal(renderResult(run(act(grant, 'root'))).status, 409);
});

test('with auth on, key commands need a user with the permission, checked when they apply', () => {
  const { sm, run } = setup();
  // A command without a user (proposed while auth seemed off) changes nothing.
  assert.deepEqual(run({ op: 'put', key: 'app/x', value: 1 }), { kind: 'unauthenticated' });
  assert.deepEqual(renderResult({ kind: 'unauthenticated' }), { status: 401, body: { error: 'Not authenticated' } });
  assert.equal(sm.get('app/x'), undefined);
  assert.deepEqual(run(as('bob', { op: 'put', key: 'app/x', value: 1 })).kind, 'created');
  assert.deepEqual(run(as('ann', { op: 'put', key: 'app/x', value: 2 })), { kind: 'permission-denied' });
  assert.deepEqual(renderResult({ kind: 'permission-denied' }), { status: 403, body: { error: 'Permission denied' } });
  assert.deepEqual(run(as('bob', { op: 'put', key: 'other/x', value: 2 })), { kind: 'permission-denied' });
  assert.deepEqual(run(as('nobody', { op: 'put', key: 'app/x', value: 2 })), { kind: 'unauthenticated' });
  assert.deepEqual(run(as('ann', { op: 'delete', key: 'app/x' })), { kind: 'permission-denied' });
  assert.equal(sm.get('app/x')?.value, 1);
  assert.equal(run(as('root', { op: 'put', key: 'anything', value: 3 })).kind, 'created');
  // Reads.
  const a = sm.auth;
  assert.ok(a.canRead('ann', 'app/x') && !a.canWrite('ann', 'app/x') && !a.canRead('ann', 'other/x'));
  assert.ok(a.canReadPrefix('ann', 'app/') && a.canReadPrefix('ann', 'app/sub') && !a.canReadPrefix('ann', 'ap'));
  assert.ok(!a.canReadPrefix('ann', '') && a.canReadPrefix('root', ''));
  // A revocation ordered before a write wins.
  run(act({ kind: 'user-revoke', name: 'bob', role: 'app-write' }, 'root'));
  assert.deepEqual(run(as('bob', { op: 'put', key: 'app/x', value: 9 })), { kind: 'permission-denied' });
  assert.equal(sm.get('app/x')?.value, 1);
  // With auth off again, anything goes, with or without a user.
  run(act({ kind: 'disable' }, 'root'));
  assert.equal(run({ op: 'put', key: 'app/x', value: 5 }).kind, 'replaced');
  assert.equal(run(as('ann', { op: 'put', key: 'other/y', value: 5 })).kind, 'created');
});

test('transactions need read on compared and fetched keys, write on written keys, in both branches', () => {
  const { run } = setup();
  run(act({ kind: 'role-add', name: 'mixed' }, 'root'));
  run(act({ kind: 'role-grant', name: 'mixed', permission: { prefix: 'r/', read: true, write: false } }, 'root'));
  run(act({ kind: 'role-grant', name: 'mixed', permission: { prefix: 'w/', read: false, write: true } }, 'root'));
  run(act({ kind: 'user-add', name: 'max', secret: SECRET }, 'root'));
  run(act({ kind: 'user-grant', name: 'max', role: 'mixed' }, 'root'));
  const txn = (c: string, s: string, f: string, get = 'r/g'): Command => ({
    op: 'txn',
    compare: [{ key: c, target: 'exists', op: '==', value: false }],
    success: [{ op: 'put', key: s, value: 1 }],
    failure: [
      { op: 'delete', key: f },
      { op: 'get', key: get },
    ],
  });
  assert.equal(run(as('max', txn('r/a', 'w/a', 'w/b'))).kind, 'txn');
  assert.deepEqual(run(as('max', txn('w/a', 'w/a', 'w/b'))), { kind: 'permission-denied' }, 'compare needs read');
  assert.deepEqual(run(as('max', txn('r/a', 'r/a', 'w/b'))), { kind: 'permission-denied' }, 'put needs write');
  assert.deepEqual(run(as('max', txn('r/a', 'w/a', 'r/b'))), { kind: 'permission-denied' }, 'failure branch too');
  assert.deepEqual(run(as('max', txn('r/a', 'w/a', 'w/b', 'w/g'))), { kind: 'permission-denied' }, 'get needs read');
});

test('management needs the root role while auth is on; anyone may manage while it is off', () => {
  const { sm, run } = setup();
  assert.deepEqual(run(act({ kind: 'role-add', name: 'x' })), { kind: 'unauthenticated' });
  assert.deepEqual(run(act({ kind: 'role-add', name: 'x' }, 'ann')), { kind: 'permission-denied' });
  assert.deepEqual(run(act({ kind: 'role-add', name: 'x' }, 'ghost')), { kind: 'unauthenticated' });
  assert.equal(sm.auth.role('x'), undefined);
  const rev = sm.auth.revision;
  assert.deepEqual(run(act({ kind: 'role-add', name: 'x' }, 'root')), { kind: 'auth', status: 201, result: 'created' });
  assert.ok(sm.auth.revision > rev);
  // Granting root makes another administrator.
  run(act({ kind: 'user-grant', name: 'ann', role: 'root' }, 'root'));
  assert.equal(run(act({ kind: 'role-add', name: 'y' }, 'ann')).kind, 'auth');
  assert.ok(sm.auth.role('y') !== undefined);
  // Errors.
  const status = (a: AuthAction) => renderResult(run(act(a, 'root'))).status;
  assert.equal(status({ kind: 'user-add', name: 'ann' }), 409);
  assert.equal(status({ kind: 'user-add', name: 'bad:name' }), 400);
  assert.equal(status({ kind: 'user-delete', name: 'nobody' }), 404);
  assert.equal(status({ kind: 'user-grant', name: 'ann', role: 'nope' }), 404);
  assert.equal(status({ kind: 'user-revoke', name: 'ann', role: 'x' }), 404);
  assert.equal(status({ kind: 'role-add', name: 'x' }), 409);
  assert.equal(status({ kind: 'role-revoke', name: 'x', prefix: 'none/' }), 404);
  assert.equal(status({ kind: 'role-grant', name: 'x', permission: { prefix: 'a', read: false, write: false } }), 400);
  // Deleting a role takes it from every user.
  assert.equal(status({ kind: 'role-delete', name: 'app-read' }), 200);
  assert.deepEqual(sm.auth.user('ann')?.roles, ['root']);
  // Granting a prefix twice replaces the permission.
  run(act({ kind: 'role-grant', name: 'x', permission: { prefix: 'p/', read: true, write: false } }, 'root'));
  run(act({ kind: 'role-grant', name: 'x', permission: { prefix: 'p/', read: false, write: true } }, 'root'));
  run(act({ kind: 'role-grant', name: 'x', permission: { prefix: 'a/', read: true, write: false } }, 'root'));
  assert.deepEqual(sm.auth.role('x')?.permissions, [
    { prefix: 'a/', read: true, write: false },
    { prefix: 'p/', read: false, write: true },
  ]);
  assert.deepEqual(
    sm.auth.listRoles().map((r) => r.name),
    ['root', 'app-write', 'x', 'y'],
  );
});

test('sessions: login, expiry by the next login time, cap per user, logout, dropped with the user or its password', () => {
  const { sm, run } = setup();
  const login = (name: string, session: string, time: number, expires: number) =>
    run(act({ kind: 'login', name, session, time, expires }));
  assert.equal(renderResult(login('ann', 's1', 100, 1000)).status, 201);
  assert.equal(sm.auth.sessionUser('s1', 999), 'ann');
  assert.equal(sm.auth.sessionUser('s1', 1000), undefined, 'expired at its expiry time');
  assert.deepEqual(login('ghost', 's2', 100, 1000), { kind: 'unauthenticated' });
  login('bob', 's3', 1000, 5000);
  assert.equal(sm.auth.sessionCount, 1, 'the next login dropped the expired session');
  for (let i = 0; i < MAX_SESSIONS_PER_USER + 5; i++) login('ann', `a${i}`, 1000, 2000 + i);
  assert.equal(sm.auth.sessionCount, MAX_SESSIONS_PER_USER + 1);
  assert.equal(sm.auth.sessionUser('a0', 1000), undefined, 'the soonest to expire went first');
  assert.equal(sm.auth.sessionUser(`a${MAX_SESSIONS_PER_USER + 4}`, 1000), 'ann');
  assert.equal(renderResult(run(act({ kind: 'logout', session: 's3' }))).status, 200);
  assert.equal(sm.auth.sessionUser('s3', 1000), undefined);
  assert.deepEqual(run(act({ kind: 'logout', session: 's3' })), { kind: 'unauthenticated' });
  const rev = sm.auth.user('ann')?.credRevision as number;
  run(act({ kind: 'user-password', name: 'ann', secret: SECRET }, 'root'));
  assert.equal(sm.auth.sessionCount, 0);
  assert.ok((sm.auth.user('ann')?.credRevision as number) > rev);
  login('bob', 'b1', 1000, 5000);
  run(act({ kind: 'user-delete', name: 'bob' }, 'root'));
  assert.equal(sm.auth.sessionUser('b1', 1000), undefined);
  run(act({ kind: 'user-add', name: 'bob', secret: SECRET }, 'root'));
  assert.equal(sm.auth.sessionUser('b1', 1000), undefined, 'a re-created user does not inherit sessions');
  login('bob', 'b2', 1000, 5000);
  run(act({ kind: 'disable' }, 'root'));
  assert.equal(sm.auth.sessionCount, 0);
  assert.equal(renderResult(login('bob', 'b3', 1000, 5000)).status, 409, 'no login while auth is off');
});

test('as-user requests are deduplicated by request id like plain ones', () => {
  const { run } = setup();
  const put = as('bob', { op: 'put', key: 'app/k', value: 1, requestId: { client: 'c', seq: 1 } });
  assert.equal(run(put).kind, 'created');
  assert.equal(run(put).kind, 'created', 'the retry returns the first outcome');
  const denied = as('ann', { op: 'put', key: 'app/k', value: 1, requestId: { client: 'd', seq: 1 } });
  assert.equal(run(denied).kind, 'permission-denied');
});

test('the auth state travels in snapshots (same bytes on replicas) and format-1 snapshots still load', () => {
  const { sm, run } = setup();
  run(act({ kind: 'login', name: 'ann', session: 'tok', time: 10, expires: 10_000 }));
  run(act({ kind: 'user-add', name: 'cert', secret: undefined }, 'root'));
  run(as('bob', { op: 'put', key: 'app/a', value: [1] }));
  const snap = sm.snapshot();
  const copy = new KvStateMachine();
  copy.restore(snap);
  assert.deepEqual(Buffer.from(copy.snapshot()), Buffer.from(snap));
  assert.equal(copy.auth.enabled, true);
  assert.equal(copy.auth.sessionUser('tok', 20), 'ann');
  assert.deepEqual(copy.auth.user('ann')?.secret, SECRET);
  assert.equal(copy.auth.user('cert')?.secret, undefined);
  assert.ok(copy.auth.canWrite('bob', 'app/z') && !copy.auth.canWrite('ann', 'app/z'));
  assert.equal(copy.auth.revision, sm.auth.revision);
  // A replica applying the same entries in another batching ends with the same bytes.
  const twin = setup();
  twin.run(act({ kind: 'login', name: 'ann', session: 'tok', time: 10, expires: 10_000 }));
  twin.run(act({ kind: 'user-add', name: 'cert', secret: undefined }, 'root'));
  twin.run(as('bob', { op: 'put', key: 'app/a', value: [1] }));
  assert.deepEqual(Buffer.from(twin.sm.snapshot()), Buffer.from(snap));
  // Format 1: [1, applied, keys, sessions].
  const v1 = pack([1, 7, ['k', '"v"', 1, 3, 3], [[], []]]);
  const old = new KvStateMachine();
  old.restore(v1);
  assert.equal(old.get('k')?.value, 'v');
  assert.equal(old.auth.enabled, false);
  assert.equal(old.appliedIndex, 7);
  // And the state machine writes format 2.
  assert.equal((unpack(old.snapshot()) as unknown[])[0], 2);
  // A malformed auth part is refused and changes nothing.
  const broken = unpack(snap) as unknown[];
  broken[4] = [true, 1, [['u', null, null, 'not roles', 1]], [], []];
  assert.throws(() => old.restore(pack(broken)), /auth user/);
  assert.equal(old.get('k')?.value, 'v');
  assert.ok(AuthState.restore(new AuthState().snapshot()).enabled === false);
});
