/**
 * `quorumkv cluster --mode quorum` under the supervisor: a follower killed with SIGKILL is restarted while the
 * leader serves; `quorumkv node stop --mode quorum`; the leader's /health and /ready follow its write quorum;
 * `--no-restart` ends the cluster with exit code 1 when a node dies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeNodePorts } from '../../src/net/ports.js';
import type { SupervisorInfo } from '../../src/cli/supervisor.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function run(args: string[]): { child: ChildProcess; output(): string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** A base port with `n` consecutive free ports. */
async function freeBase(n: number): Promise<number> {
  for (;;) {
    const [p] = await freeNodePorts(1);
    const base = p as number;
    let ok = true;
    for (let i = 1; i < n && ok; i++) {
      ok = await new Promise<boolean>((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen(base + i, '127.0.0.1', () => s.close(() => resolve(true)));
      });
    }
    if (ok) return base;
  }
}

async function status(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return { status: 0, body: {} };
  }
}

test('quorum mode: kill -9 a follower restarts it; node stop; /health and /ready; --no-restart', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'qkv-modesup-'));
  const base = await freeBase(3);
  const leader = `http://127.0.0.1:${base}`;
  const sup = run(['cluster', '--mode', 'quorum', '--nodes', '3', '--base-http-port', String(base), '--data', data]);
  const info = (): SupervisorInfo =>
    JSON.parse(readFileSync(path.join(data, 'supervisor-quorum.json'), 'utf8')) as SupervisorInfo;
  const pidOf = (id: number): number | null => info().nodes.find((n) => n.id === id)?.pid ?? null;
  try {
    await waitFor(() => sup.output().includes('quorum cluster ready: '), 30_000, 'ready');
    const victim = pidOf(2) as number;
    process.kill(victim, 'SIGKILL');
    await waitFor(() => sup.output().includes(`node 2 (pid ${victim}) exited (SIGKILL); restarting in`), 5000, 'log');
    await waitFor(() => pidOf(2) !== null && pidOf(2) !== victim, 15_000, 'restart');
    assert.equal((await status(`${leader}/health`)).body.status, 'healthy');

    for (const id of [2, 3]) {
      const stop = run(['node', 'stop', String(id), '--mode', 'quorum', '--data', data]);
      assert.equal(await stop.exited, 0, stop.output());
    }
    // A write finds the followers down: the leader's write quorum is gone.
    const w = await fetch(`${leader}/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'k', value: 1 }),
    });
    assert.equal(w.status, 503);
    const h = await status(`${leader}/health`);
    assert.deepEqual([h.status, h.body.status, h.body.quorum], [200, 'degraded', false]);
    const r = await status(`${leader}/ready`);
    assert.deepEqual([r.status, r.body.error], [503, 'Write quorum not reachable']);
    sup.child.kill('SIGINT');
    assert.equal(await sup.exited, 0);
  } finally {
    if (sup.child.exitCode === null) sup.child.kill('SIGKILL');
    await sup.exited;
  }

  // --no-restart: a node that dies stops the whole cluster.
  const base2 = await freeBase(3);
  const old = run([
    'cluster',
    '--mode',
    'eventual',
    '--nodes',
    '3',
    '--base-http-port',
    String(base2),
    '--data',
    data,
    '--no-restart',
  ]);
  try {
    await waitFor(() => old.output().includes('eventual cluster ready: '), 30_000, 'ready');
    const ev = JSON.parse(readFileSync(path.join(data, 'supervisor-eventual.json'), 'utf8')) as SupervisorInfo;
    assert.equal((await status(`${ev.nodes[0]?.url}/ready`)).status, 200);
    process.kill(ev.nodes[1]?.pid as number, 'SIGKILL');
    assert.equal(await old.exited, 1);
    assert.match(old.output(), /node 2 \(pid \d+\) exited \(SIGKILL\); stopping the cluster \(--no-restart\)/);
  } finally {
    if (old.child.exitCode === null) old.child.kill('SIGKILL');
    await old.exited;
    rmSync(data, { recursive: true, force: true });
  }
});
