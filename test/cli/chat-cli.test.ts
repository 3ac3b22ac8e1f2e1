import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CommanderError } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import type { ChatIO } from '../../src/cli/chat.js';
import { FakeChat } from '../client/fake-chat.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PW = 'secret123';
const LINE = /^\[#(\d+) \d\d:\d\d:\d\d\] (\S+): (.*)$/;

interface Session {
  readonly out: string[];
  readonly err: string[];
  readonly input: PassThrough;
  /** Resolves to the exit code. */
  readonly done: Promise<number>;
  send(...lines: string[]): void;
  /** Ends the session at once (cleanup after a failed test). */
  stop(): Promise<void>;
  waitOut(re: RegExp, timeoutMs?: number): Promise<string>;
}

/** Runs `quorumkv chat ...args` in-process, with a pipe as its input. */
function chat(args: string[], env: Record<string, string> = {}): Session {
  const out: string[] = [];
  const err: string[] = [];
  const input = new PassThrough();
  const aborter = new AbortController();
  let code = 0;
  const io: ChatIO = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env,
    exit: (c) => {
      code = c;
    },
    input,
    signal: aborter.signal,
  };
  const done = buildProgram(io, { throwOnExit: true })
    .parseAsync(['node', 'quorumkv', 'chat', ...args])
    .then(
      () => code,
      (e: unknown) => {
        if (e instanceof CommanderError) return e.exitCode;
        throw e;
      },
    );
  return {
    out,
    err,
    input,
    done,
    stop: async () => {
      aborter.abort();
      await done.catch(() => undefined);
    },
    send: (...lines) => {
      for (const l of lines) input.write(l + '\n');
    },
    waitOut: async (re, timeoutMs = 8000) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const hit = out.find((l) => re.test(l));
        if (hit !== undefined) return hit;
        if (Date.now() > end)
          throw new Error(`no output line matching ${re}; out:\n${out.join('\n')}\nerr:\n${err.join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

const messages = (out: readonly string[]): string[][] =>
  out.map((l) => LINE.exec(l)).flatMap((m) => (m === null ? [] : [[m[1] ?? '', m[2] ?? '', m[3] ?? '']]));

test('chat --help lists its options', async () => {
  const s = chat(['--help']);
  assert.equal(await s.done, 0);
  const text = s.out.join('\n');
  for (const o of ['--endpoints', '--user', '--password', '--register', '--room', '--timeout-ms']) {
    assert.match(text, new RegExp(o));
  }
});

test('a piped session: register, join (creating the room), list rooms, post, quit', async () => {
  const c = await FakeChat.start(3);
  let s: Session | undefined;
  try {
    s = chat(['-e', c.endpoints.join(',')]);
    s.send('/register alice ' + PW, '/join general', '/rooms', 'hello', 'world', '/quit');
    s.input.end();
    assert.equal(await s.done, 0, s.err.join('\n'));
    assert.deepEqual(s.err, []);
    for (const l of ['-- registered alice', '-- logged in as alice', '-- created room general', '-- joined general']) {
      assert.ok(s.out.includes(l), `${l} in\n${s.out.join('\n')}`);
    }
    assert.ok(s.out.some((l) => /^room\s+members\s+last_seq$/.test(l)));
    assert.ok(s.out.some((l) => /^general\s+1\s+0$/.test(l)));
    assert.ok(s.out.includes(`-- talking to ${c.node(1).url}`));
    assert.deepEqual(messages(s.out), [
      ['1', 'alice', 'hello'],
      ['2', 'alice', 'world'],
    ]);
    assert.deepEqual(c.texts('general'), ['hello', 'world']);
  } finally {
    await s?.stop();
    await c.close();
  }
});

test('QKV_ENDPOINTS, --user/--password/--room; without a quorum posts are queued then delivered once', async () => {
  const c = await FakeChat.start(3);
  let s: Session | undefined;
  try {
    c.seedUser('alice', PW, ['general']);
    c.append('general', 'bob', 'earlier');
    s = chat(['--user', 'alice', '--password', PW, '--room', 'general'], {
      QKV_ENDPOINTS: c.endpoints.join(','),
    });
    await s.waitOut(/^-- joined general$/);
    await s.waitOut(/bob: earlier$/);
    await s.waitOut(/^-- general: following from /);

    c.setAll('no-quorum');
    s.send('typed while down', 'and another');
    await s.waitOut(/^\(queued\) typed while down$/);
    await s.waitOut(/^\(queued\) and another$/);
    await s.waitOut(/^-- no quorum or no node reachable \(503 No quorum\)/);
    assert.deepEqual(c.texts('general'), ['earlier']);

    c.setAll('ok');
    await s.waitOut(/^\(delivered #2\) typed while down$/);
    await s.waitOut(/^\(delivered #3\) and another$/);
    await s.waitOut(/^-- available again/);
    await s.waitOut(/alice: and another$/);

    // The node the stream follows dies: the stream moves on, a message posted meanwhile arrives once.
    await c.kill(1);
    c.append('general', 'bob', 'during the failover');
    await s.waitOut(/^-- general: stream failover /);
    await s.waitOut(/bob: during the failover$/);
    s.send('after', '/quit');
    s.input.end();
    assert.equal(await s.done, 0, s.err.join('\n'));
    assert.deepEqual(messages(s.out), [
      ['1', 'bob', 'earlier'],
      ['2', 'alice', 'typed while down'],
      ['3', 'alice', 'and another'],
      ['4', 'bob', 'during the failover'],
      ['5', 'alice', 'after'],
    ]);
    assert.deepEqual(c.texts('general'), [
      'earlier',
      'typed while down',
      'and another',
      'during the failover',
      'after',
    ]);
  } finally {
    await s?.stop();
    await c.close();
  }
});

test('/quit waits for queued messages; errors are reported and make a piped session fail', async () => {
  const c = await FakeChat.start(2);
  let s: Session | undefined;
  try {
    c.seedUser('alice', PW, ['general']);
    s = chat(['-e', c.endpoints.join(',')]);
    s.send('posting too early', '/login', 'alice', PW, '/join', '/frobnicate', '/join general');
    await s.waitOut(/^-- joined general$/);
    c.setAll('no-quorum');
    s.send('late', '/quit');
    await s.waitOut(/^-- waiting for 1 queued message\(s\) to be delivered/);
    await new Promise((r) => setTimeout(r, 300));
    c.setAll('ok');
    s.input.end();
    assert.equal(await s.done, 1);
    assert.deepEqual(s.err, [
      'error: not logged in: /login or /register first',
      'error: usage: /join <room>',
      'error: unknown command /frobnicate (/help)',
    ]);
    assert.deepEqual(c.texts('general'), ['late']);
    assert.deepEqual(messages(s.out), [['1', 'alice', 'late']]);
  } finally {
    await s?.stop();
    await c.close();
  }
});

test('the built binary: a piped session with --register ends when its input ends', async () => {
  const c = await FakeChat.start(2);
  try {
    const run = promisify(execFile);
    const args = [MAIN, 'chat', '-e', c.endpoints.join(','), '--user', 'bob', '--password', PW, '--register'];
    const child = run(process.execPath, [...args, '--room', 'lobby'], { timeout: 20000 });
    child.child.stdin?.end('hi there\n');
    const { stdout } = await child;
    assert.match(stdout, /^-- registered bob$/m);
    assert.match(stdout, /^\[#1 \d\d:\d\d:\d\d\] bob: hi there$/m);
    // Registering an existing user logs in.
    const again = run(process.execPath, args, { timeout: 20000 });
    again.child.stdin?.end('/rooms\n/quit\n');
    const second = await again;
    assert.match(second.stdout, /^-- bob: Username is taken; logging in$/m);
    assert.match(second.stdout, /^lobby\s+1\s+1$/m);
  } finally {
    await c.close();
  }
});
