import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCluster, type ClusterOptions } from '../../src/cli/cluster.js';
import { Client } from '../../src/client/client.js';

const FAKE_NODE = fileURLToPath(new URL('./fake-node.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const SERVER = fileURLToPath(new URL('../../src/server/node.js', import.meta.url));

async function portFree(port: number): Promise<boolean> {
  const srv = net.createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A base port such that base .. base+n-1 are all free now. */
async function freeRange(n: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 12000); // below the ephemeral range
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free port range');
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts runCluster on fake nodes; returns its output, the exit promise and a stop handle. */
async function fakeCluster(n: number, extra: Partial<ClusterOptions> = {}) {
  const data = mkdtempSync(path.join(os.tmpdir(), 'qkv-cluster-'));
  const lines: string[] = [];
  const ac = new AbortController();
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  const [http, peer] = [await freeRange(n), await freeRange(n)];
  const done = runCluster(
    {
      nodes: n,
      host: '127.0.0.1',
      basePeerPort: peer,
      baseHttpPort: http,
      data,
      restart: false,
      serveArgs: ['--tick-ms', '20'],
      readyTimeoutMs: 20_000,
      script: FAKE_NODE,
      signal: ac.signal,
      restartDelayMs: 50,
      ...extra,
    },
    io,
  );
  const pids = (): Map<number, number> => {
    const m = new Map<number, number>();
    for (const l of lines) {
      const r = /fake node (\d+) up, pid (\d+)/.exec(l);
      if (r) m.set(Number(r[1]), Number(r[2]));
    }
    return m;
  };
  const cleanup = (): void => rmSync(data, { recursive: true, force: true });
  return { lines, done, stop: () => ac.abort(), pids, data, http, cleanup };
}

test('cluster starts N nodes, reports ready, passes tunables, and stops them all', async () => {
  const c = await fakeCluster(3);
  try {
    await waitFor(() => c.lines.some((l) => l.startsWith('cluster ready: ')), 20_000, 'ready');
    const ready = c.lines.find((l) => l.startsWith('cluster ready: ')) as string;
    assert.equal(ready, `cluster ready: ${[0, 1, 2].map((i) => `http://127.0.0.1:${c.http + i}`).join(',')}`);
    const file = JSON.parse(readFileSync(path.join(c.data, 'cluster.json'), 'utf8')) as {
      nodes: unknown[];
      clusterSecretFile?: string;
    };
    assert.equal(file.nodes.length, 3);
    // Every node gets the cluster secret the cluster created (mode 0600, next to the config file).
    assert.equal(file.clusterSecretFile, 'cluster.secret');
    assert.equal(statSync(path.join(c.data, 'cluster.secret')).mode & 0o777, 0o600);
    const health = (await (await fetch(`http://127.0.0.1:${c.http + 1}/health`)).json()) as { args: string[] };
    assert.deepEqual(health.args.slice(0, 5), ['serve', '--config', path.join(c.data, 'cluster.json'), '--id', '2']);
    assert.ok(health.args.join(' ').includes('--tick-ms 20'));
    await waitFor(() => c.pids().size === 3, 5000, 'pids');
    const pids = [...c.pids().values()];
    c.stop();
    assert.equal(await c.done, 0);
    assert.ok(c.lines.includes('cluster stopped'));
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} stopped`);
  } finally {
    c.stop();
    await c.done;
    c.cleanup();
  }
});

test('a node dying on its own stops the cluster with exit code 1, or is restarted with --restart', async () => {
  const c = await fakeCluster(2);
  try {
    await waitFor(() => c.pids().size === 2, 20_000, 'pids');
    const [p1, p2] = [c.pids().get(1) as number, c.pids().get(2) as number];
    process.kill(p2, 'SIGKILL');
    assert.equal(await c.done, 1);
    assert.ok(c.lines.some((l) => /node 2 \(pid \d+\) exited \(SIGKILL\); stopping the cluster/.test(l)));
    assert.equal(alive(p1), false);
  } finally {
    c.stop();
    await c.done;
    c.cleanup();
  }

  const r = await fakeCluster(2, { restart: true });
  try {
    await waitFor(() => r.pids().size === 2, 20_000, 'pids');
    const old = r.pids().get(1) as number;
    process.kill(old, 'SIGKILL');
    await waitFor(() => r.pids().get(1) !== old, 10_000, 'restart');
    assert.ok(r.lines.includes('restarting node 1'));
    const fresh = r.pids().get(1) as number;
    r.stop();
    assert.equal(await r.done, 0);
    assert.equal(alive(fresh), false);
  } finally {
    r.stop();
    await r.done;
    r.cleanup();
  }
});

test(
  'end to end: `quorumkv cluster` with real raft nodes serves the client and stops on SIGINT',
  { skip: existsSync(SERVER) ? false : 'the raft server (src/server/node.ts) is not in this build' },
  async () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'qkv-e2e-'));
    const [http, peer] = [await freeRange(3), await freeRange(3)];
    const child = spawn(
      process.execPath,
      [MAIN, 'cluster', '--base-http-port', String(http), '--base-peer-port', String(peer), '--data', data],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('cluster ready: '), 30_000, 'ready');
      const kv = new Client({ endpoints: [0, 1, 2].map((i) => `http://127.0.0.1:${http + i}`) });
      const p = await kv.put('e2e/a', { n: 1 });
      assert.equal(p.result, 'created');
      assert.deepEqual((await kv.get('e2e/a')).value, { n: 1 });
      assert.equal((await kv.cas('e2e/a', { n: 1 }, { n: 2 })).version, 2);
      const t = await kv.txn({
        compare: [{ key: 'e2e/a', target: 'version', op: '==', value: 2 }],
        success: [{ op: 'put', key: 'e2e/b', value: 'b' }],
      });
      assert.equal(t.succeeded, true);
      assert.deepEqual(
        (await kv.list('e2e/')).items.map((i) => i.key),
        ['e2e/a', 'e2e/b'],
      );
      const st = await kv.status();
      assert.ok(st.every((s) => s.ok));
      assert.equal(st.filter((s) => s.ok && s.status.role === 'leader').length, 1);
      child.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.match(out, /cluster stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      rmSync(data, { recursive: true, force: true });
    }
  },
);
