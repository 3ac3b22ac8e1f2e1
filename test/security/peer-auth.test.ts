/** The peer-auth module on its own: secret files, signatures, the replay window, who may run without a secret. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  PeerAuthError,
  PeerKeys,
  ReplayGuard,
  RequestSigner,
  RequestVerifier,
  createSecretFile,
  ensureSecretFile,
  isLoopbackHost,
  loadSecretFile,
  resolvePeerKeys,
  rotateSecretFile,
  EMPTY_BODY_HASH,
} from '../../src/net/peer-auth.js';
import { createHash } from 'node:crypto';

const A = PeerKeys.fromBuffers([Buffer.alloc(32, 1)]);
const B = PeerKeys.fromBuffers([Buffer.alloc(32, 2)]);
const hash = (b: string) => createHash('sha256').update(b).digest('hex');

test('a signed request verifies once; missing, malformed, stale, tampered and replayed ones do not', () => {
  let now = 1_000_000;
  const clock = () => now;
  const signer = new RequestSigner(A, 'n1', clock);
  const v = new RequestVerifier(A, 30_000, clock);
  const body = '{"key":"k"}';
  const h = signer.sign('POST', '/replicate?x=1', body);
  assert.deepEqual(v.verify('POST', '/replicate?x=1', h, hash(body)), { ok: true, peer: 'n1' });
  assert.deepEqual(v.verify('POST', '/replicate?x=1', h, hash(body)), { ok: false, status: 403, reason: 'replayed' });
  const fresh = () => signer.sign('POST', '/replicate?x=1', body);
  assert.equal(v.verify('POST', '/replicate?x=2', fresh(), hash(body)).ok, false, 'other query');
  assert.equal(v.verify('PUT', '/replicate?x=1', fresh(), hash(body)).ok, false, 'other method');
  assert.equal(v.verify('POST', '/replicate?x=1', fresh(), hash('{}')).ok, false, 'other body');
  assert.equal(v.verify('POST', '/replicate?x=1', { ...fresh(), 'x-qkv-peer': 'n2' }, hash(body)).ok, false);
  assert.deepEqual(v.verify('POST', '/', {}, EMPTY_BODY_HASH), { ok: false, status: 401, reason: 'missing' });
  const { ['x-qkv-nonce']: _n, ...noNonce } = fresh();
  assert.deepEqual(v.precheck(noNonce), { ok: false, status: 403, reason: 'malformed' });
  assert.deepEqual(v.precheck({ ...fresh(), 'x-qkv-signature': 'zz' }), {
    ok: false,
    status: 403,
    reason: 'malformed',
  });
  const old = fresh();
  now += 30_001;
  assert.deepEqual(v.precheck(old), { ok: false, status: 403, reason: 'stale' });
  const b = new RequestSigner(B, 'n1', clock).sign('GET', '/data');
  assert.deepEqual(v.verify('GET', '/data', b, EMPTY_BODY_HASH), { ok: false, status: 403, reason: 'bad-signature' });
  // A bodyless request hashes as empty.
  assert.equal(v.verify('GET', '/data', signer.sign('GET', '/data'), EMPTY_BODY_HASH).ok, true);
  // A verifier started later (a restarted node, its replay memory empty) refuses what was signed before it.
  const captured = signer.sign('GET', '/data');
  now += 5_000;
  const restarted = new RequestVerifier(A, 30_000, clock);
  assert.deepEqual(restarted.verify('GET', '/data', captured, EMPTY_BODY_HASH), {
    ok: false,
    status: 403,
    reason: 'stale',
  });
  assert.equal(restarted.verify('GET', '/data', signer.sign('GET', '/data'), EMPTY_BODY_HASH).ok, true);
});

test('the replay window: out-of-order counters pass once, far-behind ones are refused, memory is bounded', () => {
  const g = new ReplayGuard(30_000, 4);
  const t = 0;
  assert.equal(g.accept('inc', 10, t), true);
  assert.equal(g.accept('inc', 7, t), true, 'late but unseen');
  assert.equal(g.accept('inc', 7, t), false);
  assert.equal(g.accept('inc', 10, t), false);
  assert.equal(g.accept('inc', 5000, t), true);
  assert.equal(g.accept('inc', 904, t), false, '4096 behind: out of the window');
  assert.equal(g.accept('inc', 905, t), true, 'just inside the window');
  assert.equal(g.accept('inc', 905, t), false);
  // Each incarnation (sender process) is tracked on its own; at most 4 here.
  for (let i = 0; i < 10; i++) assert.equal(g.accept(`p${i}`, 1, t + i), true);
  assert.ok(g.size <= 4);
  // Idle incarnations are dropped once their requests are all stale.
  const h = new ReplayGuard(1000, 100);
  h.accept('x', 1, 0);
  h.accept('y', 1, 5000);
  assert.equal(h.size, 1);
});

test('secret files: created 0600, parsed, rotated in three steps; keys sign with the first and accept all', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-secret-test-'));
  try {
    const file = path.join(dir, 'sub', 'cluster.secret');
    createSecretFile(file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /^[0-9a-f]{64}\n$/);
    assert.throws(() => createSecretFile(file), /EEXIST/);
    assert.equal(ensureSecretFile(file), file, 'kept as is');
    const first = loadSecretFile(file);
    assert.deepEqual(first.warnings, []);
    const old = first.keys.fingerprints()[0];

    const signedByOld = new RequestSigner(first.keys, 'n').sign('GET', '/x');
    const added = rotateSecretFile(file, 'add');
    assert.equal(added[0], old, 'still signing with the old secret');
    const mid = loadSecretFile(file).keys;
    assert.equal(new RequestVerifier(mid).verify('GET', '/x', signedByOld, EMPTY_BODY_HASH).ok, true);
    const promoted = rotateSecretFile(file, 'promote');
    assert.equal(promoted[1], old);
    assert.notEqual(promoted[0], old);
    const next = loadSecretFile(file).keys;
    const signedByNew = new RequestSigner(next, 'n').sign('GET', '/x');
    // A node still on [old, new] accepts the new signatures; one on [new, old] the old ones.
    assert.equal(new RequestVerifier(mid).verify('GET', '/x', signedByNew, EMPTY_BODY_HASH).ok, true);
    assert.equal(
      new RequestVerifier(next).verify(
        'GET',
        '/x',
        new RequestSigner(first.keys, 'n').sign('GET', '/x'),
        EMPTY_BODY_HASH,
      ).ok,
      true,
    );
    assert.deepEqual(rotateSecretFile(file, 'retire'), [promoted[0]]);
    const last = loadSecretFile(file).keys;
    assert.equal(new RequestVerifier(last).verify('GET', '/x', signedByOld, EMPTY_BODY_HASH).ok, false);

    writeFileSync(path.join(dir, 'bad'), 'not hex\n', { mode: 0o644 });
    assert.throws(() => loadSecretFile(path.join(dir, 'bad')), PeerAuthError);
    writeFileSync(path.join(dir, 'open'), `# comment\n${'ab'.repeat(32)}\n`, { mode: 0o644 });
    assert.match(loadSecretFile(path.join(dir, 'open')).warnings.join(), /readable by others/);
    assert.throws(() => loadSecretFile(path.join(dir, 'missing')), /cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('who may run without a secret: loopback only, or --insecure', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.5', 'example.com', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  assert.equal(resolvePeerKeys({ listenHosts: ['127.0.0.1', '::1'] }).keys, undefined);
  assert.match(resolvePeerKeys({ listenHosts: ['127.0.0.1'] }).warnings.join(), /not authenticated/);
  assert.throws(() => resolvePeerKeys({ listenHosts: ['127.0.0.1', '0.0.0.0'] }), /--cluster-secret-file/);
  const insecure = resolvePeerKeys({ listenHosts: ['0.0.0.0'], insecure: true });
  assert.equal(insecure.keys, undefined);
  assert.match(insecure.warnings.join(), /INSECURE/);
});
