import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/client.js';
import { KvError } from '../../src/client/errors.js';
import { SseParser, type SseEvent } from '../../src/client/chat-stream.js';
import { WatchCompactedError, type WatchEvent } from '../../src/client/watch.js';
import { AuthAdmin } from '../../src/client/auth.js';
import type { LocalCluster } from '../../src/server/local-cluster.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { call, put, startCluster } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Reads a watch stream until `until` holds (or the time is up), then closes it. */
async function readStream(
  url: string,
  headers: Record<string, string>,
  until: (evs: SseEvent[]) => boolean,
  timeoutMs = 5000,
): Promise<{ status: number; events: SseEvent[]; body: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const res = await fetch(url, { headers, signal: ac.signal });
  const events: SseEvent[] = [];
  if (res.status !== 200) {
    clearTimeout(timer);
    return { status: res.status, events, body: await res.text() };
  }
  const parser = new SseParser();
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      events.push(...parser.push(chunk));
      if (until(events)) break;
    }
  } catch {
    // aborted: time is up
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return { status: res.status, events, body: '' };
}

const changes = (evs: SseEvent[]) => evs.filter((e) => e.event === 'put' || e.event === 'delete');

describe('GET /watch (raft mode)', () => {
  let cluster: LocalCluster;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ cluster, cleanup } = await startCluster({ storage: 'disk', watchHistory: 200, snapshotThreshold: 100 }));
    await cluster.waitLeader();
  });
  after(() => cleanup());

  test('a follower streams committed changes after a revision, in order, with ids; Last-Event-ID resumes', async () => {
    const leader = await cluster.waitLeader();
    const follower = cluster.ids.find((id) => id !== leader) as number;
    const first = await put(cluster.url(leader), 'w/a', { value: 1 });
    const start = first.body.revision as number;
    await put(cluster.url(leader), 'other', { value: 'x' });
    await put(cluster.url(leader), 'w/b', { value: { n: 2 } });
    await call(cluster.url(leader), 'DELETE', '/kvs/w%2Fa');
    const txn = await call(cluster.url(leader), 'POST', '/txn', {
      compare: [],
      success: [
        { op: 'put', key: 'w/c', value: 3 },
        { op: 'put', key: 'w/d', value: 4 },
      ],
    });
    assert.equal(txn.status, 200, JSON.stringify(txn.body));
    const r = await readStream(
      `${cluster.url(follower)}/watch?prefix=w/&since_revision=${start - 1}`,
      {},
      (evs) => changes(evs).length >= 5,
    );
    assert.equal(r.status, 200);
    const got = changes(r.events).map((e) => ({ e: e.event, id: e.id, ...(JSON.parse(e.data) as object) }));
    assert.deepEqual(
      got.map((g) => [g.e, (g as unknown as WatchEvent).key]),
      [
        ['put', 'w/a'],
        ['put', 'w/b'],
        ['delete', 'w/a'],
        ['put', 'w/c'],
        ['put', 'w/d'],
      ],
    );
    const revs = got.map((g) => (g as unknown as WatchEvent).revision);
    assert.equal(revs[0], start);
    assert.ok(
      revs.every((v, i) => i === 0 || v >= (revs[i - 1] as number)),
      `revisions in order: ${revs}`,
    );
    // The transaction's two changes share a revision; only the second carries the id.
    assert.equal(revs[3], revs[4]);
    assert.equal(got[3]?.id, undefined);
    assert.equal(got[4]?.id, String(revs[4]));
    assert.deepEqual((got[1] as unknown as WatchEvent).value, { n: 2 });
    // Resume on another node after the delete: only the transaction follows.
    const other = cluster.ids.find((id) => id !== follower) as number;
    const resumed = await readStream(
      `${cluster.url(other)}/watch?prefix=w/`,
      { 'last-event-id': String(revs[2]) },
      (evs) => changes(evs).length >= 2,
    );
    assert.deepEqual(
      changes(resumed.events).map((e) => (JSON.parse(e.data) as WatchEvent).key),
      ['w/c', 'w/d'],
    );
    // Without a revision: a progress event with the current revision first, then only new changes.
    const live = readStream(`${cluster.url(follower)}/watch?prefix=w/`, {}, (evs) => changes(evs).length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    const later = await put(cluster.url(leader), 'w/later', { value: 5 });
    const l = await live;
    assert.equal(l.events[0]?.event, 'progress');
    assert.ok(Number(l.events[0]?.id) >= (revs[4] as number));
    assert.deepEqual(
      changes(l.events).map((e) => [(JSON.parse(e.data) as WatchEvent).key, e.id]),
      [['w/later', String(later.body.revision)]],
    );
  });

  test('bad input is a 400; a revision older than the history is 410 with the compact revision', async () => {
    const leader = await cluster.waitLeader();
    const bad = await call(cluster.url(leader), 'GET', '/watch?since_revision=-1');
    assert.equal(bad.status, 400);
    const badId = await readStream(`${cluster.url(leader)}/watch`, { 'last-event-id': 'abc' }, () => true);
    assert.equal(badId.status, 400);
    assert.match(badId.body, /Last-Event-ID/);
    // The history keeps 200 changes: 250 more push revision 1 out.
    const c = new Client({ endpoints: [...cluster.urls.values()] });
    for (let i = 0; i < 250; i += 25)
      await Promise.all(Array.from({ length: 25 }, (_, j) => c.put(`fill/${i + j}`, j)));
    for (const id of cluster.ids) {
      const r = await call(cluster.url(id), 'GET', '/watch?since_revision=1');
      assert.equal(r.status, 410, `node ${id}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'Revision compacted');
      assert.ok((r.body.compact_revision as number) > 1);
    }
    const w = c.watch('', { sinceRevision: 1 });
    await assert.rejects(
      (async () => {
        for await (const _ of w) break;
      })(),
      WatchCompactedError,
    );
  });

  test('a restarted node replays changes after its snapshot only: older revisions are compacted', async () => {
    const leader = await cluster.waitLeader();
    const follower = cluster.ids.find((id) => id !== leader) as number;
    const before = await put(cluster.url(leader), 'restart/x', { value: 1 });
    await cluster.kill(follower);
    await cluster.startNode(follower);
    const st = await call(cluster.url(follower), 'GET', '/status');
    const watch = (st.body.watch ?? {}) as { compact_revision?: number };
    // The node restarted from its snapshot (taken every 100 entries; hundreds were written above) and
    // replayed its log after it: its history starts at the snapshot.
    const snapshotIndex = (st.body.storage as { snapshotIndex: number }).snapshotIndex;
    assert.ok(snapshotIndex > 0, `a snapshot was taken: ${snapshotIndex}`);
    assert.equal(watch.compact_revision, snapshotIndex);
    const old = await call(cluster.url(follower), 'GET', `/watch?since_revision=${snapshotIndex - 1}`);
    assert.equal(old.status, 410);
    assert.equal(old.body.compact_revision, snapshotIndex);
    // Changes after the compact revision are replayed from the log: the put is there.
    const since = Math.max(watch.compact_revision as number, (before.body.revision as number) - 1);
    const r = await readStream(
      `${cluster.url(follower)}/watch?prefix=restart/&since_revision=${since}`,
      {},
      (evs) => changes(evs).length >= 1,
    );
    assert.equal(r.status, 200);
    assert.deepEqual(
      changes(r.events)
        .map((e) => JSON.parse(e.data) as WatchEvent)
        .map((e) => e.revision),
      [before.body.revision],
    );
  });

  test('failover: a watcher that moves to another node sees every acknowledged change exactly once, in order', async () => {
    const leader = await cluster.waitLeader();
    const urls = [cluster.url(leader), ...cluster.ids.filter((id) => id !== leader).map((id) => cluster.url(id))];
    const startRev = ((await put(urls[0] as string, 'fo-start', { value: 0 })).body.revision as number) ?? 0;
    const seen: WatchEvent[] = [];
    const reconnects: string[] = [];
    const watcher = new Client({ endpoints: urls }).watch('fo/', {
      sinceRevision: startRev,
      idleMs: 3000,
      onReconnect: (r) => reconnects.push(`${r.endpoint} ${r.reason}`),
    });
    const reading = (async () => {
      for await (const c of watcher) seen.push(c);
    })();
    const acked: { key: string; value: number; revision: number }[] = [];
    let stop = false;
    const writer = async (w: number) => {
      const c = new Client({ endpoints: urls, deadlineMs: 20_000 });
      for (let i = 0; !stop; i++) {
        const r = await c.put(`fo/${w}/${i}`, i);
        acked.push({ key: `fo/${w}/${i}`, value: i, revision: r.revision as number });
      }
    };
    const writers = [1, 2, 3, 4].map(writer);
    await new Promise((r) => setTimeout(r, 800));
    await cluster.kill(leader);
    await cluster.waitLeader(10_000, [leader]);
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(writers);
    const last = Math.max(...acked.map((a) => a.revision));
    const deadline = Date.now() + 10_000;
    while ((seen[seen.length - 1]?.revision ?? 0) < last && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    watcher.close();
    await reading;
    await cluster.startNode(leader);
    assert.ok(watcher.connections >= 2, `the watcher reconnected: ${reconnects.join('; ')}`);
    // In commit order, each (revision, key) once.
    for (let i = 1; i < seen.length; i++) {
      assert.ok((seen[i] as WatchEvent).revision > (seen[i - 1] as WatchEvent).revision, `order at ${i}`);
    }
    const byKey = new Map(seen.map((s) => [s.key, s]));
    assert.equal(byKey.size, seen.length, 'no key twice (each is written once)');
    assert.ok(acked.length > 50, `writes acknowledged: ${acked.length}`);
    for (const a of acked) {
      const s = byKey.get(a.key);
      assert.ok(s !== undefined, `acknowledged ${a.key} at ${a.revision} was not seen`);
      assert.equal(s.revision, a.revision, a.key);
      assert.equal(s.value, a.value, a.key);
    }
    // Nothing else was seen than what the writers wrote (a write whose answer was lost may appear once).
    for (const s of seen) assert.match(s.key, /^fo\/[1-4]\/\d+$/);
  });

  test('quorumkv watch prints each change as it is committed', async () => {
    const leader = await cluster.waitLeader();
    const start = (await put(cluster.url(leader), 'other-key', { value: 0 })).body.revision as number;
    const endpoints = [...cluster.urls.values()].join(',');
    const cli = new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        process.execPath,
        [MAIN, 'watch', 'cli/', '--since-revision', String(start), '--count', '3', '--endpoints', endpoints],
        { timeout: 15_000 },
        (err, stdout, stderr) =>
          err === null ? resolve({ stdout, stderr }) : reject(new Error(`${err.message} ${stderr}`)),
      ),
    );
    const a = await put(cluster.url(leader), 'cli/a', { value: { x: 1 } });
    await put(cluster.url(leader), 'not-cli', { value: 1 });
    const b = await put(cluster.url(leader), 'cli/b', { value: 'text' });
    const d = await call(cluster.url(leader), 'DELETE', '/kvs/cli%2Fa');
    const out = await cli;
    assert.deepEqual(out.stdout.trim().split('\n'), [
      `${a.body.revision}\tput\tcli/a\t{"x":1}`,
      `${b.body.revision}\tput\tcli/b\t"text"`,
      `${d.body.revision}\tdelete\tcli/a`,
    ]);
  });

  test('with auth on, watching needs read permission on the prefix', async () => {
    const { cluster: ac, cleanup: acClean } = await startCluster({ storage: 'memory', auth: true });
    try {
      const urls = [...ac.urls.values()];
      const root = new Client({ endpoints: urls, auth: { user: 'root', password: ac.rootPassword as string } });
      const admin = new AuthAdmin(root);
      await admin.addUser('ann', 'ann-password');
      await admin.addRole('reader');
      await admin.grantPermission('reader', { prefix: 'pub/', read: true, write: false });
      await admin.grantRole('ann', 'reader');
      const ann = new Client({ endpoints: urls, auth: { user: 'ann', password: 'ann-password' } });
      const anon = await call(urls[0] as string, 'GET', '/watch?prefix=pub/');
      assert.equal(anon.status, 401);
      const denied = ann.watch('secret/');
      await assert.rejects(
        (async () => {
          for await (const _ of denied) break;
        })(),
        (e: unknown) => e instanceof KvError && e.status === 403,
      );
      const w = ann.watch('pub/');
      const it = w[Symbol.asyncIterator]();
      const next = it.next();
      await new Promise((r) => setTimeout(r, 300));
      await root.put('pub/x', 'hello');
      const got = await next;
      assert.equal(got.done, false);
      assert.deepEqual([got.value?.key, got.value?.value], ['pub/x', 'hello']);
      // Revoking the permission ends the watch with the next change.
      await admin.revokePermission('reader', 'pub/');
      await root.put('pub/y', 'after');
      await assert.rejects(it.next(), (e: unknown) => e instanceof KvError && e.status === 403);
      w.close();
    } finally {
      await acClean();
    }
  });
});
