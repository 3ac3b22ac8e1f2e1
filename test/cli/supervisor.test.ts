/**
 * The local supervisor with real raft nodes (`quorumkv cluster` as a child process): a node killed with
 * SIGKILL is restarted while the others serve; `quorumkv node stop|start`; /health degraded and /ready 503
 * with two of three nodes down, and the CLI failing at once with "No quorum"; a second cluster on the same
 * ports refused within seconds. And, on fake nodes: the default restart with backoff, `--no-restart`, and no
 * restart loop for a node that dies with EADDRINUSE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCluster, type ClusterOptions } from '../../src/cli/cluster.js';
import { Client } from '../../src/client/client.js';
import { controlNode, type SupervisorInfo } from '../../src/cli/supervisor.js';

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

async function freeRange(n: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
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

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Proc {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}

function run(args: string[]): Proc {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return { status: 0, body: {} };
  }
}

test(
  'real raft cluster: kill -9 restarts the node, node stop/start, degraded health, /ready, fast No quorum, port in use',
  { skip: existsSync(SERVER) ? false : 'the raft server is not in this build' },
  async () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'qkv-sup-'));
    const [http, peer] = [await freeRange(3), await freeRange(3)];
    const urls = [0, 1, 2].map((i) => `http://127.0.0.1:${http + i}`);
    const endpoints = urls.join(',');
    const sup = run(['cluster', '--base-http-port', String(http), '--base-peer-port', String(peer), '--data', data]);
    const info = (): SupervisorInfo =>
      JSON.parse(readFileSync(path.join(data, 'supervisor.json'), 'utf8')) as SupervisorInfo;
    const pidOf = (id: number): number | null => info().nodes.find((n) => n.id === id)?.pid ?? null;
    try {
      await waitFor(() => sup.output().includes('cluster ready: '), 30_000, 'ready');
      const kv = new Client({ endpoints: urls });
      await kv.put('sup/a', 1);

      // kill -9 one node: logged, restarted with backoff, the others keep serving meanwhile.
      const victim = pidOf(2) as number;
      process.kill(victim, 'SIGKILL');
      await waitFor(() => sup.output().includes(`node 2 (pid ${victim}) exited (SIGKILL); restarting in`), 5000, 'log');
      await kv.put('sup/b', 2);
      await waitFor(() => pidOf(2) !== null && pidOf(2) !== victim, 10_000, 'node 2 restarted');
      await waitFor(async () => (await getJson(`${urls[1]}/ready`)).status === 200, 15_000, 'node 2 ready');
      assert.equal(alive(victim), false);
      assert.ok(!sup.output().includes('cluster stopped'));

      // Stop two nodes on request: they stay down until started.
      for (const id of [2, 3]) {
        const stop = run(['node', 'stop', String(id), '--data', data]);
        assert.equal(await stop.exited, 0, stop.output());
        assert.match(stop.output(), new RegExp(`node ${id} stopped`));
      }
      assert.equal(pidOf(2), null);
      await waitFor(
        async () => {
          const h = await getJson(`${urls[0]}/health`);
          return h.status === 200 && h.body.status === 'degraded' && h.body.quorum === false;
        },
        15_000,
        '/health degraded',
      );
      const ready = await getJson(`${urls[0]}/ready`);
      assert.equal(ready.status, 503);
      assert.match(String(ready.body.error), /No quorum/);
      assert.ok(!sup.output().includes('restarting node 3'), 'a stopped node is not restarted');

      // The CLI says why at once instead of timing out after 15 s.
      const t0 = Date.now();
      const put = run(['put', 'sup/c', '3', '-e', endpoints]);
      assert.equal(await put.exited, 1, put.output());
      const took = Date.now() - t0;
      assert.match(put.output(), /error: No quorum \(HTTP 503/);
      assert.ok(took < 9000, `put failed after ${took} ms`);
      const status = run(['status', '-e', endpoints]);
      await status.exited;
      assert.match(status.output(), /no quorum/);

      // A second cluster on the same ports: refused within seconds, no restart loop.
      const t1 = Date.now();
      const data2 = mkdtempSync(path.join(os.tmpdir(), 'qkv-sup2-'));
      const second = run([
        'cluster',
        '--base-http-port',
        String(http),
        '--base-peer-port',
        String(peer),
        '--data',
        data2,
      ]);
      assert.notEqual(await second.exited, 0);
      assert.ok(Date.now() - t1 < 10_000);
      assert.match(second.output(), new RegExp(`error: port ${http} \\(node 1 HTTP\\) is in use`));
      assert.ok(!second.output().includes('cluster ready'));
      rmSync(data2, { recursive: true, force: true });

      // Start them again: ready once more.
      for (const id of [2, 3]) {
        const start = run(['node', 'start', String(id), '--data', data]);
        assert.equal(await start.exited, 0, start.output());
      }
      await waitFor(async () => (await getJson(`${urls[0]}/ready`)).status === 200, 20_000, 'ready again');
      const h = await getJson(`${urls[0]}/health`);
      assert.deepEqual([h.body.status, h.body.quorum], ['healthy', true]);
      assert.equal((await kv.get('sup/b')).value, 2);

      sup.child.kill('SIGINT');
      assert.equal(await sup.exited, 0);
      assert.equal(existsSync(path.join(data, 'supervisor.json')), false);
    } finally {
      if (sup.child.exitCode === null) sup.child.kill('SIGKILL');
      await sup.exited;
      rmSync(data, { recursive: true, force: true });
    }
  },
);

/** runCluster on fake nodes. */
async function fakeCluster(n: number, extra: Partial<ClusterOptions> = {}) {
  const data = mkdtempSync(path.join(os.tmpdir(), 'qkv-sup-fake-'));
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
      restart: true,
      serveArgs: [],
      readyTimeoutMs: 20_000,
      script: FAKE_NODE,
      signal: ac.signal,
      restartDelayMs: 100,
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
  return { lines, done, stop: () => ac.abort(), pids, data, http, cleanup: () => rmSync(data, { recursive: true }) };
}

test('fake nodes: restart with doubling backoff by default; a port in use is refused; EADDRINUSE is not retried', async () => {
  const c = await fakeCluster(2);
  try {
    await waitFor(() => c.pids().size === 2, 20_000, 'pids');
    for (let round = 0; round < 2; round++) {
      const old = c.pids().get(1) as number;
      process.kill(old, 'SIGKILL');
      await waitFor(() => c.pids().get(1) !== old, 10_000, 'restart');
    }
    const logs = c.lines.filter((l) => /^node 1 \(pid \d+\) exited \(SIGKILL\); restarting in/.test(l));
    assert.deepEqual(
      logs.map((l) => /restarting in (.*)$/.exec(l)?.[1]),
      ['0.1 s', '0.2 s'],
    );
    assert.ok(c.pids().get(2) !== undefined && alive(c.pids().get(2) as number), 'node 2 kept running');

    // A second supervisor on the same ports fails before spawning anything.
    const lines: string[] = [];
    const t0 = Date.now();
    const code = await runCluster(
      {
        nodes: 2,
        host: '127.0.0.1',
        basePeerPort: 1 + (await freeRange(3)),
        baseHttpPort: c.http,
        data: c.data + '-second',
        restart: true,
        serveArgs: [],
        readyTimeoutMs: 5000,
        script: FAKE_NODE,
      },
      { out: (l) => lines.push(l), err: (l) => lines.push(l) },
    );
    assert.equal(code, 1);
    assert.ok(Date.now() - t0 < 3000);
    assert.deepEqual(lines, [`error: port ${c.http} (node 1 HTTP) is in use — is another cluster running?`]);
  } finally {
    c.stop();
    await c.done;
    c.cleanup();
  }

  // A node that dies with EADDRINUSE (taken between the probe and its listen) ends the cluster, no loop.
  process.env.FAKE_NODE_EADDRINUSE = '2';
  try {
    const e = await fakeCluster(2);
    try {
      assert.equal(await e.done, 1);
      assert.ok(e.lines.some((l) => /error: node 2 cannot listen: port \d+ is in use/.test(l)));
      assert.ok(!e.lines.some((l) => l.startsWith('restarting node 2')));
    } finally {
      e.stop();
      await e.done;
      e.cleanup();
    }
  } finally {
    delete process.env.FAKE_NODE_EADDRINUSE;
  }
});

test('fake nodes: quorumkv node pause/resume/restart/stop/start through the supervisor file', async () => {
  const c = await fakeCluster(2);
  const procState = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] ?? '?';
  try {
    await waitFor(() => c.lines.some((l) => l.startsWith('cluster ready: ')), 20_000, 'ready');
    const pid = c.pids().get(1) as number;
    assert.match(await controlNode(c.data, 'pause', 1), /node 1 paused/);
    if (existsSync(`/proc/${pid}/stat`)) await waitFor(() => procState(pid) === 'T', 5000, 'stopped state');
    assert.match(await controlNode(c.data, 'resume', 1), /node 1 resumed/);
    if (existsSync(`/proc/${pid}/stat`)) await waitFor(() => procState(pid) !== 'T', 5000, 'running state');

    assert.match(await controlNode(c.data, 'restart', 1), /node 1 restarted/);
    await waitFor(() => c.pids().get(1) !== pid, 5000, 'new pid');
    const second = c.pids().get(1) as number;
    assert.equal(alive(pid), false);

    assert.match(await controlNode(c.data, 'stop', 1), /node 1 stopped/);
    assert.equal(alive(second), false);
    await new Promise((r) => setTimeout(r, 500)); // longer than the restart delay: it stays down
    assert.equal(c.pids().get(1), second);
    await assert.rejects(controlNode(c.data, 'pause', 1), /not running/);
    await assert.rejects(controlNode(c.data, 'stop', 9), /no node 9/);
    assert.match(await controlNode(c.data, 'start', 1), /node 1 started/);
    await waitFor(() => c.pids().get(1) !== second, 5000, 'started again');
  } finally {
    c.stop();
    await c.done;
    c.cleanup();
  }
});
