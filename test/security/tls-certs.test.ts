/**
 * Certificates (src/net/certs.ts, `quorumkv certs`): what they say (checked by node:crypto, not by the
 * library that wrote them), file modes, and that they work in real TLS handshakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { CommanderError } from 'commander';
import { buildProgram, type CliIO } from '../../src/cli/program.js';
import {
  EKU_CLIENT_AUTH,
  EKU_SERVER_AUTH,
  createCa,
  ensureClusterCerts,
  issueClientCert,
  issueNodeCert,
  type CertKeyPair,
} from '../../src/net/certs.js';
import { checkExposure, loadTls, tlsFilesFrom } from '../../src/net/tls-config.js';

async function cli(args: string[]): Promise<{ out: string[]; err: string[]; code: number }> {
  const r = { out: [] as string[], err: [] as string[], code: 0 };
  const io: CliIO = {
    out: (l) => r.out.push(l),
    err: (l) => r.err.push(l),
    env: {},
    exit: (c) => {
      r.code = c;
    },
  };
  try {
    await buildProgram(io, { throwOnExit: true }).parseAsync(['node', 'quorumkv', ...args]);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    r.code = err.exitCode;
  }
  return r;
}

/** Handshakes a TLS client with a TLS server; resolves with what each side saw. */
async function handshake(
  server: tls.TlsOptions,
  client: tls.ConnectionOptions,
): Promise<{ ok: boolean; error?: string; serverSawAuthorized?: boolean; peerCn?: string }> {
  const seen: { authorized?: boolean; cn?: string } = {};
  const srv = tls.createServer(server, (s) => {
    seen.authorized = s.authorized;
    const peer = s.getPeerX509Certificate();
    seen.cn = peer === undefined ? undefined : /CN=([^\n]+)/.exec(peer.subject)?.[1];
    s.end('hi');
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise((resolve) => {
      const sock = tls.connect({ host: '127.0.0.1', port, ...client }, () => {
        sock.once('data', () => {
          sock.end();
          resolve({ ok: true, serverSawAuthorized: seen.authorized, peerCn: seen.cn });
        });
      });
      sock.on('error', (err) => resolve({ ok: false, error: err.message }));
    });
  } finally {
    srv.close();
  }
}

let ca: CertKeyPair;
let node: CertKeyPair;
let client: CertKeyPair;
let otherCa: CertKeyPair;

test('certificates', async (t) => {
  ca = await createCa({ commonName: 'test CA' });
  node = await issueNodeCert(ca, { name: 'node-1', hosts: ['10.1.2.3', 'db1.example.com'] });
  client = await issueClientCert(ca, { name: 'alice' });
  otherCa = await createCa({ commonName: 'someone else' });

  await t.test('the CA is a self-signed CA certificate', () => {
    const c = new X509Certificate(ca.cert);
    assert.equal(c.ca, true);
    assert.ok(c.verify(c.publicKey));
    assert.match(c.subject, /CN=test CA/);
  });

  await t.test('a node certificate: signed by the CA, serverAuth + clientAuth, loopback and its hosts', () => {
    const c = new X509Certificate(node.cert);
    const caCert = new X509Certificate(ca.cert);
    assert.equal(c.ca, false);
    assert.ok(c.verify(caCert.publicKey));
    assert.ok(c.checkIssued(caCert));
    assert.ok(!c.verify(new X509Certificate(otherCa.cert).publicKey));
    assert.deepEqual([...c.keyUsage].sort(), [EKU_SERVER_AUTH, EKU_CLIENT_AUTH].sort());
    assert.equal(c.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(c.checkIP('10.1.2.3'), '10.1.2.3');
    assert.equal(c.checkIP('10.1.2.4'), undefined);
    assert.equal(c.checkHost('localhost'), 'localhost');
    assert.equal(c.checkHost('db1.example.com'), 'db1.example.com');
    assert.equal(c.checkHost('db2.example.com'), undefined);
    assert.ok(c.checkPrivateKey(createPrivateKey(node.key)));
    assert.match(c.subject, /CN=node-1/);
    assert.ok(Date.parse(c.validTo) > Date.now() + 300 * 86_400_000);
  });

  await t.test('a client certificate: clientAuth only, CN = the user, no host', () => {
    const c = new X509Certificate(client.cert);
    assert.ok(c.verify(new X509Certificate(ca.cert).publicKey));
    assert.deepEqual([...c.keyUsage], [EKU_CLIENT_AUTH]);
    assert.match(c.subject, /CN=alice/);
    assert.equal(c.checkHost('localhost'), undefined);
    assert.equal(c.checkIP('127.0.0.1'), undefined);
  });

  await t.test('bad names and hosts are refused', async () => {
    await assert.rejects(issueClientCert(ca, { name: 'a,b' }), /--?name|expected/);
    await assert.rejects(issueNodeCert(ca, { name: 'n', hosts: ['bad host'] }), /neither an IP/);
    await assert.rejects(issueNodeCert({ cert: ca.cert, key: otherCa.key }, { name: 'n' }), /does not belong/);
  });

  await t.test('TLS: a client trusting the CA accepts the node; one trusting another CA refuses it', async () => {
    const server = { cert: node.cert, key: node.key };
    assert.equal((await handshake(server, { ca: ca.cert })).ok, true);
    assert.equal((await handshake(server, { ca: ca.cert, servername: 'localhost' })).ok, true);
    const other = await handshake(server, { ca: otherCa.cert });
    assert.equal(other.ok, false);
    assert.match(other.error ?? '', /self[- ]signed|unable to verify|certificate/i);
    // Host name checked: the node is not valid for db2.example.com.
    const wrongHost = await handshake(server, { ca: ca.cert, servername: 'db2.example.com' });
    assert.equal(wrongHost.ok, false);
    assert.match(wrongHost.error ?? '', /altnames|Hostname/i);
  });

  await t.test('mutual TLS: the server sees a verified client certificate and its CN', async () => {
    const server = { cert: node.cert, key: node.key, ca: ca.cert, requestCert: true, rejectUnauthorized: false };
    const r = await handshake(server, { ca: ca.cert, cert: client.cert, key: client.key });
    assert.equal(r.ok, true);
    assert.equal(r.serverSawAuthorized, true);
    assert.equal(r.peerCn, 'alice');
    const stranger = await issueClientCert(otherCa, { name: 'mallory' });
    const r2 = await handshake(server, { ca: ca.cert, cert: stranger.cert, key: stranger.key });
    assert.equal(r2.serverSawAuthorized, false);
    // A server that requires a certificate refuses a client without one.
    const strict = { ...server, rejectUnauthorized: true };
    const r3 = await handshake(strict, { ca: ca.cert });
    assert.equal(r3.ok, false);
  });
});

test('quorumkv certs ca|node|client write the files, keys with mode 0600', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-certs-'));
  try {
    const caDir = path.join(dir, 'ca');
    assert.equal((await cli(['certs', 'ca', '--out', caDir])).code, 0);
    assert.equal(statSync(path.join(caDir, 'ca-key.pem')).mode & 0o777, 0o600);
    // The CA is not overwritten by accident.
    const again = await cli(['certs', 'ca', '--out', caDir]);
    assert.equal(again.code, 1);
    assert.match(again.err.join('\n'), /already exist.*--force/);

    const n = await cli([
      'certs',
      'node',
      '--ca',
      caDir,
      '--name',
      'node-2',
      '--host',
      'kv2.internal,192.0.2.7',
      '--out',
      path.join(dir, 'n2'),
    ]);
    assert.equal(n.code, 0, n.err.join('\n'));
    assert.match(n.out.join('\n'), /--tls-cert .*node-2\.pem --tls-key .*node-2-key\.pem --tls-ca .*ca\.pem/);
    const cert = new X509Certificate(readFileSync(path.join(dir, 'n2', 'node-2.pem')));
    assert.equal(cert.checkHost('kv2.internal'), 'kv2.internal');
    assert.equal(cert.checkIP('192.0.2.7'), '192.0.2.7');
    assert.ok(cert.verify(new X509Certificate(readFileSync(path.join(caDir, 'ca.pem'))).publicKey));
    assert.equal(statSync(path.join(dir, 'n2', 'node-2-key.pem')).mode & 0o777, 0o600);
    assert.ok(existsSync(path.join(dir, 'n2', 'ca.pem')));
    assert.ok(!existsSync(path.join(dir, 'n2', 'ca-key.pem')));

    const c = await cli(['certs', 'client', '--ca', caDir, '--name', 'bob', '--out', path.join(dir, 'bob')]);
    assert.equal(c.code, 0, c.err.join('\n'));
    const cc = new X509Certificate(readFileSync(path.join(dir, 'bob', 'bob.pem')));
    assert.match(cc.subject, /CN=bob/);
    assert.deepEqual([...cc.keyUsage], [EKU_CLIENT_AUTH]);

    const missing = await cli(['certs', 'client', '--ca', path.join(dir, 'nope'), '--name', 'x', '--out', dir]);
    assert.equal(missing.code, 1);
    assert.match(missing.err.join('\n'), /does not exist.*certs ca/);
    for (const sub of ['ca', 'node', 'client']) {
      const h = await cli(['certs', sub, '--help']);
      assert.match(h.out.join('\n'), /--out/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster certificates are made once and reused', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-certs-'));
  try {
    const a = await ensureClusterCerts(dir, [1, 2, 3]);
    const first = readFileSync(a.nodes.get(2)?.cert as string, 'utf8');
    const b = await ensureClusterCerts(dir, [1, 2, 3]);
    assert.equal(readFileSync(b.nodes.get(2)?.cert as string, 'utf8'), first);
    // A new host: the node certificates are re-issued by the same CA.
    const c = await ensureClusterCerts(dir, [1, 2, 3], ['10.9.8.7']);
    const cert = new X509Certificate(readFileSync(c.nodes.get(2)?.cert as string));
    assert.equal(cert.checkIP('10.9.8.7'), '10.9.8.7');
    assert.ok(cert.verify(new X509Certificate(readFileSync(c.ca)).publicKey));
    assert.equal(statSync(c.caKey).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadTls checks the files: key, CA (a bundle of several during a rotation); the exposure rule', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-tlsload-'));
  try {
    const oldCa = await createCa({ commonName: 'old' });
    const newCa = await createCa({ commonName: 'new' });
    const pair = await issueNodeCert(newCa, { name: 'n1' });
    const other = await issueNodeCert(oldCa, { name: 'n2' });
    const f = (name: string, text: string) => {
      const p = path.join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    const cert = f('n1.pem', pair.cert);
    const key = f('n1-key.pem', pair.key);
    assert.ok(loadTls({ cert, key, ca: f('new.pem', newCa.cert) }).ca);
    assert.ok(loadTls({ cert, key, ca: f('bundle.pem', oldCa.cert + newCa.cert) }).ca);
    assert.throws(() => loadTls({ cert, key, ca: f('old.pem', oldCa.cert) }), /not signed by the CA/);
    assert.throws(() => loadTls({ cert, key: f('n2-key.pem', other.key) }), /does not belong/);
    assert.throws(() => loadTls({ cert: path.join(dir, 'nope.pem'), key }), /cannot read the TLS certificate/);
    assert.throws(() => tlsFilesFrom({ cert }), /go together/);
    assert.throws(() => tlsFilesFrom({ ca: cert }), /without a certificate and key/);
    assert.equal(tlsFilesFrom({}), undefined);

    const tls = { cert, key, ca: cert };
    assert.deepEqual(
      checkExposure({ httpHosts: ['127.0.0.1'], peerHosts: ['::1'], tls: undefined, hasSecret: false }),
      [],
    );
    assert.deepEqual(checkExposure({ httpHosts: ['0.0.0.0'], peerHosts: ['10.0.0.1'], tls, hasSecret: true }), []);
    assert.throws(
      () => checkExposure({ httpHosts: ['0.0.0.0'], tls: undefined, hasSecret: true }),
      /0\.0\.0\.0 \(not loopback\) without TLS on its HTTP API.*--insecure/,
    );
    assert.throws(
      () => checkExposure({ httpHosts: ['127.0.0.1'], peerHosts: ['10.0.0.1'], tls: { cert, key }, hasSecret: true }),
      /10\.0\.0\.1 .*without mutual TLS between nodes/,
    );
    assert.throws(() => checkExposure({ httpHosts: ['0.0.0.0'], tls, hasSecret: false }), /without a peer credential/);
    const warned = checkExposure({ httpHosts: ['0.0.0.0'], tls: undefined, hasSecret: false, insecure: true });
    assert.match(warned.join(), /INSECURE.*TLS on its HTTP API and a peer credential/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
