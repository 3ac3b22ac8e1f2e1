/**
 * Chat under a partition and across a full restart, with real node processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertExactly,
  client,
  digests,
  nodeHistory,
  PASSWORD,
  startChatCluster,
  user,
  waitConverged,
} from './helpers.js';

async function setDropped(url: string, drop: number[]): Promise<void> {
  const res = await fetch(`${url}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ drop }),
  });
  assert.equal(res.status, 200);
}

test('partition: the isolated leader accepts no post, the majority goes on; after healing all databases match', async () => {
  const c = await startChatCluster(3);
  const clients = [];
  try {
    const ann = await user(c.endpoints, 'ann', ['general', 'random']);
    clients.push(ann);
    const texts: string[] = [];
    for (let k = 0; k < 5; k++) texts.push((await ann.post('general', `before-${k}`)).text);

    const isolated = await c.cluster.waitLeader();
    const others = c.cluster.ids.filter((id) => id !== isolated);
    await setDropped(c.cluster.url(isolated), others);
    for (const id of others) await setDropped(c.cluster.url(id), [isolated]);

    // The isolated node may still think it leads for a moment: a post sent to it must not be acknowledged.
    const token = ann.token as string;
    const refused = await fetch(`${c.cluster.url(isolated)}/chat/rooms/general/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ text: 'from the minority', request_id: 'minority:1' }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: string }).error, 'No quorum');
    assert.ok(refused.headers.get('retry-after') !== null);

    // The majority side elects a leader and serves a client that knows only its nodes.
    const majority = client(others.map((id) => c.cluster.url(id)));
    clients.push(majority);
    await majority.login('ann', PASSWORD);
    for (let k = 0; k < 10; k++) texts.push((await majority.post('general', `during-${k}`)).text);
    await majority.post('random', 'another room');
    // The isolated node still serves what it has, marked stale.
    const stale = await nodeHistory(c.cluster.url(isolated), token, 'general');
    assert.deepEqual(
      stale.map((m) => m.text),
      texts.slice(0, 5),
    );

    for (const id of c.cluster.ids) await setDropped(c.cluster.url(id), []);
    await waitConverged(c.cluster);
    for (const id of c.cluster.ids) {
      assertExactly(`node ${id}`, await nodeHistory(c.cluster.url(id), token, 'general'), texts);
    }
    assert.equal(new Set(digests(c)).size, 1, 'the isolated node’s database ends identical in content');
  } finally {
    for (const cl of clients) cl.close();
    await c.cleanup();
  }
});

test('persistence: every account, room, session and message survives killing and restarting every node', async () => {
  const c = await startChatCluster(3);
  const clients = [];
  try {
    const ann = await user(c.endpoints, 'ann', ['general', 'dev']);
    const bob = await user(c.endpoints, 'bob', ['general']);
    clients.push(ann, bob);
    const general: string[] = [];
    for (let k = 0; k < 20; k++) general.push((await (k % 2 ? ann : bob).post('general', `g-${k}`)).text);
    await ann.post('dev', 'dev note');
    await waitConverged(c.cluster);
    const before = digests(c);

    await c.cluster.stopAll('SIGKILL');
    for (const id of c.cluster.ids) await c.cluster.startNode(id);
    await c.cluster.waitLeader(10_000);
    await waitConverged(c.cluster);
    assert.deepEqual(digests(c), before, 'the same content on every node as before');

    // Old tokens still work, passwords still log in, rooms and messages are all there.
    const rooms = await ann.rooms();
    assert.deepEqual(
      rooms.map((r) => [r.name, r.members, r.lastSeq]),
      [
        ['dev', 1, 1],
        ['general', 2, 20],
      ],
    );
    assertExactly('general', (await bob.messages('general', { limit: 1000 })).messages, general);
    const again = client(c.endpoints);
    clients.push(again);
    await again.login('bob', PASSWORD);
    await again.post('general', 'after the restart');
    assert.equal((await ann.messages('general', { after: 20 })).messages[0]?.seq, 21);
  } finally {
    for (const cl of clients) cl.close();
    await c.cleanup();
  }
});
