/**
 * A property test of the chat state machine as a replica lives it: random commands, applied in random
 * batches, with crashes between and inside batches (the open batch is lost; the log is replayed from an
 * index at or below what the database holds), snapshots installed from another replica, and restarts. The
 * replica must always end with exactly the content of a replica that applied everything in one go.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeChatCommand, type ChatCommand } from '../../src/chat/commands.js';
import { ChatStateMachine } from '../../src/chat/state-machine.js';

const T0 = 1_800_000_000_000;
const USERS = ['ann', 'bob', 'cy'];
const ROOMS = ['a', 'b'];
const salt = new Uint8Array(16).fill(3);
const hash = new Uint8Array(32).fill(4);

const command: fc.Arbitrary<(i: number) => ChatCommand> = fc.oneof(
  fc
    .constantFrom(...USERS)
    .map((user) => (i: number): ChatCommand => ({ t: 'register', user, salt, hash, time: T0 + i })),
  fc.tuple(fc.constantFrom(...USERS), fc.integer({ min: 0, max: 1 })).map(([user, n]) => (i: number): ChatCommand => ({
    t: 'login',
    user,
    session: `${user}${n}`,
    time: T0 + i,
    expires: T0 + i + 50,
  })),
  fc
    .tuple(fc.constantFrom(...USERS), fc.constantFrom(...ROOMS))
    .map(([u, room]) => (i: number): ChatCommand => ({ t: 'create-room', session: `${u}0`, room, time: T0 + i })),
  fc
    .tuple(fc.constantFrom(...USERS), fc.constantFrom(...ROOMS))
    .map(([u, room]) => (i: number): ChatCommand => ({ t: 'join', session: `${u}0`, room, time: T0 + i })),
  fc
    .tuple(fc.constantFrom(...USERS), fc.constantFrom(...ROOMS), fc.option(fc.integer({ min: 0, max: 5 })))
    .map(([u, room, rid]) => (i: number): ChatCommand => ({
      t: 'post',
      session: `${u}${i % 2}`,
      room,
      text: `m${i}`,
      time: T0 + i,
      ...(rid === null ? {} : { rid: `${u}:${rid}` }),
    })),
  fc.constantFrom(...USERS).map((u) => (i: number): ChatCommand => ({ t: 'logout', session: `${u}1`, time: T0 + i })),
);

/** What happens after each entry: keep going, end the batch, crash, restart cleanly, install a snapshot. */
const step = fc.constantFrom('apply', 'apply', 'apply', 'flush', 'crash', 'restart', 'snapshot');

test('a replica that crashes, replays and installs snapshots ends identical to one that applied everything', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-chat-prop-'));
  let run = 0;
  try {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 60 }),
        fc.array(step, { minLength: 60, maxLength: 60 }),
        fc.array(fc.nat(), { minLength: 60, maxLength: 60 }),
        (makers, steps, replayBack) => {
          run++;
          // Everyone registered, logged in (two sessions each) and in every room, then the random commands.
          const prelude: ChatCommand[] = [];
          for (const user of USERS) {
            prelude.push({ t: 'register', user, salt, hash, time: T0 });
            for (const n of [0, 1])
              prelude.push({ t: 'login', user, session: `${user}${n}`, time: T0, expires: T0 + 500 });
          }
          for (const room of ROOMS) {
            prelude.push({ t: 'create-room', session: 'ann0', room, time: T0 });
            for (const u of USERS) prelude.push({ t: 'join', session: `${u}0`, room, time: T0 });
          }
          const entries = [
            ...prelude.map((c) => encodeChatCommand(c)),
            ...makers.map((mk, i) => encodeChatCommand(mk(i + 1))),
          ];
          const reference = new ChatStateMachine(':memory:');
          entries.forEach((e, i) => reference.apply(i + 1, e));
          reference.flush();
          // Snapshots another replica could send: the reference's state at some earlier index.
          const donor = new ChatStateMachine(':memory:');

          const file = path.join(dir, `r${run}.sqlite`);
          let replica = new ChatStateMachine(file);
          let next = 1;
          // Bounded: a replica that never gets past a crash point (say, it loses its applied index) fails.
          for (let k = 0; next <= entries.length && k < 20 * entries.length; k++) {
            const what = steps[k % steps.length] as string;
            replica.apply(next, entries[next - 1] as Uint8Array);
            next++;
            if (what === 'flush') replica.flush();
            else if (what === 'restart' || what === 'crash') {
              if (what === 'restart') replica.close();
              else (replica as unknown as { db: { close(): void } }).db.close(); // the open batch is lost
              replica = new ChatStateMachine(file);
              // The log replays from the database's index or earlier (the host's clamp to its log).
              next = Math.max(1, replica.applied + 1 - ((replayBack[k % replayBack.length] as number) % 4));
            } else if (what === 'snapshot') {
              replica.flush();
              // The donor may be behind this replica (its snapshot is then ignored) or ahead of it.
              const at = Math.min(entries.length, next - 3 + ((replayBack[k % replayBack.length] as number) % 7));
              for (let i = donor.applied + 1; i <= at; i++) donor.apply(i, entries[i - 1] as Uint8Array);
              donor.flush();
              replica.restore(donor.snapshot());
              next = Math.max(next, replica.applied + 1);
            }
          }
          const ok = replica.digest() === reference.digest() && replica.applied === entries.length;
          replica.close();
          reference.close();
          donor.close();
          rmSync(file, { force: true });
          for (const s of ['-wal', '-shm']) rmSync(file + s, { force: true });
          return ok;
        },
      ),
      { numRuns: 60, seed: 20261204 },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(run >= 60);
});
