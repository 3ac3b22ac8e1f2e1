/**
 * A node listening beyond loopback: it refuses to start without a cluster secret (unless --insecure), and its
 * /admin/* routes need a signed request (`quorumkv admin` signs with the secret file). Raft and quorum mode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterSecret } from '../../src/modes/common/cluster.js';
import { freePorts, spawnModeNode } from '../../src/modes/common/spawn.js';
import { CREDENTIAL_INVALID, CREDENTIAL_REQUIRED, eventually, refusals, send, wrongSigner } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Run {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
}

function cli(args: readonly string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function stop(r: Run): Promise<void> {
  if (r.child.exitCode === null && r.child.signalCode === null && r.child.pid !== undefined) {
    process.kill(r.child.pid, 'SIGTERM');
  }
  await r.exited;
}

test('raft beyond loopback: no secret refuses to start, --insecure starts, /admin/* needs a signature', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-sec-admin-'));
  const secret = clusterSecret(path.join(dir, 'cluster.secret'));
  const [http, peer] = (await freePorts(2)) as [number, number];
  const serve = (extra: string[], data: string) =>
    cli([
      'serve',
      '--id',
      '1',
      '--http',
      `0.0.0.0:${http}`,
      '--peers',
      `1=127.0.0.1:${peer}`,
      '--data-dir',
      path.join(dir, data),
      '--tick-ms',
      '20',
      ...extra,
    ]);
  let node: Run | undefined;
  try {
    const refused = serve([], 'a');
    assert.equal(await refused.exited, 1);
    assert.match(refused.output(), /not loopback.*--cluster-secret-file.*--insecure/s);

    const insecure = serve(['--insecure'], 'b');
    await eventually(async () => insecure.output().includes('serving on'), 20_000, 'insecure node');
    assert.match(insecure.output(), /INSECURE/);
    assert.equal((await send(`http://127.0.0.1:${http}/admin/fail`, 'POST', undefined)).status, 200);
    await stop(insecure);

    // With the secret but without TLS: --insecure waives TLS only (the TLS tests cover the rest).
    node = serve(['--cluster-secret-file', secret.file, '--insecure'], 'c');
    await eventually(async () => node!.output().includes('serving on'), 20_000, 'secured node');
    const url = `http://127.0.0.1:${http}`;
    await eventually(async () => (await send(`${url}/health`, 'GET', undefined)).status === 200);
    let r = await send(`${url}/admin/fail`, 'POST', undefined);
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, CREDENTIAL_REQUIRED);
    r = await send(`${url}/admin/fail`, 'POST', undefined, wrongSigner()('POST', '/admin/fail'));
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, CREDENTIAL_INVALID);
    r = await send(`${url}/admin/faults`, 'POST', JSON.stringify({ drop: [2] }));
    assert.equal(r.status, 401);
    assert.equal((await send(`${url}/health`, 'GET', undefined)).status, 200, 'still serving');
    // The public API needs nothing.
    assert.equal((await send(`${url}/kvs/k`, 'PUT', JSON.stringify({ value: 1 }))).status, 201);

    // quorumkv admin signs with the secret file.
    const admin = cli(['admin', url, 'fail', '--cluster-secret-file', secret.file]);
    assert.equal(await admin.exited, 0, admin.output());
    assert.equal((await send(`${url}/health`, 'GET', undefined)).status, 503);
    const recover = cli(['admin', url, 'recover'], { QKV_CLUSTER_SECRET_FILE: secret.file });
    assert.equal(await recover.exited, 0, recover.output());
    await eventually(async () => (await send(`${url}/health`, 'GET', undefined)).status === 200);
    const unsigned = cli(['admin', url, 'fail']);
    assert.equal(await unsigned.exited, 1);
    assert.match(unsigned.output(), /401/);

    const n = await refusals(url);
    assert.equal(n.get('http/missing'), 3);
    assert.equal(n.get('http/bad-signature'), 1);
  } finally {
    if (node !== undefined) await stop(node);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quorum beyond loopback: /admin/* needs a signature; a follower without a secret refuses to start', async () => {
  const secret = clusterSecret();
  const [lp, fp] = (await freePorts(2)) as [number, number];
  const nodes = [];
  try {
    await assert.rejects(
      spawnModeNode('quorum', [
        '--role',
        'follower',
        '--host',
        '0.0.0.0',
        '--port',
        String(fp),
        '--leader',
        `127.0.0.1:${lp}`,
      ]),
      /not loopback/,
    );
    const leader = await spawnModeNode(
      'quorum',
      ['--role', 'leader', '--host', '0.0.0.0', '--port', String(lp), '--followers', `127.0.0.1:${fp}`],
      // The secret, without TLS (which --insecure waives).
      { ...secret.env, QKV_INSECURE: '1' },
    );
    nodes.push(leader);
    const url = `http://127.0.0.1:${lp}`;
    const r = await send(`${url}/admin/fail`, 'POST', undefined);
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, CREDENTIAL_REQUIRED);
    assert.equal((await send(`${url}/health`, 'GET', undefined)).status, 200);
    const admin = cli(['admin', url, 'fail', '--cluster-secret-file', secret.file]);
    assert.equal(await admin.exited, 0, admin.output());
    assert.equal((await send(`${url}/status`, 'GET', undefined)).body.state, 'failed');
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    secret.dispose();
  }
});
