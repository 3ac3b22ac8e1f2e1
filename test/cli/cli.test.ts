import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CommanderError } from 'commander';
import { buildProgram, type CliIO } from '../../src/cli/program.js';
import { parseValue } from '../../src/cli/kv-commands.js';
import { FakeCluster } from '../client/fake-cluster.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Run {
  out: string[];
  err: string[];
  code: number;
}

/** Runs the CLI in-process with captured output. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r: Run = { out: [], err: [], code: 0 };
  const io: CliIO = {
    out: (l) => r.out.push(l),
    err: (l) => r.err.push(l),
    env,
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

const SUBCOMMANDS: [string, RegExp[]][] = [
  ['serve', [/--id/, /--peers/, /--http /, /--data-dir/, /--config/, /--mode/, /--tick-ms/, /--no-forward/]],
  ['cluster', [/--nodes/, /--base-http-port/, /--base-peer-port/, /--data/, /--restart/]],
  ['put', [/<key> <value>/, /--endpoints/]],
  ['get', [/--consistency/, /--endpoints/]],
  ['del', [/<key>/]],
  ['list', [/\[prefix\]/, /--limit/]],
  ['status', [/--endpoints/]],
];

test('--help on the program and every subcommand', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0);
  for (const [name] of SUBCOMMANDS) assert.match(top.out.join('\n'), new RegExp(`\\b${name}\\b`));
  for (const [name, patterns] of SUBCOMMANDS) {
    const r = await cli([name, '--help']);
    assert.equal(r.code, 0, name);
    const text = r.out.join('\n');
    assert.match(text, new RegExp(`Usage: quorumkv ${name}`));
    for (const p of patterns) assert.match(text, p, `${name} --help mentions ${p}`);
  }
});

test('the built binary runs: --help and an unknown command', async () => {
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [MAIN, 'status', '--help']);
  assert.match(stdout, /Usage: quorumkv status/);
  await assert.rejects(run(process.execPath, [MAIN, 'frobnicate']), (e: { code?: number; stderr?: string }) => {
    assert.equal(e.code, 1);
    assert.match(e.stderr ?? '', /unknown command/);
    return true;
  });
});

test('values are JSON when they parse, strings otherwise', () => {
  assert.deepEqual(parseValue('{"a":[1,true]}'), { a: [1, true] });
  assert.equal(parseValue('42'), 42);
  assert.equal(parseValue('"quoted"'), 'quoted');
  assert.equal(parseValue('hello world'), 'hello world');
  assert.equal(parseValue('{broken'), '{broken');
});

test('put / get / del / list / status against a cluster', async () => {
  const c = await FakeCluster.start(3, { forward: false });
  try {
    const ep = ['--endpoints', c.endpoints.join(',')];
    let r = await cli(['put', 'user/1', '{"name":"ada"}', ...ep]);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.equal(JSON.parse(r.out[0] as string).result, 'created');
    assert.deepEqual(c.store.get('user/1')?.value, { name: 'ada' });
    r = await cli(['put', 'user/2', 'plain text', ...ep]);
    assert.equal(c.store.get('user/2')?.value, 'plain text');

    r = await cli(['get', 'user/1', ...ep]);
    assert.deepEqual(r.out, ['{"name":"ada"}']);
    r = await cli(['get', 'user/2', '--consistency', 'stale', '--meta', ...ep]);
    const meta = JSON.parse(r.out[0] as string) as Record<string, unknown>;
    assert.equal(meta.value, 'plain text');
    assert.equal(meta.stale, true);
    assert.equal(meta.version, 1);

    r = await cli(['list', 'user/', ...ep]);
    assert.deepEqual(r.out, ['user/1\t{"name":"ada"}', 'user/2\t"plain text"']);
    r = await cli(['list', 'user/', '--limit', '1', ...ep]);
    assert.equal(r.out.length, 1);
    assert.match(r.err.join('\n'), /more keys follow: --after "user\/1"/);
    r = await cli(['list', 'user/', '--after', 'user/1', ...ep]);
    assert.deepEqual(r.out, ['user/2\t"plain text"']);

    r = await cli(['del', 'user/1', ...ep]);
    assert.equal(JSON.parse(r.out[0] as string).result, 'deleted');
    r = await cli(['get', 'user/1', ...ep]);
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /Key does not exist.*404/);

    // the default endpoints come from QKV_ENDPOINTS
    r = await cli(['get', 'user/2'], { QKV_ENDPOINTS: c.endpoints.join(',') });
    assert.deepEqual(r.out, ['"plain text"']);

    await c.kill(3);
    r = await cli(['status', ...ep]);
    assert.equal(r.code, 0);
    assert.match(r.out[0] as string, /^id\s+url\s+role\s+term\s+commit\s+applied\s+leader\s+health$/);
    assert.match(r.out[1] as string, /^1\s+http:\/\/127\.0\.0\.1:\d+\s+leader\s+2\s+\d+\s+\d+\s+1\s+up$/);
    assert.match(r.out[2] as string, /^2\s+\S+\s+follower\s/);
    assert.match(r.out[3] as string, /^-\s+\S+(\s+-){5}\s+down \(/);
  } finally {
    await c.close();
  }
});

test('usage errors exit non-zero with a clear message', async () => {
  let r = await cli(['get', 'k', '--consistency', 'weird']);
  assert.notEqual(r.code, 0);
  assert.match(r.err.join('\n'), /consistency/);
  r = await cli(['list', '--limit', 'x', '--endpoints', 'http://127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.match(r.err.join('\n'), /--limit/);
  r = await cli(['serve', '--id', 'zero']);
  assert.equal(r.code, 2);
  assert.match(r.err.join('\n'), /--id/);
  // Other modes run their own node program: its usage errors end it (and the command) with a failure.
  r = await cli(['serve', '--mode', 'quorum', '--', '--role', 'bogus']);
  assert.notEqual(r.code, 0);
  r = await cli(['cluster', '--nodes', 'many']);
  assert.equal(r.code, 2);
  assert.match(r.err.join('\n'), /--nodes/);
  r = await cli(['put', 'k']);
  assert.notEqual(r.code, 0);
  assert.match(r.err.join('\n'), /missing required argument/);
});
