/**
 * Ordering and delivery under faults: several clients post concurrently to several rooms and follow them
 * live while the verify nemesis kills, pauses and partitions nodes (real processes, every peer link through
 * a proxy). Afterwards the chat checker judges everything every node holds and every client received:
 * seq contiguous from 1, one message per seq everywhere, no acknowledged post missing, none applied twice.
 * The same run with a planted bug (the database forgets its applied index and re-applies the log after a
 * restart) must be caught.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  checkChat,
  formatChatReport,
  type ChatPost,
  type NodeMessage,
  type ReceivedMessage,
} from '../../src/check/chat.js';
import { ChatClient } from '../../src/client/chat.js';
import { ChatError } from '../../src/client/chat-types.js';
import { makeRng } from '../../src/raft/rng.js';
import { VerifyCluster } from '../../src/verify/cluster.js';
import { Nemesis, type FaultKind } from '../../src/verify/nemesis.js';
import { PASSWORD, Recorder, nodeHistory } from './helpers.js';

const ROOMS = ['r0', 'r1', 'r2'];

interface RunResult {
  readonly report: ReturnType<typeof checkChat>;
  readonly faults: number;
  readonly acknowledged: number;
}

async function run(opts: {
  seed: number;
  seconds: number;
  clients: number;
  kinds: readonly FaultKind[];
  plantedBug?: 'reapply-after-restart';
  /** How long to wait for nodes and streams to catch up after the faults (they never do with the bug). */
  settleMs: number;
}): Promise<RunResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-chat-order-'));
  const cluster = await VerifyCluster.start({
    nodes: 3,
    dir,
    app: 'chat',
    tickMs: 20,
    electionTicks: 10,
    requestTimeoutMs: 1500,
    snapshotThreshold: 100_000,
    chatLoginsPerMinute: 1000,
    ...(opts.plantedBug === undefined ? {} : { chatPlantedBug: opts.plantedBug }),
  });
  const endpoints = cluster.ids.map((id) => cluster.url(id));
  const clients: ChatClient[] = [];
  const recorders = new Map<string, Map<string, Recorder>>();
  try {
    await cluster.waitLeader();
    for (let i = 0; i < opts.clients; i++) {
      const c = new ChatClient({ endpoints, timeoutMs: 2500, deadlineMs: 8000, backoffMs: 20, maxBackoffMs: 300 });
      clients.push(c);
      await c.register(`u${i}`, PASSWORD);
      await c.login(`u${i}`, PASSWORD);
      for (const r of ROOMS) {
        if (i === 0) await c.createRoom(r);
        else await c.joinRoom(r);
      }
    }
    clients.forEach((c, i) => {
      const byRoom = new Map<string, Recorder>();
      for (const r of ROOMS) byRoom.set(r, new Recorder(c.stream(r)));
      recorders.set(`u${i}`, byRoom);
    });

    const rng = makeRng(opts.seed);
    const nemesis = new Nemesis(cluster, {
      kinds: opts.kinds,
      rng,
      origin: process.hrtime.bigint(),
      gapMs: [300, 800],
      holdMs: [400, 1200],
    });
    const posts: ChatPost[] = [];
    const stopAt = Date.now() + opts.seconds * 1000;
    nemesis.start();
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; Date.now() < stopAt; k++) {
          const room = ROOMS[(i + k) % ROOMS.length] as string;
          const text = `u${i}-${k}`;
          try {
            const m = await c.post(room, text);
            posts.push({ client: `u${i}`, user: `u${i}`, room, text, outcome: 'ok', seq: m.seq });
          } catch (err) {
            const definite = err instanceof ChatError && err.status >= 400 && err.status < 500;
            posts.push({ client: `u${i}`, user: `u${i}`, room, text, outcome: definite ? 'fail' : 'unknown' });
          }
        }
      }),
    );
    await nemesis.stop();
    await cluster.healAll();
    await cluster.waitLeader();

    // Every node catches up; every client's streams catch up with the rooms' last seq.
    const token = clients[0]?.token as string;
    const deadline = Date.now() + opts.settleMs;
    let nodeViews = new Map<string, Map<string, NodeMessage[]>>();
    for (;;) {
      nodeViews = new Map();
      for (const id of cluster.ids) {
        const byRoom = new Map<string, NodeMessage[]>();
        for (const r of ROOMS) byRoom.set(r, await nodeHistory(cluster.url(id), token, r));
        nodeViews.set(`n${id}`, byRoom);
      }
      const last = new Map(
        ROOMS.map((r) => [r, Math.max(...[...nodeViews.values()].map((v) => v.get(r)?.length ?? 0))]),
      );
      const nodesEqual = ROOMS.every((r) => new Set([...nodeViews.values()].map((v) => v.get(r)?.length)).size === 1);
      const streamsDone = [...recorders.values()].every((byRoom) =>
        ROOMS.every((r) => (byRoom.get(r)?.received.at(-1)?.seq ?? 0) >= (last.get(r) ?? 0)),
      );
      if ((nodesEqual && streamsDone) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const clientViews = new Map<string, Map<string, ReceivedMessage[]>>();
    for (const [name, byRoom] of recorders) {
      clientViews.set(name, new Map([...byRoom].map(([r, rec]) => [r, rec.received])));
    }
    const report = checkChat({ posts, nodeViews, clientViews }, { requireCaughtUp: true });
    return { report, faults: nemesis.faults.length, acknowledged: posts.filter((p) => p.outcome === 'ok').length };
  } finally {
    for (const byRoom of recorders.values()) for (const r of byRoom.values()) r.close();
    for (const c of clients) c.close();
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('concurrent posters under kill, pause and partition faults: one order everywhere, nothing lost or doubled', async () => {
  const r = await run({ seed: 7, seconds: 12, clients: 4, kinds: ['kill', 'pause', 'partition'], settleMs: 30_000 });
  console.log(formatChatReport(r.report));
  console.log(`faults injected: ${r.faults}, posts acknowledged: ${r.acknowledged}`);
  assert.ok(r.faults >= 5, `the nemesis struck (${r.faults} faults)`);
  assert.ok(r.acknowledged >= 50, `clients made progress (${r.acknowledged} acknowledged posts)`);
  assert.equal(r.report.ok, true, formatChatReport(r.report));
});

test('the checker catches a planted bug: entries applied to SQLite twice after a restart', async () => {
  const r = await run({
    seed: 11,
    seconds: 6,
    clients: 3,
    kinds: ['kill'],
    plantedBug: 'reapply-after-restart',
    settleMs: 5000,
  });
  console.log(formatChatReport(r.report));
  assert.ok(r.faults >= 1, 'a node was killed and restarted');
  assert.equal(r.report.ok, false, 'the planted bug is reported');
  const kinds = new Set(r.report.violations.map((v) => v.kind));
  assert.ok(
    kinds.has('duplicate-post') || kinds.has('node-divergence') || kinds.has('node-seq'),
    `violations: ${[...kinds].join(', ')}`,
  );
});
