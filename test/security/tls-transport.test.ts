/**
 * Mutual TLS on the raft peer transport: nodes with certificates signed by the cluster CA talk; a node whose
 * certificate another CA signed, a client without a certificate, a user's client certificate (signed by the
 * cluster CA, but not a node certificate) and plain TCP are all refused, and each refusal is counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createCa, issueClientCert, issueNodeCert, type CertKeyPair } from '../../src/net/certs.js';
import { PeerKeys } from '../../src/net/peer-auth.js';
import { TcpTransport } from '../../src/net/transport.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { freePort, msg, sleep, waitFor } from '../net/helpers.js';

const KEYS = PeerKeys.fromBuffers([Buffer.alloc(32, 0x3c)]);

function refused(t: TcpTransport, reason: string): number {
  return t
    .stats()
    .authRefused.filter((r) => r.reason === reason)
    .reduce((n, r) => n + r.count, 0);
}

/** Connects a raw TLS client; resolves once the transport closed the connection (or it never opened). */
async function rawTls(port: number, opts: tls.ConnectionOptions): Promise<{ gotChallenge: boolean }> {
  return new Promise((resolve) => {
    let gotChallenge = false;
    const s = tls.connect({ host: '127.0.0.1', port, ...opts });
    s.on('data', () => {
      gotChallenge = true;
    });
    s.on('error', () => {});
    s.on('close', () => resolve({ gotChallenge }));
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

test('peer transport with mutual TLS', async (t) => {
  const ca = await createCa();
  const otherCa = await createCa({ commonName: 'not the cluster CA' });
  const certs = new Map<NodeId, CertKeyPair>();
  for (const id of [1, 2, 3]) certs.set(id, await issueNodeCert(ca, { name: `node-${id}` }));
  const stranger = await issueNodeCert(otherCa, { name: 'node-3' });
  const user = await issueClientCert(ca, { name: 'alice' });

  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = new Map<NodeId, { host: string; port: number }>(
    ports.map((port, i) => [i + 1, { host: '127.0.0.1', port }]),
  );
  const inbox = new Map<NodeId, Message[]>([
    [1, []],
    [2, []],
    [3, []],
  ]);
  const start = async (id: NodeId, pair: CertKeyPair, trust: CertKeyPair): Promise<TcpTransport> => {
    const tr = await TcpTransport.listen({
      id,
      host: '127.0.0.1',
      port: ports[id - 1] as number,
      peers,
      keys: KEYS,
      tls: { cert: pair.cert, key: pair.key, ca: trust.cert },
      backoffMinMs: 20,
      backoffMaxMs: 100,
    });
    tr.onMessage((m) => inbox.get(id)?.push(m));
    return tr;
  };
  const n1 = await start(1, certs.get(1) as CertKeyPair, ca);
  const n2 = await start(2, certs.get(2) as CertKeyPair, ca);
  // Node 3 holds the cluster secret but its certificate (and the CA it trusts) is another CA's.
  const n3 = await start(3, stranger, otherCa);
  try {
    await t.test('nodes with certificates signed by the cluster CA exchange messages both ways', async () => {
      n1.send([msg('app', 1, 2, { index: 7 })]);
      n2.send([msg('app-resp', 2, 1, { index: 7 })]);
      await waitFor(() => (inbox.get(2)?.length ?? 0) > 0 && (inbox.get(1)?.length ?? 0) > 0, 5000, 'delivery');
      assert.equal(inbox.get(2)?.[0]?.index, 7);
      assert.equal(n1.stats().peers.find((p) => p.id === 2)?.connected, true);
    });

    await t.test('a node whose certificate another CA signed can neither connect nor be connected to', async () => {
      n3.send([msg('app', 3, 1), msg('app', 3, 2)]);
      n1.send([msg('app', 1, 3)]);
      await waitFor(() => refused(n1, 'tls') > 0 && refused(n3, 'tls') > 0, 5000, 'tls refusals');
      await sleep(300);
      assert.equal(
        inbox.get(1)?.some((m) => m.from === 3),
        false,
      );
      assert.equal(inbox.get(3)?.length, 0);
      assert.equal(n3.stats().peers.find((p) => p.id === 1)?.connected, false);
      assert.equal(n1.stats().peers.find((p) => p.id === 3)?.connected, false);
      assert.ok((n1.stats().peers.find((p) => p.id === 3)?.handshakeFailures ?? 0) > 0);
    });

    await t.test('a TLS client without a certificate is refused before any frame', async () => {
      const before = refused(n1, 'tls');
      const r = await rawTls(ports[0] as number, { ca: ca.cert });
      assert.equal(r.gotChallenge, false);
      await waitFor(() => refused(n1, 'tls') > before, 3000, 'refusal counted');
    });

    await t.test("a user's client certificate (cluster CA, no server authentication) is refused", async () => {
      const r = await rawTls(ports[0] as number, { ca: ca.cert, cert: user.cert, key: user.key });
      assert.equal(r.gotChallenge, false);
      await waitFor(() => refused(n1, 'bad-certificate') > 0, 3000, 'bad-certificate refusal');
    });

    await t.test('plain TCP gets no challenge', async () => {
      const s = net.connect(ports[1] as number, '127.0.0.1');
      let data = false;
      s.on('data', () => (data = true));
      s.on('error', () => {});
      s.write(Buffer.from('hello, plain text\n'));
      await new Promise<void>((r) => {
        s.on('close', () => r());
        setTimeout(() => s.destroy(), 2000).unref();
      });
      assert.equal(data, false);
      await waitFor(() => refused(n2, 'tls') > 0, 3000, 'refusal counted');
    });

    await t.test('traffic between the CA-signed nodes still flows', async () => {
      const before = inbox.get(2)?.length ?? 0;
      n1.send([msg('heartbeat', 1, 2)]);
      await waitFor(() => (inbox.get(2)?.length ?? 0) > before, 5000, 'delivery');
    });
  } finally {
    await Promise.all([n1.close(), n2.close(), n3.close()]);
  }
});
