import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { buildProgram, type CliIO } from '../../src/cli/program.js';
import { resolveCredentials } from '../../src/cli/auth-commands.js';
import { Client } from '../../src/client/client.js';
import { KvError } from '../../src/client/errors.js';
import type { LocalCluster } from '../../src/server/local-cluster.js';
import { startCluster } from '../server/helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Run {
  out: string[];
  err: string[];
  code: number;
}

/** Runs the CLI in-process with captured output; `secrets` answer password prompts in turn. */
async function cli(args: string[], env: Record<string, string> = {}, secrets?: string[]): Promise<Run> {
  const r: Run = { out: [], err: [], code: 0 };
  const io: CliIO & { readSecret?: (p: string) => Promise<string | undefined> } = {
    out: (l) => r.out.push(l),
    err: (l) => r.err.push(l),
    env,
    exit: (c) => {
      r.code = c;
    },
    ...(secrets === undefined ? {} : { readSecret: async () => secrets.shift() }),
  };
  try {
    await buildProgram(io, { throwOnExit: true }).parseAsync(['node', 'quorumkv', ...args]);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    r.code = err.exitCode;
  }
  return r;
}

async function portFree(port: number): Promise<boolean> {
  const srv = net.createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A base port such that base .. base+n-1 are free now (below the ephemeral range). */
async function freeRange(n: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free port range');
}

/** Runs the built binary with `input` on stdin. */
function binary(args: string[], input: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
    child.stdin.end(input);
  });
}

test('--user / --token and QKV_USER / QKV_TOKEN resolve to client credentials', async () => {
  const io = { env: {} };
  assert.deepEqual(await resolveCredentials({ user: 'ann:pw:with:colons' }, io), {
    user: 'ann',
    password: 'pw:with:colons',
  });
  assert.deepEqual(await resolveCredentials({ token: 'T' }, io), { token: 'T' });
  assert.equal(await resolveCredentials({}, io), undefined);
  assert.deepEqual(await resolveCredentials({}, { env: { QKV_USER: 'bob:x' } }), { user: 'bob', password: 'x' });
  assert.deepEqual(await resolveCredentials({}, { env: { QKV_TOKEN: 'tok' } }), { token: 'tok' });
  assert.deepEqual(await resolveCredentials({ user: 'c:1' }, { env: { QKV_TOKEN: 'tok' } }), {
    user: 'c',
    password: '1',
  });
  assert.deepEqual(await resolveCredentials({ user: 'dan' }, { env: {}, readSecret: async () => 'asked' }), {
    user: 'dan',
    password: 'asked',
  });
  await assert.rejects(
    resolveCredentials({ user: 'dan' }, { env: {}, readSecret: async () => undefined }),
    /no password/,
  );
  await assert.rejects(resolveCredentials({ user: ':pw' }, io), /NAME/);
});

test('user, role and auth commands have --help with their options', async () => {
  for (const [args, patterns] of [
    [
      ['user', 'add', '--help'],
      [/--password/, /--no-password/, /--endpoints/, /--user/, /--token/],
    ],
    [
      ['role', 'grant', '--help'],
      [/--prefix/, /--read/, /--write/],
    ],
    [['role', 'revoke', '--help'], [/--prefix/]],
    [['auth', 'enable', '--help'], [/--endpoints/]],
    [
      ['get', '--help'],
      [/--user/, /--token/],
    ],
    [['cluster', '--help'], [/--auth/]],
  ] as const) {
    const r = await cli([...args]);
    assert.equal(r.code, 0);
    for (const p of patterns) assert.match(r.out.join('\n'), p, `${args.join(' ')} mentions ${p}`);
  }
});

describe('the CLI against a real 3-node cluster', () => {
  let cluster: LocalCluster;
  let cleanup: () => Promise<void>;
  let e: string[];
  const ROOT = 'root:root-password-1';

  before(async () => {
    ({ cluster, cleanup } = await startCluster({ storage: 'memory' }));
    await cluster.waitLeader();
    e = ['-e', cluster.ids.map((id) => cluster.url(id)).join(',')];
  });
  after(() => cleanup());

  test('bootstrap, users, roles, permissions, tokens and revocation', async () => {
    // While auth is off anyone may manage users (as in etcd); enabling needs a root user.
    let r = await cli(['auth', 'enable', ...e]);
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /without a root user \(HTTP 409\)/);
    r = await cli(['user', 'add', 'root', '--password', 'root-password-1', ...e]);
    assert.deepEqual([r.code, r.out], [0, ['User root created']]);
    r = await cli(['auth', 'enable', ...e]);
    assert.deepEqual([r.code, r.out], [0, ['Authentication enabled']]);
    r = await cli(['auth', 'status', ...e]);
    assert.deepEqual(r.out, ['Authentication enabled']);

    // Without credentials, every command is refused.
    for (const args of [
      ['get', 'app/x'],
      ['put', 'app/x', '1'],
      ['list', 'app/'],
      ['user', 'list'],
      ['role', 'add', 'r'],
    ]) {
      r = await cli([...args, ...e]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err.join('\n'), /Not authenticated \(HTTP 401\)/, args.join(' '));
    }
    r = await cli(['get', 'app/x', '--user', 'root:wrong-password', ...e]);
    assert.match(r.err.join('\n'), /Not authenticated \(HTTP 401\)/);

    // Roles and users, as root (flag, environment).
    const asRoot = ['--user', ROOT, ...e];
    for (const args of [
      ['role', 'add', 'reader'],
      ['role', 'add', 'writer'],
      ['role', 'grant', 'reader', '--prefix', 'app/', '--read'],
      ['role', 'grant', 'writer', '--prefix', 'app/', '--read', '--write'],
      ['user', 'grant', 'ann', 'reader'],
    ]) {
      r = await cli([...args, ...asRoot]);
      if (args[1] === 'grant' && args[0] === 'user') {
        assert.equal(r.code, 1, 'ann does not exist yet');
        assert.match(r.err.join('\n'), /User does not exist \(HTTP 404\)/);
      } else assert.equal(r.code, 0, `${args.join(' ')}: ${r.err.join('\n')}`);
    }
    // A new user's password: asked twice (a terminal), or the flag.
    r = await cli(['user', 'add', 'ann', ...asRoot], {}, ['ann-password-1', 'ann-password-1']);
    assert.deepEqual([r.code, r.out], [0, ['User ann created']]);
    r = await cli(['user', 'add', 'amy', ...asRoot], {}, ['amy-password-1', 'typo']);
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /passwords differ/);
    r = await cli(['user', 'add', 'bob', '--password', 'bob-password-1', ...e], { QKV_USER: ROOT });
    assert.equal(r.code, 0);
    r = await cli(['user', 'add', 'certy', '--no-password', ...asRoot]);
    assert.equal(r.code, 0);
    assert.equal((await cli(['user', 'grant', 'ann', 'reader', ...asRoot])).code, 0);
    assert.equal((await cli(['user', 'grant', 'bob', 'writer', ...asRoot])).code, 0);
    r = await cli(['user', 'list', ...asRoot]);
    assert.deepEqual(r.out, ['ann\treader', 'bob\twriter', 'certy\t-', 'root\troot']);
    r = await cli(['user', 'get', 'certy', ...asRoot]);
    assert.deepEqual(JSON.parse(r.out[0] as string), { name: 'certy', roles: [], password: false });
    r = await cli(['role', 'list', ...asRoot]);
    assert.deepEqual(r.out, ['root', 'reader', 'writer']);
    r = await cli(['role', 'get', 'writer', ...asRoot]);
    assert.deepEqual(r.out, ['"app/"\treadwrite']);
    r = await cli(['role', 'grant', 'reader', '--prefix', 'x/', ...asRoot]);
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /--read, --write or both/);

    // Key commands with each user.
    assert.equal((await cli(['put', 'app/x', '"hello"', '--user', 'bob:bob-password-1', ...e])).code, 0);
    r = await cli(['get', 'app/x', '--user', 'ann:ann-password-1', ...e]);
    assert.deepEqual([r.code, r.out], [0, ['"hello"']]);
    r = await cli(['get', 'app/x', '--user', 'ann', ...e], {}, ['ann-password-1']);
    assert.deepEqual([r.code, r.out], [0, ['"hello"']], 'the password asked for');
    r = await cli(['get', 'app/x', '--user', 'ann', ...e]);
    assert.equal(r.code, 2, 'no terminal to ask on');
    assert.match(r.err.join('\n'), /no password given/);
    r = await cli(['put', 'app/x', '2', '--user', 'ann:ann-password-1', ...e]);
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /Permission denied \(HTTP 403\)/);
    r = await cli(['put', 'other/x', '2', ...e], { QKV_USER: 'bob:bob-password-1' });
    assert.match(r.err.join('\n'), /Permission denied \(HTTP 403\)/);
    r = await cli(['list', 'app/', ...e], { QKV_USER: 'ann:ann-password-1' });
    assert.deepEqual(r.out, ['app/x\t"hello"']);
    r = await cli(['status', '--user', 'ann:ann-password-1', ...e]);
    assert.equal(r.code, 0);
    r = await cli(['auth', 'status', '--user', 'ann:ann-password-1', ...e]);
    assert.deepEqual(r.out, ['Authentication enabled', 'user ann\troles reader']);
    r = await cli(['user', 'list', '--user', 'ann:ann-password-1', ...e]);
    assert.match(r.err.join('\n'), /Permission denied \(HTTP 403\)/);

    // Tokens.
    r = await cli(['auth', 'token', '--user', 'ann:ann-password-1', ...e]);
    assert.equal(r.code, 0);
    const token = r.out[0] as string;
    assert.match(token, /^[A-Za-z0-9_-]{40,}$/);
    r = await cli(['get', 'app/x', '--token', token, ...e]);
    assert.deepEqual(r.out, ['"hello"']);
    r = await cli(['get', 'app/x', ...e], { QKV_TOKEN: token });
    assert.deepEqual(r.out, ['"hello"']);
    r = await cli(['get', 'app/x', '--token', 'bogus', ...e]);
    assert.match(r.err.join('\n'), /Not authenticated \(HTTP 401\)/);

    // Revocation, deletion, password change.
    assert.equal((await cli(['user', 'revoke', 'ann', 'reader', ...asRoot])).code, 0);
    r = await cli(['get', 'app/x', '--token', token, ...e]);
    assert.match(r.err.join('\n'), /Permission denied \(HTTP 403\)/);
    assert.equal((await cli(['role', 'revoke', 'writer', '--prefix', 'app/', ...asRoot])).code, 0);
    r = await cli(['put', 'app/x', '3', '--user', 'bob:bob-password-1', ...e]);
    assert.match(r.err.join('\n'), /Permission denied \(HTTP 403\)/);
    r = await cli(['role', 'revoke', 'writer', '--prefix', 'app/', ...asRoot]);
    assert.match(r.err.join('\n'), /no permission on this prefix \(HTTP 404\)/);
    assert.equal((await cli(['role', 'del', 'writer', ...asRoot])).code, 0);
    assert.equal((await cli(['user', 'passwd', 'bob', '--password', 'bob-password-2', ...asRoot])).code, 0);
    r = await cli(['auth', 'status', '--user', 'bob:bob-password-1', ...e]);
    assert.match(r.err.join('\n'), /Not authenticated/);
    r = await cli(['auth', 'status', '--user', 'bob:bob-password-2', ...e]);
    assert.deepEqual(r.out, ['Authentication enabled', 'user bob\troles -']);
    assert.equal((await cli(['user', 'del', 'bob', ...asRoot])).code, 0);
    r = await cli(['user', 'list', ...asRoot]);
    assert.deepEqual(r.out, ['ann\t-', 'certy\t-', 'root\troot']);

    // The built binary reads a new user's password from a pipe.
    const piped = await binary(['user', 'add', 'piper', '--user', ROOT, ...e], 'piper-password-1\n');
    assert.equal(piped.code, 0, piped.err);
    assert.match(piped.out, /User piper created/);
    const kv = new Client({
      endpoints: cluster.ids.map((id) => cluster.url(id)),
      auth: { user: 'piper', password: 'piper-password-1' },
    });
    await assert.rejects(kv.get('app/x'), (err: unknown) => err instanceof KvError && err.status === 403);

    // Back to no auth.
    r = await cli(['auth', 'disable', '--user', 'ann:ann-password-1', ...e]);
    assert.equal(r.code, 1);
    r = await cli(['auth', 'disable', ...asRoot]);
    assert.deepEqual([r.code, r.out], [0, ['Authentication disabled']]);
    r = await cli(['get', 'app/x', ...e]);
    assert.deepEqual(r.out, ['"hello"']);
  });
});

test('quorumkv cluster --auth writes the root credential (0600), enables auth and says how to use it', async () => {
  const data = mkdtempSync(path.join(os.tmpdir(), 'qkv-auth-cluster-'));
  const http = await freeRange(3);
  const ports = [http, http + 1, http + 2];
  const start = async () => {
    const peer = await freeRange(3);
    const child = spawn(
      process.execPath,
      [
        MAIN,
        'cluster',
        '--auth',
        '--base-http-port',
        String(ports[0]),
        '--base-peer-port',
        String(peer),
        '--data',
        data,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 40_000;
    while (!/press Ctrl-C/.test(out) && child.exitCode === null) {
      if (Date.now() > deadline) throw new Error(`not ready: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      out: () => out,
      stop: async () => {
        child.kill('SIGINT');
        return exited;
      },
    };
  };
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  try {
    const c = await start();
    const file = path.join(data, 'root.credential');
    try {
      assert.match(
        c.out(),
        new RegExp(`auth enabled: the root user's password is in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      );
      assert.match(c.out(), /QKV_USER="root:\$\(cat /);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const password = readFileSync(file, 'utf8').trim();
      assert.ok(password.length >= 24);
      await assert.rejects(
        new Client({ endpoints: urls }).put('k', 1),
        (err: unknown) => err instanceof KvError && err.status === 401,
      );
      const kv = new Client({ endpoints: urls, auth: { user: 'root', password } });
      assert.equal((await kv.put('k', 1)).result, 'created');
      const r = await cli(['get', 'k', '-e', urls.join(',')], { QKV_USER: `root:${password}` });
      assert.deepEqual(r.out, ['1']);
    } finally {
      assert.equal(await c.stop(), 0);
    }
    // Started again on the same data: auth is on already, the credential file still holds the password.
    const before = readFileSync(file, 'utf8');
    const again = await start();
    try {
      assert.match(again.out(), /auth is already enabled; the root credential is in/);
      assert.equal(readFileSync(file, 'utf8'), before);
    } finally {
      await again.stop();
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
