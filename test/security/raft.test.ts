/**
 * Peer credentials in raft mode: follower → leader forwarding over HTTP and the peer transport's port refuse
 * requests and connections without a valid credential, count them, log them once, and change nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeHelloBody, encodeMessageBody, joinFrames } from '../../src/net/codec.js';
import { PeerKeys, loadSecretFile } from '../../src/net/peer-auth.js';
import { LocalCluster } from '../../src/server/local-cluster.js';
import { handshakeAs, msg, rawPeer } from '../net/helpers.js';
import { FAST } from '../server/helpers.js';
import {
  CREDENTIAL_INVALID,
  CREDENTIAL_REQUIRED,
  eventually,
  refusals,
  send,
  signerFor,
  skewedSigner,
  wrongSigner,
} from './helpers.js';

const FORWARDED = 'x-quorumkv-forwarded';

/**
 * Every node's own copy of the data (stale reads: no forwarding, no ReadIndex): each key with its value,
 * version and revision. (Not the log position: an election on a loaded machine appends a no-op entry.)
 */
async function snapshot(c: LocalCluster): Promise<unknown[]> {
  return Promise.all(
    c.ids.map(async (id) => ({
      id,
      keys: (await send(`${c.url(id)}/kvs?prefix=&consistency=stale`, 'GET', undefined)).body.keys,
    })),
  );
}

/** Slower elections than the server tests' FAST: a leader change would only blur this test. */
const TIMING = { ...FAST, tickMs: 50, electionTicks: 20 };

test('raft: forwarded requests need a valid signature; the peer port needs the handshake; nothing changes', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-sec-raft-'));
  const c = await LocalCluster.start({ nodes: 3, dir, ...TIMING, logLevel: 'warn' });
  try {
    const leader = await c.waitLeader(15_000);
    const lurl = c.url(leader);
    for (const k of ['a', 'b', 'c']) {
      const r = await send(`${lurl}/kvs/${k}`, 'PUT', JSON.stringify({ value: `v-${k}` }));
      assert.equal(r.status, 201);
    }
    // Followers forward with their signature: a client write through a follower works.
    const follower = c.ids.find((id) => id !== leader) as number;
    assert.equal((await send(`${c.url(follower)}/kvs/d`, 'PUT', JSON.stringify({ value: 'v-d' }))).status, 201);
    await eventually(async () => {
      const s = await snapshot(c);
      return s.every((n) => (n as { keys?: unknown[] }).keys?.length === 4);
    });
    const before = await snapshot(c);

    // A forwarded write from outside: no, a wrong, a stale and a tampered credential.
    const body = JSON.stringify({ value: 'evil' });
    const forged = (sign?: (m: string, p: string, b?: string) => Record<string, string>, b = body) =>
      send(`${lurl}/kvs/a`, 'PUT', b, { [FORWARDED]: String(follower), ...(sign?.('PUT', '/kvs/a', b) ?? {}) });
    let r = await forged();
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, CREDENTIAL_REQUIRED);
    r = await forged(wrongSigner());
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, CREDENTIAL_INVALID);
    r = await forged(skewedSigner(c.secretFile, -120_000));
    assert.equal(r.status, 403);
    const good = signerFor(c.secretFile, String(follower));
    const headers = good('PUT', '/kvs/a', JSON.stringify({ value: 'other' }));
    r = await send(`${lurl}/kvs/a`, 'PUT', body, { [FORWARDED]: String(follower), ...headers });
    assert.equal(r.status, 403, 'a signature over another body');
    // A credential on a public route is checked too.
    r = await send(`${lurl}/kvs/a`, 'PUT', body, wrongSigner()('PUT', '/kvs/a', body));
    assert.equal(r.status, 403);
    // The admin routes of a loopback-only node stay open to local tools (nothing to assert here but the
    // status): /status is public.
    assert.equal((await send(`${lurl}/status`, 'GET', undefined)).status, 200);

    // Raw connections to the leader's peer port.
    const port = c.raftPorts.get(leader) as number;
    const keys = loadSecretFile(c.secretFile).keys;
    // No MAC (zeros), a wrong secret, a hello addressed to another node.
    for (const attempt of [
      await handshakeAs(port, follower, leader, undefined),
      await handshakeAs(port, follower, leader, PeerKeys.fromBuffers([Buffer.alloc(32, 7)])),
      await handshakeAs(port, follower, leader === 1 ? 2 : 1, keys),
    ]) {
      assert.equal(attempt.answer, 'closed');
      await attempt.peer.closed;
    }
    // A message without any handshake; the old (version 2) hello.
    for (const bytes of [
      joinFrames([encodeMessageBody(msg('heartbeat', follower, leader, { term: 99 }))]),
      joinFrames([Buffer.from([0, 2, follower, 0, 0, 0])]),
    ]) {
      const p = await rawPeer(port);
      p.writeRaw(bytes);
      await p.closed;
    }
    // A replayed handshake: a secret holder's hello, captured and sent again on a new connection.
    const legit = await handshakeAs(port, follower, leader, keys);
    assert.ok(legit.answer !== 'closed' && legit.answer.kind === 'welcome');
    legit.peer.destroy();
    const again = await rawPeer(port);
    assert.equal((await again.next()).kind, 'challenge');
    again.write([legit.hello]);
    await again.closed;
    // A connection that never says hello is dropped too (after the hello timeout): not waited for here.

    const n = await refusals(lurl);
    assert.equal(n.get('http/missing'), 1);
    assert.equal(n.get('http/bad-signature'), 3);
    assert.equal(n.get('http/stale'), 1);
    assert.equal(n.get('transport/bad-signature'), 4); // no MAC, wrong secret, wrong node, replayed
    assert.equal(n.get('transport/missing'), 1);
    assert.equal(n.get('transport/malformed'), 1);

    // The cluster is as it was, and still works.
    assert.deepEqual(await snapshot(c), before);
    assert.equal((await send(`${c.url(follower)}/kvs/a`, 'GET', undefined)).body.value, 'v-a');

    // A captured forwarded write, replayed after the key moved on, is refused (it would revert the key).
    const captured = good('PUT', '/kvs/e', JSON.stringify({ value: 'old' }));
    const fwd = { [FORWARDED]: String(follower), ...captured };
    assert.equal((await send(`${lurl}/kvs/e`, 'PUT', JSON.stringify({ value: 'old' }), fwd)).status, 201);
    assert.equal((await send(`${lurl}/kvs/e`, 'PUT', JSON.stringify({ value: 'new' }))).status, 200);
    r = await send(`${lurl}/kvs/e`, 'PUT', JSON.stringify({ value: 'old' }), fwd);
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, CREDENTIAL_INVALID);
    assert.equal((await send(`${lurl}/kvs/e`, 'GET', undefined)).body.value, 'new');
    assert.equal((await refusals(lurl)).get('http/replayed'), 1);

    // Each source is logged once (the leader's log, where every refusal above came from 127.0.0.1).
    await eventually(async () => (c.stdout.get(leader) ?? '').includes('peer auth: refused http'), 5000, 'log');
    const log = c.stdout.get(leader) ?? '';
    assert.equal(log.split('peer auth: refused http from').length - 1, 1, log);
    assert.equal(log.split('peer auth: refused transport from').length - 1, 1, log);
  } finally {
    await c.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('raft: a node holding another secret cannot join; the transport refuses it and the cluster is unaffected', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-sec-raft2-'));
  const c = await LocalCluster.start({ nodes: 3, dir, ...TIMING });
  try {
    const leader = await c.waitLeader(15_000);
    // A stranger dialling node by node with its own secret: its hellos are refused.
    const strangerKeys = PeerKeys.fromBuffers([Buffer.alloc(32, 1)]);
    for (const id of c.ids) {
      const h = await handshakeAs(c.raftPorts.get(id) as number, 9, id, strangerKeys);
      assert.equal(h.answer, 'closed');
    }
    const s = net.connect(c.raftPorts.get(leader) as number, '127.0.0.1');
    s.on('error', () => {});
    s.resume();
    s.write(joinFrames([encodeHelloBody({ from: 9, to: leader, nonce: Buffer.alloc(32), mac: Buffer.alloc(32) })]));
    await new Promise<void>((resolve) => s.on('close', () => resolve()));
    await c.waitLeader(10_000);
    for (const id of c.ids) {
      const n = await refusals(c.url(id));
      assert.ok((n.get('transport/bad-signature') ?? 0) >= 1, `node ${id}`);
    }
  } finally {
    await c.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
