/**
 * TLS with real processes: an HTTPS raft cluster (LocalCluster with TLS: HTTPS API, forwarding over HTTPS,
 * mutual TLS between peers), the Client and the CLI verifying it with the CA and refusing a server the CA did
 * not sign; `quorumkv cluster --tls` end to end; the quorum and eventual modes over HTTPS; the non-loopback
 * rule of `serve`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import { Client } from '../../src/client/client.js';
import { KvError } from '../../src/client/errors.js';
import { createCa, ensureClusterCerts, issueNodeCert } from '../../src/net/certs.js';
import { ensureSecretFile } from '../../src/net/peer-auth.js';
import { freeNodePort } from '../../src/net/ports.js';
import { spawnEventualCluster, spawnQuorumCluster } from '../../src/modes/common/cluster.js';
import { LocalCluster } from '../../src/server/local-cluster.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Run {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}

function cli(args: readonly string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Run {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function run(
  args: readonly string[],
  opts: { cwd?: string } = {},
): Promise<{ code: number | null; out: string }> {
  const r = cli(args, opts);
  const code = await r.exited;
  return { code, out: r.output() };
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(r: Run): Promise<void> {
  if (r.child.exitCode === null && r.child.signalCode === null && r.child.pid !== undefined) {
    process.kill(r.child.pid, 'SIGTERM');
  }
  await r.exited;
}

test('an HTTPS raft cluster: clients verify it with the CA, forwarding works, other servers are refused', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-tls-raft-'));
  const c = await LocalCluster.start({ nodes: 3, dir, tls: true, tickMs: 20 });
  try {
    const leader = await c.waitLeader(20_000);
    const followers = c.ids.filter((id) => id !== leader);
    const ca = c.caPem as string;
    const urls = c.ids.map((id) => c.url(id));
    assert.ok(urls.every((u) => u.startsWith('https://')));

    await t.test('the Client with the CA writes through a follower (forwarded over HTTPS) and reads', async () => {
      const follower = new Client({ endpoints: [c.url(followers[0] as number)], ca });
      const p = await follower.put('tls/a', { n: 1 });
      assert.equal(p.result, 'created');
      assert.equal(p.endpoint, c.url(followers[0] as number), 'answered by the follower, which forwarded');
      for (const id of c.ids) {
        const r = await new Client({ endpoints: [c.url(id)], ca }).get('tls/a');
        assert.deepEqual(r.value, { n: 1 });
      }
      // Forwarding was used: the follower counts it.
      const metrics = await (await c.fetch(`${c.url(followers[0] as number)}/metrics`)).text();
      assert.match(metrics, /forward/);
    });

    await t.test('the peer transport runs mutual TLS', async () => {
      const st = (await (await c.fetch(`${c.url(leader)}/status`)).json()) as {
        transport?: { peers?: { connected: boolean }[] };
      };
      assert.ok(st.transport?.peers?.every((p) => p.connected));
    });

    await t.test('without the CA, or with another CA, the Client refuses the nodes at once', async () => {
      const other = await createCa({ commonName: 'other' });
      for (const opts of [{}, { ca: other.cert }]) {
        const started = Date.now();
        const err = await new Client({ endpoints: urls, ...opts }).get('tls/a').catch((e: unknown) => e);
        assert.ok(err instanceof KvError, String(err));
        assert.match(err.message, /not trusted/);
        assert.ok(Date.now() - started < 3000, 'no retries until the deadline');
      }
    });

    await t.test(
      'a server whose certificate is not signed by the CA is refused, by the Client and the CLI',
      async () => {
        const other = await createCa({ commonName: 'impostor CA' });
        const impostor = await issueNodeCert(other, { name: 'impostor' });
        const srv = https.createServer({ cert: impostor.cert, key: impostor.key }, (_req, res) => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ result: 'found', value: 'forged' }));
        });
        await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
        const url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
        try {
          const err = await new Client({ endpoints: [url], ca }).get('x').catch((e: unknown) => e);
          assert.ok(err instanceof KvError);
          assert.match(err.message, /not trusted/);
          const caFile = c.tlsFiles?.ca as string;
          const r = await run(['get', 'x', '-e', url, '--cacert', caFile]);
          assert.equal(r.code, 1);
          assert.match(r.out, /not trusted/);
          assert.doesNotMatch(r.out, /forged/);
        } finally {
          srv.close();
        }
      },
    );

    await t.test('the CLI verifies the nodes with --cacert, QKV_CACERT or the cluster file', async () => {
      const caFile = c.tlsFiles?.ca as string;
      const e = urls.join(',');
      let r = await run(['put', 'tls/cli', '"v1"', '-e', e, '--cacert', caFile]);
      assert.equal(r.code, 0, r.out);
      r = await run(['get', 'tls/cli', '-e', e]);
      assert.equal(r.code, 1, 'no CA: refused');
      assert.match(r.out, /not trusted/);
      const env = cli(['get', 'tls/cli', '-e', e], { env: { QKV_CACERT: caFile } });
      assert.equal(await env.exited, 0, env.output());
      assert.equal(env.output().trim(), '"v1"');
      // A local cluster's file names the CA (relative to the file); found by --cluster-file or in ./data.
      mkdirSync(path.join(dir, 'data'), { recursive: true });
      writeFileSync(
        path.join(dir, 'data', 'cluster.json'),
        JSON.stringify({
          tls: { ca: path.relative(path.join(dir, 'data'), caFile) },
          nodes: c.ids.map((id) => ({ id, peer: `127.0.0.1:1`, http: c.url(id).replace('https://', '') })),
        }),
      );
      r = await run(['get', 'tls/cli', '-e', e, '--cluster-file', path.join(dir, 'data', 'cluster.json')]);
      assert.equal(r.code, 0, r.out);
      r = await run(['get', 'tls/cli', '-e', e], { cwd: dir });
      assert.equal(r.code, 0, r.out);
      // Without -e, the endpoints are the cluster file's https:// URLs.
      r = await run(['get', 'tls/cli'], { cwd: dir });
      assert.equal(r.code, 0, r.out);
      assert.equal(r.out.trim(), '"v1"');
    });
  } finally {
    await c.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A fetch trusting `caFile`. */
function fetchWithCa(
  caFile: string,
): (url: string, init?: Parameters<typeof undiciFetch>[1]) => ReturnType<typeof undiciFetch> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(caFile) } });
  return (url, init = {}) => undiciFetch(url, { ...init, dispatcher });
}

test('`quorumkv cluster --tls` end to end: certificates made once, https URLs, the CLI finds the CA', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-tls-cluster-'));
  const data = path.join(dir, 'data');
  const http = await freeRange(3);
  const peer = await freeRange(3);
  const args = ['cluster', '--tls', '--base-http-port', String(http), '--base-peer-port', String(peer), '--data', data];
  let node = cli(args, { cwd: dir });
  try {
    await waitFor(() => node.output().includes('cluster ready: '), 40_000, 'ready');
    const urls = [0, 1, 2].map((i) => `https://127.0.0.1:${http + i}`);
    assert.match(node.output(), new RegExp(`cluster ready: ${urls.join(',')}`));
    const file = JSON.parse(readFileSync(path.join(data, 'cluster.json'), 'utf8')) as {
      tls: { ca: string };
      nodes: { tls: { cert: string; key: string } }[];
    };
    assert.equal(file.tls.ca, 'tls/ca.pem');
    assert.deepEqual(file.nodes[1]?.tls, { cert: 'tls/node-2.pem', key: 'tls/node-2-key.pem' });
    const caBefore = readFileSync(path.join(data, 'tls', 'ca.pem'), 'utf8');
    const certBefore = readFileSync(path.join(data, 'tls', 'node-1.pem'), 'utf8');

    // From the directory holding ./data, the CLI needs no flag at all.
    let r = await run(['put', 'k', '"over tls"'], { cwd: dir });
    assert.equal(r.code, 0, r.out);
    r = await run(['get', 'k', '-e', urls[2] as string, '--cluster-file', path.join(data, 'cluster.json')]);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), '"over tls"');
    const res = await fetchWithCa(path.join(data, 'tls', 'ca.pem'))(`${urls[0]}/health`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();

    // Restarted: the same CA and certificates, the data still there.
    node.child.kill('SIGINT');
    assert.equal(await node.exited, 0);
    node = cli(args, { cwd: dir });
    await waitFor(() => node.output().includes('cluster ready: '), 40_000, 'ready again');
    assert.equal(readFileSync(path.join(data, 'tls', 'ca.pem'), 'utf8'), caBefore);
    assert.equal(readFileSync(path.join(data, 'tls', 'node-1.pem'), 'utf8'), certBefore);
    r = await run(['get', 'k'], { cwd: dir });
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), '"over tls"');
  } finally {
    await stop(node);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quorum and eventual modes over HTTPS', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-tls-modes-'));
  const files = await ensureClusterCerts(path.join(dir, 'tls'), [1]);
  const tls = { ...(files.nodes.get(1) as { cert: string; key: string }), ca: files.ca };
  const f = fetchWithCa(files.ca);
  const json = { 'content-type': 'application/json' };
  const q = await spawnQuorumCluster({ basePort: await freeRange(3), followers: 2, tls });
  try {
    const [leader, f1, f2] = q.nodes.map((n) => n.url);
    assert.ok(leader?.startsWith('https://'));
    const w = await f(`${leader}/write`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ key: 'a', value: 1 }),
    });
    const wb = (await w.json()) as { acks?: number };
    assert.equal(w.status, 200);
    assert.equal(wb.acks, 2, 'both followers acknowledged over https');
    for (const u of [f1, f2]) {
      const r = (await (await f(`${u}/read?key=a`)).json()) as { value?: unknown };
      assert.equal(r.value, 1);
    }
  } finally {
    await q.stop();
  }
  const e = await spawnEventualCluster({ basePort: await freeRange(3), tls, args: ['--anti-entropy-interval', '200'] });
  try {
    const [r1, , r3] = e.nodes.map((n) => n.url);
    const p = await f(`${r1}/kvs/b`, { method: 'PUT', headers: json, body: JSON.stringify({ value: 'x' }) });
    assert.equal(p.status, 201);
    await p.arrayBuffer();
    const deadline = Date.now() + 10_000;
    let got: unknown;
    while (Date.now() < deadline) {
      const r = await f(`${r3}/kvs/b`);
      got = ((await r.json()) as { value?: unknown }).value;
      if (got === 'x') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(got, 'x', 'replicated over https');
  } finally {
    await e.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve beyond loopback: refused without TLS and a peer credential, starts with them or --insecure', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-tls-exposed-'));
  const secret = ensureSecretFile(path.join(dir, 'cluster.secret'));
  const files = await ensureClusterCerts(path.join(dir, 'tls'), [1]);
  const n1 = files.nodes.get(1) as { cert: string; key: string };
  const [http, peerPort] = [await freeNodePort(), await freeNodePort()];
  const serve = (extra: readonly string[], data: string, peerHost = '127.0.0.1') =>
    cli([
      'serve',
      '--id',
      '1',
      '--http',
      `0.0.0.0:${http}`,
      '--peers',
      `1=${peerHost}:${peerPort}`,
      '--data-dir',
      path.join(dir, data),
      '--tick-ms',
      '20',
      ...extra,
    ]);
  try {
    // Neither TLS nor a secret: both named, and why.
    let r = serve([], 'a');
    assert.equal(await r.exited, 1);
    assert.match(r.output(), /refusing to start: this node listens on 0\.0\.0\.0 \(not loopback\) without TLS/);
    assert.match(r.output(), /clear text/);
    assert.match(r.output(), /--cluster-secret-file/);
    assert.match(r.output(), /--insecure/);
    // A secret but no TLS: still refused.
    r = serve(['--cluster-secret-file', secret], 'b');
    assert.equal(await r.exited, 1);
    assert.match(r.output(), /without TLS on its HTTP API \(--tls-cert and --tls-key\)/);
    assert.doesNotMatch(r.output(), /without a peer credential/);
    // A peer address beyond loopback needs the CA too (mutual TLS between nodes).
    r = serve(['--cluster-secret-file', secret, '--tls-cert', n1.cert, '--tls-key', n1.key], 'c', '0.0.0.0');
    assert.equal(await r.exited, 1);
    assert.match(r.output(), /without mutual TLS between nodes/);
    // --insecure: starts, with a warning.
    r = serve(['--insecure'], 'd');
    await waitFor(() => r.output().includes('serving on http://0.0.0.0'), 20_000, 'insecure node');
    assert.match(r.output(), /INSECURE/);
    await stop(r);
    // TLS, the CA and the secret: starts on https.
    r = serve(
      ['--cluster-secret-file', secret, '--tls-cert', n1.cert, '--tls-key', n1.key, '--tls-ca', files.ca],
      'e',
      '0.0.0.0',
    );
    await waitFor(() => r.output().includes(`serving on https://0.0.0.0:${http}`), 20_000, 'tls node');
    const res = await fetchWithCa(files.ca)(`https://127.0.0.1:${http}/health`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await stop(r);
    // The quorum mode follows the same rule.
    const q = await run([
      'serve',
      '--mode',
      'quorum',
      '--',
      '--host',
      '0.0.0.0',
      '--port',
      String(http),
      '--followers',
      '127.0.0.1:1',
    ]);
    assert.equal(q.code, 1);
    assert.match(q.out, /refusing to start: .*without TLS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A base port such that base .. base+n-1 are free now (below the ephemeral range). */
async function freeRange(n: number): Promise<number> {
  const net = await import('node:net');
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await free(base + i);
    if (ok) return base;
  }
  throw new Error('no free port range');
}
