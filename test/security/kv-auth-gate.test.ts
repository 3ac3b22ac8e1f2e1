import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyRequest } from 'fastify';
import Fastify from 'fastify';
import { encodeCommand, type LogCommand } from '../../src/kv/commands.js';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { createCa, issueClientCert, issueNodeCert } from '../../src/net/certs.js';
import type { RaftHost } from '../../src/server/driver.js';
import { FORWARDED_HEADER } from '../../src/server/forward.js';
import { HttpError } from '../../src/server/http-common.js';
import { AuthGate, certificateUser, parseBasic, USER_HEADER, userFromCertificate } from '../../src/server/kv-auth.js';
import { hashPassword } from '../../src/util/password.js';

const basic = (user: string, password: string): string =>
  'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64');

/** A request as the gate sees it: headers and a plain (non-TLS) socket. */
const request = (headers: Record<string, string>): FastifyRequest =>
  ({ headers, raw: { socket: {} } }) as unknown as FastifyRequest;

/** A state machine with users, and a fake host whose catch-up applies `pending` entries first. */
async function fixture(opts: { leader?: boolean; trust?: boolean } = {}) {
  const sm = new KvStateMachine();
  let index = 0;
  const run = (cmd: LogCommand) => sm.apply(++index, encodeCommand(cmd));
  run({ op: 'auth', action: { kind: 'user-add', name: 'root', secret: await hashPassword('root-password') } });
  run({ op: 'auth', action: { kind: 'user-add', name: 'ann', secret: await hashPassword('ann-password') } });
  run({ op: 'auth', action: { kind: 'user-add', name: 'cert-user' } });
  run({ op: 'auth', action: { kind: 'enable' } });
  const pending: LogCommand[] = [];
  let catchUps = 0;
  const catchUp = async (): Promise<number> => {
    catchUps++;
    for (const c of pending.splice(0)) run(c);
    return index;
  };
  const host = {
    isLeader: opts.leader ?? true,
    readBarrier: catchUp,
    waitApplied: catchUp,
    commitIndex: () => index + pending.length,
  } as unknown as RaftHost<unknown, unknown>;
  const gate = new AuthGate(sm, host, { trustForwardedUser: opts.trust ?? false, maxFailures: 3 });
  return { sm, run, gate, pending, catchUps: () => catchUps };
}

async function rejects(p: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof HttpError && e.statusCode === status);
}

test('Basic credentials: checked once with scrypt, then from the cache until the password changes', async () => {
  const f = await fixture();
  const good = request({ authorization: basic('ann', 'ann-password') });
  assert.equal(await f.gate.authenticate(good), 'ann');
  assert.equal(f.gate.cachedChecks, 1);
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) assert.equal(await f.gate.authenticate(good), 'ann');
  const perCheck = (performance.now() - t0) / 200;
  assert.ok(perCheck < 2, `a cached check costs ${perCheck.toFixed(3)} ms`);
  // Concurrent first checks of one credential share one verification.
  const fresh = request({ authorization: basic('root', 'root-password') });
  assert.deepEqual(
    await Promise.all(Array.from({ length: 8 }, () => f.gate.authenticate(fresh))),
    Array(8).fill('root'),
  );
  assert.equal(f.gate.cachedChecks, 2);
  // A password change voids the cached check at once.
  f.run({
    op: 'auth',
    by: 'root',
    action: { kind: 'user-password', name: 'ann', secret: await hashPassword('new-pw-1') },
  });
  await rejects(f.gate.authenticate(good), 401);
  assert.equal(await f.gate.authenticate(request({ authorization: basic('ann', 'new-pw-1') })), 'ann');
  // So does deleting the user.
  f.run({ op: 'auth', by: 'root', action: { kind: 'user-delete', name: 'ann' } });
  await rejects(f.gate.authenticate(request({ authorization: basic('ann', 'new-pw-1') })), 401);
  // Malformed and password-less users.
  for (const h of ['Basic', 'Basic %%%', basic('', 'x'), basic('cert-user', ''), basic('cert-user', 'anything')]) {
    await rejects(f.gate.authenticate(request({ authorization: h })), 401);
  }
  await rejects(f.gate.authenticate(request({})), 401);
});

test('repeated password failures for a name are refused with 429 for a while; cached successes still pass', async () => {
  const f = await fixture();
  const good = request({ authorization: basic('root', 'root-password') });
  assert.equal(await f.gate.authenticate(good), 'root');
  for (let i = 0; i < 3; i++)
    await rejects(f.gate.authenticate(request({ authorization: basic('root', `bad-${i}`) })), 401);
  await rejects(f.gate.authenticate(request({ authorization: basic('root', 'bad-again') })), 429);
  assert.equal(await f.gate.authenticate(good), 'root', 'a cached credential is not locked out');
  assert.equal(await f.gate.authenticate(request({ authorization: basic('ann', 'ann-password') })), 'ann');
});

test('bearer tokens, certificate and forwarded users; an unknown credential makes the node catch up once', async () => {
  const f = await fixture({ leader: false });
  f.run({ op: 'auth', action: { kind: 'login', name: 'ann', session: 'sid-unused', time: 1, expires: 2 } });
  await rejects(f.gate.authenticate(request({ authorization: 'Bearer unknown-token' })), 401);
  assert.equal(f.catchUps(), 1, 'an unknown token: one catch-up, then 401');
  // A user created on the leader but not yet applied here is found after the catch-up.
  f.pending.push({
    op: 'auth',
    by: 'root',
    action: { kind: 'user-add', name: 'late', secret: await hashPassword('late-password') },
  });
  assert.equal(await f.gate.authenticate(request({ authorization: basic('late', 'late-password') })), 'late');
  // A wrong password of a known user does not wait for anything.
  const before = f.catchUps();
  await rejects(f.gate.authenticate(request({ authorization: basic('late', 'wrong-password') })), 401);
  assert.equal(f.catchUps(), before);
  // A grant not yet applied here: check() catches up before refusing.
  f.pending.push({ op: 'auth', by: 'root', action: { kind: 'user-grant', name: 'late', role: 'root' } });
  assert.equal(
    await f.gate.check(request({ authorization: basic('late', 'late-password') }), (a, u) => a.isRoot(u)),
    'late',
  );
  await rejects(
    f.gate.check(request({ authorization: basic('ann', 'ann-password') }), (a, u) => a.isRoot(u)),
    403,
  );
  // x-quorumkv-user is ignored unless forwarded requests are verified peer requests.
  const forwarded = request({ [USER_HEADER]: 'cert-user', [FORWARDED_HEADER]: '2' });
  await rejects(f.gate.authenticate(forwarded), 401);
  const trusting = await fixture({ trust: true });
  assert.equal(await trusting.gate.authenticate(forwarded), 'cert-user');
  await rejects(trusting.gate.authenticate(request({ [USER_HEADER]: 'cert-user' })), 401);
  await rejects(trusting.gate.authenticate(request({ [USER_HEADER]: 'ghost', [FORWARDED_HEADER]: '2' })), 401);
});

test('certificate user mapping: a verified certificate names its subject CN', () => {
  assert.equal(userFromCertificate({ subject: { CN: 'alice' } }, true), 'alice');
  assert.equal(userFromCertificate({ subject: { CN: 'alice' } }, false), undefined);
  assert.equal(userFromCertificate({ subject: { CN: 'bad name' } }, true), undefined);
  assert.equal(userFromCertificate({ subject: { CN: 'a:b' } }, true), undefined);
  assert.equal(userFromCertificate({ subject: { CN: ['a', 'b'] } }, true), undefined);
  assert.equal(userFromCertificate({}, true), undefined);
  assert.equal(userFromCertificate(null, true), undefined);
  assert.deepEqual(parseBasic(basic('u', 'p:w')), { name: 'u', password: 'p:w' });
  assert.equal(parseBasic('Bearer x'), undefined);
});

test('over real TLS: the gate authenticates a user by its CA-signed client certificate, not by another', async () => {
  const ca = await createCa();
  const server = await issueNodeCert(ca, { name: 'node1' });
  const alice = await issueClientCert(ca, { name: 'cert-user' });
  const otherCa = await createCa({ commonName: 'someone else' });
  const mallory = await issueClientCert(otherCa, { name: 'cert-user' });
  const f = await fixture();
  const app = Fastify({
    https: { key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: false },
  });
  app.get('/who', async (req) => {
    try {
      return { cert: certificateUser(req) ?? null, user: await f.gate.authenticate(req) };
    } catch (e) {
      return { cert: certificateUser(req) ?? null, error: (e as Error).message };
    }
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const get = (client?: { cert: string; key: string }) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const r = https.request(
        { host: '127.0.0.1', port, path: '/who', ca: ca.cert, ...(client ?? {}), agent: false },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
        },
      );
      r.on('error', reject);
      r.end();
    });
  try {
    assert.deepEqual(await get(alice), { cert: 'cert-user', user: 'cert-user' });
    assert.deepEqual(await get(mallory), { cert: null, error: 'Not authenticated' });
    assert.deepEqual(await get(), { cert: null, error: 'Not authenticated' });
  } finally {
    await app.close();
  }
});
