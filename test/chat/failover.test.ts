/**
 * Chat under node failures, with real node processes: the leader killed mid-conversation; two of three
 * nodes down (history readable, posts held in the client's outbox and delivered once); two of five down.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatMessage } from '../../src/client/chat-types.js';
import { assertExactly, digests, nodeHistory, Recorder, startChatCluster, user, waitConverged } from './helpers.js';

test('leader failure: clients keep posting and receiving; every message once, in one order', async () => {
  const c = await startChatCluster(3);
  const clients = [];
  try {
    const ann = await user(c.endpoints, 'ann', ['general']);
    const bob = await user(c.endpoints, 'bob', ['general']);
    clients.push(ann, bob);
    // Each listens through a different node.
    const annStream = new Recorder(ann.stream('general'));
    const bobStream = new Recorder(bob.stream('general'));
    const texts: string[] = [];
    const postRound = async (round: string, n: number) => {
      await Promise.all(
        [ann, bob].map(async (cl, i) => {
          for (let k = 0; k < n; k++) {
            const text = `${round}-${i === 0 ? 'ann' : 'bob'}-${k}`;
            texts.push(text);
            await cl.post('general', text);
          }
        }),
      );
    };
    await postRound('before', 15);
    const leader = await c.cluster.waitLeader();
    await c.cluster.kill(leader);
    await postRound('after', 15);
    await annStream.waitFor(texts.length);
    await bobStream.waitFor(texts.length);
    assertExactly('ann stream', annStream.received, texts);
    assertExactly('bob stream', bobStream.received, texts);
    assert.deepEqual(annStream.received, bobStream.received, 'both saw one order');
    const newLeader = await c.cluster.waitLeader(10_000, [leader]);
    assert.notEqual(newLeader, leader);

    // The killed node comes back and catches up; every node holds the same history and content.
    await c.cluster.startNode(leader);
    await waitConverged(c.cluster);
    const token = ann.token as string;
    for (const id of c.cluster.ids) {
      assert.deepEqual(await nodeHistory(c.cluster.url(id), token, 'general'), annStream.received, `node ${id}`);
    }
    assert.equal(new Set(digests(c)).size, 1, 'identical databases');
    annStream.close();
    bobStream.close();
  } finally {
    for (const cl of clients) cl.close();
    await c.cleanup();
  }
});

test('two of three down: history readable (stale), posts queued and delivered exactly once after a restart', async () => {
  // A small snapshot threshold: the node down longest catches up by installing a snapshot (a database file).
  const c = await startChatCluster(3, { snapshotThreshold: 40, snapshotTrailing: 5 });
  const clients = [];
  try {
    const ann = await user(c.endpoints, 'ann', ['general']);
    clients.push(ann);
    const first: string[] = [];
    for (let k = 0; k < 5; k++) first.push((await ann.post('general', `first-${k}`)).text);
    const leader = await c.cluster.waitLeader();
    const [f1, f2] = c.cluster.ids.filter((id) => id !== leader) as [number, number];
    await c.cluster.kill(f1);
    await c.cluster.kill(f2);

    const hist = await ann.messages('general', { allowStale: true });
    assert.equal(hist.stale, true, 'marked stale');
    assert.deepEqual(
      hist.messages.map((m) => m.text),
      first,
    );

    const queued = ['held-0', 'held-1', 'held-2'].map((t) => ann.postWithOutbox('general', t));
    const delivered: ChatMessage[] = [];
    for (const q of queued) void q.delivered.then((m) => delivered.push(m));
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(delivered.length, 0, 'nothing can commit without a majority');
    assert.equal(ann.outbox.length, 3);

    await c.cluster.startNode(f1);
    const got = await Promise.all(queued.map((q) => q.delivered));
    assert.deepEqual(
      got.map((m) => [m.seq, m.text]),
      [
        [6, 'held-0'],
        [7, 'held-1'],
        [8, 'held-2'],
      ],
      'delivered in order, once',
    );
    assert.equal(ann.outbox.length, 0);
    // Enough traffic to snapshot and compact past what f2 holds.
    const more: string[] = [];
    for (let k = 0; k < 60; k++) more.push((await ann.post('general', `more-${k}`)).text);

    await c.cluster.startNode(f2);
    await waitConverged(c.cluster);
    const all = [...first, 'held-0', 'held-1', 'held-2', ...more];
    for (const id of c.cluster.ids) {
      assertExactly(`node ${id}`, await nodeHistory(c.cluster.url(id), ann.token as string, 'general'), all);
    }
    assert.equal(new Set(digests(c)).size, 1, 'identical databases');
    const st = (await (await fetch(`${c.cluster.url(f2)}/status`)).json()) as {
      counters: { snapshotsRestored: number };
    };
    assert.ok(st.counters.snapshotsRestored >= 1, 'the late node installed a snapshot');
  } finally {
    for (const cl of clients) cl.close();
    await c.cleanup();
  }
});

test('two of five down: posting goes on; the two catch up when they return', async () => {
  const c = await startChatCluster(5);
  const clients = [];
  try {
    const ann = await user(c.endpoints, 'ann', ['general']);
    clients.push(ann);
    const texts: string[] = [];
    for (let k = 0; k < 5; k++) texts.push((await ann.post('general', `a-${k}`)).text);
    const leader = await c.cluster.waitLeader();
    const down = [leader, c.cluster.ids.find((id) => id !== leader) as number];
    for (const id of down) await c.cluster.kill(id);
    for (let k = 0; k < 10; k++) texts.push((await ann.post('general', `b-${k}`)).text);
    const hist = await ann.messages('general');
    assert.equal(hist.stale, false, 'linearizable reads still served');
    for (const id of down) await c.cluster.startNode(id);
    await waitConverged(c.cluster);
    for (const id of c.cluster.ids) {
      assertExactly(`node ${id}`, await nodeHistory(c.cluster.url(id), ann.token as string, 'general'), texts);
    }
    assert.equal(new Set(digests(c)).size, 1);
  } finally {
    for (const cl of clients) cl.close();
    await c.cleanup();
  }
});
