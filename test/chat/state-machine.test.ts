import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { encodeChatCommand, type ChatCommand, type ChatMessage } from '../../src/chat/commands.js';
import { ChatStateMachine } from '../../src/chat/state-machine.js';
import { contentDigestOfFile } from '../../src/chat/store.js';
import { startingApplied } from '../../src/server/app.js';
import { MemoryStorage } from '../../src/storage/memory.js';

const T0 = 1_800_000_000_000;
const HOUR = 3600_000;
const salt = new Uint8Array(16).fill(1);
const hash = new Uint8Array(32).fill(2);

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'qkv-chat-sm-'));
}

/** A short conversation: two users, a room, a join, posts (one retried with the same request id). */
function script(): ChatCommand[] {
  return [
    { t: 'register', user: 'ann', salt, hash, time: T0 },
    { t: 'register', user: 'bob', salt, hash, time: T0 + 1 },
    { t: 'login', user: 'ann', session: 'sa', time: T0 + 2, expires: T0 + HOUR },
    { t: 'login', user: 'bob', session: 'sb', time: T0 + 3, expires: T0 + HOUR },
    { t: 'create-room', session: 'sa', room: 'general', time: T0 + 4 },
    { t: 'post', session: 'sb', room: 'general', text: 'not yet a member', time: T0 + 5 },
    { t: 'join', session: 'sb', room: 'general', time: T0 + 6 },
    { t: 'post', session: 'sa', room: 'general', text: 'hello', rid: 'ann:1', time: T0 + 7 },
    { t: 'post', session: 'sb', room: 'general', text: 'hi ann', rid: 'bob:1', time: T0 + 8 },
    { t: 'post', session: 'sa', room: 'general', text: 'hello', rid: 'ann:1', time: T0 + 9 },
    { t: 'post', session: 'sa', room: 'general', text: 'how are you', time: T0 + 10 },
  ];
}

/** Applies commands from index `first` as one batch, through their encoded bytes. */
function applyAll(sm: ChatStateMachine, cmds: readonly ChatCommand[], first = 1) {
  const results = cmds.map((c, i) => sm.apply(first + i, encodeChatCommand(c)));
  sm.flush();
  return results;
}

test('commands give the contract answers, and a retried request id answers its first outcome', () => {
  const dir = tmp();
  try {
    const sm = new ChatStateMachine(path.join(dir, 'chat.sqlite'));
    const r = applyAll(sm, [
      ...script(),
      { t: 'register', user: 'ann', salt, hash, time: T0 + 11 },
      { t: 'create-room', session: 'sa', room: 'general', time: T0 + 12 },
      { t: 'join', session: 'sa', room: 'nowhere', time: T0 + 13 },
      { t: 'post', session: 'forged', room: 'general', text: 'x', time: T0 + 14 },
      { t: 'post', session: 'sa', room: 'general', text: 'too late', time: T0 + HOUR },
      { t: 'logout', session: 'sb', time: T0 + 15 },
      { t: 'post', session: 'sb', room: 'general', text: 'after logout', time: T0 + 16 },
    ]);
    assert.deepEqual(r[0], { status: 201, body: { result: 'created', username: 'ann' } });
    assert.equal(r[4].status, 201);
    assert.deepEqual(r[5], { status: 403, body: { error: 'Not a member' } });
    assert.deepEqual(r[6], { status: 200, body: { result: 'joined' } });
    assert.deepEqual(r[7].body, { seq: 1, room: 'general', user: 'ann', text: 'hello', time: T0 + 7 });
    assert.deepEqual(r[8].body, { seq: 2, room: 'general', user: 'bob', text: 'hi ann', time: T0 + 8 });
    assert.deepEqual(r[9], r[7], 'the retry answers the first outcome');
    assert.equal(r[10].body.seq, 3);
    assert.deepEqual(r[11], { status: 409, body: { error: 'Username is taken' } });
    assert.deepEqual(r[12], { status: 409, body: { error: 'Room exists' } });
    assert.deepEqual(r[13], { status: 404, body: { error: 'Room does not exist' } });
    assert.deepEqual(r[14], { status: 401, body: { error: 'Not authenticated' } });
    assert.deepEqual(r[15], { status: 401, body: { error: 'Not authenticated' } }, 'an expired session');
    assert.deepEqual(r[16], { status: 200, body: { result: 'deleted' } });
    assert.deepEqual(r[17], { status: 401, body: { error: 'Not authenticated' } });
    assert.deepEqual(
      sm.tables.messagesAfter('general', 0, 10).map((m) => m.text),
      ['hello', 'hi ann', 'how are you'],
    );
    assert.equal(sm.room('general')?.lastSeq, 3);
    assert.equal(sm.applied, 18);
    sm.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed entries are refused the same way everywhere and change nothing', () => {
  const sm = new ChatStateMachine(':memory:');
  const before = sm.digest();
  const r = sm.apply(1, new Uint8Array([1, 2, 3]));
  sm.flush();
  assert.equal(r.status, 400);
  assert.equal(sm.applied, 1);
  assert.equal(sm.digest(), before);
  sm.close();
});

test('replicas applying the same entries in different batches hold identical content', () => {
  const dir = tmp();
  try {
    const cmds = script();
    const a = new ChatStateMachine(path.join(dir, 'a.sqlite'));
    const b = new ChatStateMachine(path.join(dir, 'b.sqlite'));
    applyAll(a, cmds);
    cmds.forEach((c, i) => {
      b.apply(i + 1, encodeChatCommand(c), c);
      if (i % 3 === 0) b.flush();
      else if (i % 4 === 0) b.skipTo(i + 1); // a noop at an already applied index changes nothing
    });
    b.flush();
    assert.equal(a.digest(), b.digest());
    a.close();
    b.close();
    assert.equal(contentDigestOfFile(path.join(dir, 'a.sqlite')), contentDigestOfFile(path.join(dir, 'b.sqlite')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a crash loses exactly the unflushed batch, and a restart neither re-applies nor loses an entry', () => {
  const dir = tmp();
  const file = path.join(dir, 'chat.sqlite');
  try {
    const cmds = script();
    const sm = new ChatStateMachine(file);
    applyAll(sm, cmds.slice(0, 8));
    // The next batch is applied but not committed when the process dies.
    for (let i = 8; i < cmds.length; i++) sm.apply(i + 1, encodeChatCommand(cmds[i] as ChatCommand));
    (sm as unknown as { db: { close(): void } }).db.close(); // no COMMIT: SQLite rolls the batch back

    const again = new ChatStateMachine(file);
    assert.equal(again.applied, 8, 'the applied index moved with the committed batches only');
    assert.equal(again.room('general')?.lastSeq, 1);
    // The log replays from the start (say, the leader's own log lagged): entries held are skipped.
    const replay = applyAll(again, cmds, 1);
    assert.equal(replay[7]?.body.result, 'already applied');
    assert.deepEqual(
      again.tables.messagesAfter('general', 0, 10).map((m) => [m.seq, m.text]),
      [
        [1, 'hello'],
        [2, 'hi ann'],
        [3, 'how are you'],
      ],
    );
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the planted bug (applied index ignored at start) posts replayed messages twice', () => {
  const dir = tmp();
  const file = path.join(dir, 'chat.sqlite');
  try {
    const cmds = script();
    const sm = new ChatStateMachine(file, { plantedBug: 'reapply-after-restart' });
    applyAll(sm, cmds);
    sm.close();
    const again = new ChatStateMachine(file, { plantedBug: 'reapply-after-restart' });
    assert.equal(again.applied, 0);
    applyAll(
      again,
      cmds.filter((c) => c.t === 'post').map((c) => c),
    );
    const texts = again.tables.messagesAfter('general', 0, 100).map((m) => m.text);
    assert.ok(texts.length > 3, `messages duplicated: ${texts.join(', ')}`);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshots copy the database; restoring one swaps the file, an older one is ignored', () => {
  const dir = tmp();
  try {
    const cmds = script();
    const a = new ChatStateMachine(path.join(dir, 'a.sqlite'));
    applyAll(a, cmds.slice(0, 9));
    const snap9 = a.snapshot();
    applyAll(a, cmds.slice(9), 10);
    const snapAll = a.snapshot();

    const b = new ChatStateMachine(path.join(dir, 'b.sqlite'));
    const seen: string[] = [];
    b.subscribe({
      messages: (ms: readonly ChatMessage[]) => seen.push(...ms.map((m) => m.text)),
      reset: () => seen.push('reset'),
    });
    b.restore(snap9);
    assert.equal(b.applied, 9);
    assert.deepEqual(seen, ['reset']);
    applyAll(b, cmds.slice(9), 10);
    assert.deepEqual(seen, ['reset', 'how are you'], 'subscribers get the batches applied after the restore');
    assert.equal(b.digest(), a.digest());
    b.restore(snap9); // behind what b holds: no change
    assert.equal(b.applied, cmds.length);
    assert.equal(b.digest(), a.digest());
    b.close();

    const m = new ChatStateMachine(':memory:');
    m.restore(snapAll);
    assert.equal(m.digest(), a.digest());
    assert.equal(m.room('general')?.members.size, 2);
    assert.equal(m.sessionUser('sa', T0 + 100), 'ann');
    m.close();
    a.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the host starts from the state machine index, clamped to the local log and the snapshot', async () => {
  const st = new MemoryStorage([1, 2, 3]);
  await st.save({
    hardState: { term: 1, vote: 1, commit: 3 },
    entries: [1, 2, 3, 4, 5].map((index) => ({ index, term: 1, type: 'normal' as const, data: new Uint8Array() })),
  });
  assert.equal(startingApplied(3, st), 3);
  assert.equal(startingApplied(9, st), 5, 'a database ahead of the local log (a crashed leader)');
  await st.createSnapshot(4, [1, 2, 3], new Uint8Array());
  assert.equal(startingApplied(2, st), 4, 'never below the snapshot');
});
