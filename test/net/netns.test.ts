/**
 * Separate hosts, for real: each node of a 3-node raft cluster runs in its own network namespace with its own
 * address on a bridge this test creates (veth pairs), with what a real deployment uses beyond loopback — a
 * cluster secret, node certificates from `quorumkv certs` and mutual TLS. Puts and gets go through every
 * node; then nftables in the leader's namespace cuts it off from the other two: the majority elects a new
 * leader and serves, the isolated node answers 503 (never a stale read, never an accepted write); after the
 * heal every node serves the majority's writes and not the refused one. Everything created (namespaces,
 * bridge, veths, nftables tables, processes) is removed, also on failure.
 *
 * Needs root and the `ip` and `nft` commands (Debian: apt-get install iproute2 nftables); skipped otherwise.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetch as undiciFetch, type Agent } from 'undici';
import { Client } from '../../src/client/client.js';
import { tlsAgent } from '../../src/net/tls-config.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const IDS = [1, 2, 3] as const;

function has(cmd: string): boolean {
  return spawnSync(cmd, ['-V'], { stdio: 'ignore' }).status === 0;
}

function whyNot(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, a bridge, nftables)';
  if (!has('ip')) return 'needs the ip command (apt-get install iproute2)';
  if (!has('nft')) return 'needs the nft command (apt-get install nftables)';
  // Root in a container may still lack the right to make namespaces, or nftables in them: try once.
  const probe = `qkvprobe${randomBytes(2).toString('hex')}`;
  try {
    const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
    if (add.status !== 0) return `cannot create a network namespace here: ${add.stderr.trim()}`;
    const nft = spawnSync('ip', ['netns', 'exec', probe, 'nft', 'list', 'tables'], { encoding: 'utf8' });
    if (nft.status !== 0) return `nftables does not work in a network namespace here: ${nft.stderr.trim()}`;
    return undefined;
  } finally {
    spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  }
}

function sh(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quiet(cmd: string, args: readonly string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

const skip = whyNot();
if (skip !== undefined) process.stdout.write(`# netns test skipped: ${skip}\n`);

describe('nodes on separate hosts (network namespaces)', { skip }, () => {
  const tag = randomBytes(2).toString('hex');
  const subnet = `10.77.${randomInt(1, 250)}`;
  const bridge = `qkvbr${tag}`;
  const ns = (id: number) => `qkv${tag}n${id}`;
  const hostVeth = (id: number) => `qkv${tag}h${id}`;
  const ip = (id: number) => `${subnet}.${id}`;
  const hostIp = `${subnet}.254`;
  const table = `qkvcut${tag}`;
  const procs = new Map<number, ChildProcess>();
  const logs = new Map<number, string>();
  let dir: string;
  let agent: Agent;
  let ca: Buffer;
  let created = false;

  const url = (id: number) => `https://${ip(id)}:8080`;

  async function req(id: number, method: string, p: string, body?: unknown, timeoutMs = 6000) {
    const res = await undiciFetch(url(id) + p, {
      method,
      dispatcher: agent,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
  }

  async function status(id: number) {
    try {
      return (await req(id, 'GET', '/status', undefined, 1000)).body as {
        role?: string;
        state?: string;
        term?: number;
      };
    } catch {
      return undefined;
    }
  }

  async function waitLeader(among: readonly number[], timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const id of among) {
        const s = await status(id);
        if (s?.role === 'leader' && s.state === 'serving') return id;
      }
      await sleep(100);
    }
    throw new Error(`no leader among ${among.join(',')}; logs:\n${[...logs.values()].join('\n')}`);
  }

  async function waitReady(ids: readonly number[], timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of ids) {
      for (;;) {
        try {
          if ((await req(id, 'GET', '/ready', undefined, 1000)).status === 200) break;
        } catch {
          // not up yet
        }
        if (Date.now() > deadline) throw new Error(`node ${id} not ready`);
        await sleep(100);
      }
    }
  }

  function cleanup(): void {
    for (const [, p] of procs) if (p.pid !== undefined && p.exitCode === null) quiet('kill', ['-9', String(p.pid)]);
    procs.clear();
    for (const id of IDS) {
      quiet('ip', ['netns', 'exec', ns(id), 'nft', 'delete', 'table', 'inet', table]);
      quiet('ip', ['netns', 'del', ns(id)]); // also removes the namespace's end of the veth pair, and so the pair
      quiet('ip', ['link', 'del', hostVeth(id)]);
    }
    quiet('ip', ['link', 'del', bridge]);
  }

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-netns-'));
    created = true;
    process.once('exit', cleanup);
    // The network: a bridge with an address for this test's client, one namespace per node on a veth pair.
    sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `${hostIp}/24`, 'dev', bridge]);
    sh('ip', ['link', 'set', bridge, 'up']);
    for (const id of IDS) {
      sh('ip', ['netns', 'add', ns(id)]);
      sh('ip', ['link', 'add', hostVeth(id), 'type', 'veth', 'peer', 'name', `qkv${tag}p${id}`]);
      sh('ip', ['link', 'set', `qkv${tag}p${id}`, 'netns', ns(id)]);
      sh('ip', ['link', 'set', hostVeth(id), 'master', bridge]);
      sh('ip', ['link', 'set', hostVeth(id), 'up']);
      const inNs = (...a: string[]) => sh('ip', ['netns', 'exec', ns(id), 'ip', ...a]);
      inNs('link', 'set', `qkv${tag}p${id}`, 'name', 'eth0');
      inNs('addr', 'add', `${ip(id)}/24`, 'dev', 'eth0');
      inNs('link', 'set', 'eth0', 'up');
      inNs('link', 'set', 'lo', 'up');
    }
    // What a real deployment has: a cluster secret, a CA and one certificate per node for its address.
    const cli = (...a: string[]) => sh(process.execPath, [MAIN, ...a]);
    cli('secret', 'create', path.join(dir, 'cluster.secret'));
    cli('certs', 'ca', '--out', path.join(dir, 'tls'));
    for (const id of IDS) {
      cli(
        'certs',
        'node',
        '--ca',
        path.join(dir, 'tls'),
        '--name',
        `node-${id}`,
        '--host',
        ip(id),
        '--out',
        path.join(dir, 'tls'),
      );
    }
    ca = readFileSync(path.join(dir, 'tls', 'ca.pem'));
    agent = tlsAgent({ ca });
    const peers = IDS.map((id) => `${id}=${ip(id)}:7000`).join(',');
    const peerHttp = IDS.map((id) => `${id}=${ip(id)}:8080`).join(',');
    // Configured as the Kubernetes StatefulSet configures its pods (deploy/k8s): environment variables, the
    // id from the host name's ordinal, HTTP and the peer transport listening on every address.
    for (const id of IDS) {
      const env = {
        ...process.env,
        HOSTNAME: `quorumkv-${id - 1}`,
        QKV_PEERS: peers,
        QKV_PEER_HTTP: peerHttp,
        QKV_HTTP: '0.0.0.0:8080',
        QKV_PEER_LISTEN: '0.0.0.0',
        QKV_DATA_DIR: path.join(dir, `node-${id}`),
        QKV_CLUSTER_SECRET_FILE: path.join(dir, 'cluster.secret'),
        QKV_TLS_CERT: path.join(dir, 'tls', `node-${id}.pem`),
        QKV_TLS_KEY: path.join(dir, 'tls', `node-${id}-key.pem`),
        QKV_TLS_CA: path.join(dir, 'tls', 'ca.pem'),
        QKV_REQUEST_TIMEOUT_MS: '1500',
      };
      const args = ['netns', 'exec', ns(id), process.execPath, MAIN, 'serve', '--id-from-hostname'];
      const p = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env });
      logs.set(id, '');
      const keep = (d: Buffer) => logs.set(id, ((logs.get(id) ?? '') + d.toString()).slice(-3000));
      p.stdout.on('data', keep);
      p.stderr.on('data', keep);
      procs.set(id, p);
    }
  });

  after(async () => {
    cleanup();
    await agent?.close();
    if (created) rmSync(dir, { recursive: true, force: true });
    // Nothing of ours is left behind.
    const left = sh('ip', ['-o', 'link', 'show'])
      .split('\n')
      .filter((l) => l.includes(`qkv${tag}`) || l.includes(bridge));
    assert.deepEqual(left, [], 'links left behind');
    const spaces = sh('ip', ['netns', 'list'])
      .split('\n')
      .filter((l) => l.startsWith(`qkv${tag}`));
    assert.deepEqual(spaces, [], 'namespaces left behind');
  });

  test('puts and gets through every node; an isolated leader refuses, the majority serves; heal', async () => {
    const t0 = Date.now();
    const leader = await waitLeader(IDS);
    await waitReady(IDS);
    // The nodes really are apart: each listens on its own address only.
    for (const id of IDS) {
      const s = await req(id, 'GET', '/status');
      assert.equal(s.status, 200);
      assert.equal(s.body.node_id, id);
    }
    // Writes through every node (followers forward to the leader over the bridge), reads from every node.
    for (const id of IDS) {
      const c = new Client({ endpoints: [url(id)], ca });
      await c.put(`via-${id}`, { from: id });
    }
    for (const reader of IDS) {
      const c = new Client({ endpoints: [url(reader)], ca });
      for (const id of IDS) assert.deepEqual((await c.get(`via-${id}`)).value, { from: id });
    }

    // A backup across hosts: asked of a follower, redirected to the leader, signed with the cluster secret
    // (the nodes listen beyond loopback), over TLS.
    const follower = IDS.find((id) => id !== leader) as number;
    const save = sh(process.execPath, [
      MAIN, 'snapshot', 'save', path.join(dir, 'backup.snap'),
      '-e', url(follower), '--cacert', path.join(dir, 'tls', 'ca.pem'),
      '--cluster-secret-file', path.join(dir, 'cluster.secret'),
    ]); // prettier-ignore
    assert.match(save, new RegExp(`kv snapshot at index \\d+ \\(term \\d+\\) from node ${leader} `));
    const unsigned = spawnSync(process.execPath, [MAIN, 'snapshot', 'save', path.join(dir, 'x.snap'), '-e', url(leader), '--cacert', path.join(dir, 'tls', 'ca.pem')], { encoding: 'utf8' }); // prettier-ignore
    assert.equal(unsigned.status, 1);
    assert.match(unsigned.stderr, /Peer credential required/);

    // Cut the leader off from the other two (its link to this test's client stays up).
    const others = IDS.filter((id) => id !== leader);
    const set = `{ ${others.map(ip).join(', ')} }`;
    const nft = (rule: string) => sh('ip', ['netns', 'exec', ns(leader), 'nft', rule]);
    nft(
      `add table inet ${table}; ` +
        `add chain inet ${table} in { type filter hook input priority 0; policy accept; }; ` +
        `add chain inet ${table} out { type filter hook output priority 0; policy accept; }; ` +
        `add rule inet ${table} in ip saddr ${set} drop; ` +
        `add rule inet ${table} out ip daddr ${set} drop`,
    );
    const cutAt = Date.now();
    // A write sent to the isolated node is never acknowledged.
    const refused = await req(leader, 'PUT', '/kvs/refused', { value: 'isolated' });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    const newLeader = await waitLeader(others);
    const electedMs = Date.now() - cutAt;
    const majority = new Client({ endpoints: others.map(url), ca });
    await majority.put('via-1', 'changed during the partition');
    await majority.put('during', true);
    // The isolated node never answers a linearizable read with its stale value, nor accepts a write.
    for (const key of ['via-1', 'during']) {
      const r = await req(leader, 'GET', `/kvs/${key}`);
      assert.equal(r.status, 503, `isolated read of ${key}: ${JSON.stringify(r.body)}`);
      assert.match(String(r.body.error), /No quorum|Not leader/);
    }
    const again = await req(leader, 'PUT', '/kvs/refused', { value: 'isolated again' });
    assert.equal(again.status, 503);
    const ready = await req(leader, 'GET', '/ready');
    assert.equal(ready.status, 503, 'the isolated node is not ready');

    // Heal: the old leader rejoins as a follower and serves the majority's writes; the refused write is nowhere.
    nft(`delete table inet ${table}`);
    await waitReady(IDS);
    for (const id of IDS) {
      const c = new Client({ endpoints: [url(id)], ca });
      assert.equal((await c.get('via-1')).value, 'changed during the partition');
      assert.equal((await c.get('during')).value, true);
      const r = await req(id, 'GET', '/kvs/refused');
      assert.equal(r.status, 404, `node ${id}: the refused write must not exist`);
    }
    const s = await status(leader);
    assert.equal(s?.role, 'follower');
    console.log(
      `netns: leader ${leader} isolated, node ${newLeader} elected in ${electedMs} ms; whole run ${Date.now() - t0} ms`,
    );
  });
});
