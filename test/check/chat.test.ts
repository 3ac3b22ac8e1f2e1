import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChatHistoryError,
  checkChat,
  formatChatReport,
  type ChatCheckResult,
  type ChatPost,
  type ChatViolationKind,
  type NodeMessage,
  type ReceivedMessage,
} from '../../src/check/chat.js';

interface History {
  posts: ChatPost[];
  nodeViews: Record<string, Record<string, NodeMessage[]>>;
  clientViews: Record<string, Record<string, ReceivedMessage[]>>;
}

interface Synthetic {
  readonly history: History;
  /** room → the full committed log. */
  readonly logs: Map<string, NodeMessage[]>;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A correct history: per room, posts until `messagesPerRoom` are committed. Most posts are acknowledged; some
 * are retried (an unknown attempt, then an ok one with the same request id), some are unknown and landed,
 * some unknown and lost, some refused. Nodes n1 and n2 hold everything; n3 lags 5 messages behind in the first
 * room and never saw the second. Each client received a window of each room (started late, stopped early).
 */
function synthetic(opts: { rooms: number; messagesPerRoom: number; clients: number; seed: number }): Synthetic {
  const rnd = mulberry32(opts.seed);
  const posts: ChatPost[] = [];
  const logs = new Map<string, NodeMessage[]>();
  let time = 1_700_000_000_000;
  for (let r = 0; r < opts.rooms; r++) {
    const room = `room${r}`;
    const log: NodeMessage[] = [];
    for (let i = 0; log.length < opts.messagesPerRoom; i++) {
      const c = Math.floor(rnd() * opts.clients);
      const client = `c${c}`;
      const user = `u${c}`;
      const text = `${client}-${room}-${i}`;
      const requestId = `${client}:${r}:${i}`;
      const base = { client, room, text, requestId, user };
      const commit = (): number => {
        time += 1 + Math.floor(rnd() * 3);
        log.push({ seq: log.length + 1, user, text, time });
        return log.length;
      };
      const roll = rnd();
      if (roll < 0.7) posts.push({ ...base, outcome: 'ok', seq: commit() });
      else if (roll < 0.78) {
        posts.push({ ...base, outcome: 'unknown' });
        posts.push({ ...base, outcome: 'ok', seq: commit() });
      } else if (roll < 0.86) {
        posts.push({ ...base, outcome: 'unknown' });
        commit();
      } else if (roll < 0.93) posts.push({ ...base, outcome: 'unknown' });
      else posts.push({ ...base, outcome: 'fail' });
    }
    logs.set(room, log);
  }
  const nodeViews: History['nodeViews'] = { n1: {}, n2: {}, n3: {} };
  let r = 0;
  for (const [room, log] of logs) {
    nodeViews.n1![room] = log.map((m) => ({ ...m }));
    nodeViews.n2![room] = log.map((m) => ({ ...m }));
    if (r === 0) nodeViews.n3![room] = log.slice(0, log.length - 5).map((m) => ({ ...m }));
    else if (r !== 1) nodeViews.n3![room] = log.map((m) => ({ ...m }));
    r++;
  }
  const clientViews: History['clientViews'] = {};
  for (let c = 0; c < opts.clients; c++) {
    const views: Record<string, ReceivedMessage[]> = {};
    for (const [room, log] of logs) {
      const start = Math.floor(rnd() * (log.length / 3));
      const end = log.length - Math.floor(rnd() * 4);
      const withTime = rnd() < 0.5;
      views[room] = log
        .slice(start, end)
        .map((m) => (withTime ? { ...m } : { seq: m.seq, user: m.user, text: m.text }));
    }
    clientViews[`c${c}`] = views;
  }
  return { history: { posts, nodeViews, clientViews }, logs };
}

const small = (): Synthetic => synthetic({ rooms: 3, messagesPerRoom: 40, clients: 4, seed: 7 });
const kinds = (r: ChatCheckResult): ChatViolationKind[] => [...new Set(r.violations.map((v) => v.kind))].sort();
const allNodes = (h: History, room: string, f: (list: NodeMessage[]) => NodeMessage[]): void => {
  for (const views of Object.values(h.nodeViews)) if (views[room] !== undefined) views[room] = f(views[room]);
};
const firstPost = (h: History, pred: (p: ChatPost) => boolean): ChatPost => {
  const p = h.posts.find(pred);
  assert.ok(p !== undefined, 'the synthetic history has such a post');
  return p;
};
/** The texts committed in a room. */
const landed = (s: Synthetic, room: string): Set<string> => new Set(s.logs.get(room)!.map((m) => m.text));

test('a correct history passes: retries, unknown posts landed or lost, a lagging node, late and early clients', () => {
  const s = small();
  const r = checkChat(s.history);
  assert.equal(r.ok, true, formatChatReport(r));
  assert.deepEqual(r.violations, []);
  assert.equal(r.stats.rooms, 3);
  assert.equal(r.stats.messages, 120);
  assert.equal(r.stats.nodes, 3);
  assert.equal(r.stats.clients, 4);
  assert.ok(r.stats.acknowledged > 0 && r.stats.unknown > 0 && r.stats.failed > 0);
  assert.ok(r.stats.unknownLanded > 0 && r.stats.unknownLanded < r.stats.unknown, 'some unknown posts landed');
  assert.ok(r.stats.attempts > r.stats.posts, 'some posts were retried');
  // n3 is behind in room0 and has nothing of room1: warnings only.
  assert.equal(r.stats.nodesBehind, 2);
  assert.deepEqual(
    r.warnings.map((w) => [w.kind, w.room, w.nodes]),
    [
      ['node-behind', 'room0', ['n3']],
      ['node-behind', 'room1', ['n3']],
    ],
  );
  assert.match(formatChatReport(r), /^chat history: OK/);
});

test('requireCaughtUp turns a node behind into a violation', () => {
  const r = checkChat(small().history, { requireCaughtUp: true });
  assert.equal(r.ok, false);
  assert.deepEqual(kinds(r), ['node-behind']);
  assert.equal(r.violations[0]!.seq, 36);
  assert.match(r.violations[0]!.message, /n3 holds up to seq 35 of 40/);
});

test('maps are accepted as well as plain objects', () => {
  const s = small();
  const toMap = <T>(o: Record<string, Record<string, T[]>>) =>
    new Map(Object.entries(o).map(([k, v]) => [k, new Map(Object.entries(v))]));
  const r = checkChat({
    posts: s.history.posts,
    nodeViews: toMap(s.history.nodeViews),
    clientViews: toMap(s.history.clientViews),
  });
  assert.equal(r.ok, true, formatChatReport(r));
  assert.equal(r.stats.messages, 120);
});

test('node-seq: a gap on one node', () => {
  const s = small();
  const n1 = s.history.nodeViews.n1!;
  n1.room2 = n1.room2!.filter((m) => m.seq !== 17);
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['node-seq'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  const v = r.violations[0]!;
  assert.deepEqual([v.room, v.seq, v.nodes], ['room2', 17, ['n1']]);
  assert.match(v.message, /gap: seq 17 missing before seq 18/);
});

test('node-seq: a seq listed twice and one out of order', () => {
  const s = small();
  const n2 = s.history.nodeViews.n2!;
  const l = n2.room2!;
  n2.room2 = [...l.slice(0, 10), l[9]!, ...l.slice(10)];
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['node-seq']);
  assert.match(r.violations[0]!.message, /seq 10 listed twice/);

  const s2 = small();
  const l2 = s2.history.nodeViews.n2!.room2!;
  [l2[4], l2[5]] = [l2[5]!, l2[4]!];
  const r2 = checkChat(s2.history);
  assert.deepEqual(kinds(r2), ['node-seq'], formatChatReport(r2));
  assert.deepEqual(
    r2.violations.map((v) => v.message),
    ['gap: seq 5 missing before seq 6', 'seq 5 out of order, after seq 6'],
  );
});

test('node-seq: an absurd seq is a gap, not a billion-step loop', () => {
  const s = small();
  const n1 = s.history.nodeViews.n1!;
  const last = n1.room2!.at(-1)!;
  n1.room2!.push({ ...last, seq: 1_000_000_000 });
  n1.room2!.push({ ...last, seq: 2.5 });
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['duplicate-post', 'node-seq'], formatChatReport(r));
  assert.deepEqual(
    r.violations.filter((v) => v.kind === 'node-seq').map((v) => v.message),
    [
      `gap: seqs 41..999999999 missing before seq 1000000000`,
      `invalid seq 2.5 (${last.user}: "${last.text}" @${last.time})`,
    ],
  );
  assert.match(r.violations.find((v) => v.kind === 'duplicate-post')!.message, /appears at seqs 40, 1000000000/);
  assert.equal(r.stats.messages, 121);
  assert.equal(r.warnings.filter((w) => w.room === 'room2').length, 2, 'n2 and n3 are now behind in room2');
});

test('node-divergence: two nodes disagree at a seq; the odd node is named', () => {
  const s = small();
  const m = s.history.nodeViews.n2!.room0![6]!;
  s.history.nodeViews.n2!.room0![6] = { ...m, time: m.time + 1 };
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['node-divergence'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  const v = r.violations[0]!;
  assert.deepEqual([v.room, v.seq, v.nodes], ['room0', 7, ['n2']]);
  assert.match(v.message, /n2 disagrees at seq 7: .* where n1, n3 have /);
});

test('node-divergence: two messages swapped on one node make one run', () => {
  const s = small();
  const l = s.history.nodeViews.n3!.room2!;
  const [a, b] = [l[20]!, l[21]!];
  l[20] = { ...b, seq: a.seq };
  l[21] = { ...a, seq: b.seq };
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['node-divergence'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  assert.match(r.violations[0]!.message, /n3 disagrees at seqs 21\.\.22/);
});

test('client-seq: a client receives a seq twice', () => {
  const s = small();
  const v = s.history.clientViews.c1!;
  const l = v.room1!;
  v.room1 = [...l.slice(0, 6), l[5]!, ...l.slice(6)];
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['client-seq'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  assert.deepEqual([r.violations[0]!.client, r.violations[0]!.seq], ['c1', l[5]!.seq]);
  assert.match(r.violations[0]!.message, /twice in a row/);

  // The same seq again after a later one (a stream reconnect that resumed too early).
  const s2 = small();
  const l2 = s2.history.clientViews.c2!.room0!;
  s2.history.clientViews.c2!.room0 = [...l2.slice(0, 8), l2[3]!, ...l2.slice(8)];
  const r2 = checkChat(s2.history);
  assert.deepEqual(kinds(r2), ['client-seq']);
  assert.match(r2.violations[0]!.message, /duplicate or out of order/);
});

test('client-seq: a client skips a seq', () => {
  const s = small();
  const v = s.history.clientViews.c3!;
  const l = v.room2!;
  const skipped = l[4]!.seq;
  v.room2 = l.filter((m) => m.seq !== skipped);
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['client-seq'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  assert.equal(r.violations[0]!.client, 'c3');
  assert.match(r.violations[0]!.message, new RegExp(`skipped seq ${skipped} `));
});

test('client-mismatch: a client received another message than the nodes hold', () => {
  const s = small();
  const l = s.history.clientViews.c0!.room0!;
  l[3] = { ...l[3]!, user: 'someone-else' };
  l[4] = { ...l[4]!, text: l[4]!.text + '!' };
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['client-mismatch'], formatChatReport(r));
  assert.equal(r.violations.length, 1, 'consecutive seqs make one run');
  assert.match(r.violations[0]!.message, /c0 received other messages than the nodes hold at seqs \d+\.\.\d+/);

  // A message received past the end of every node's history (seen, then lost).
  const s2 = small();
  const l2 = s2.history.clientViews.c0!.room1!;
  l2.push(...s2.logs.get('room1')!.slice(l2[l2.length - 1]!.seq));
  l2.push({ seq: 41, user: 'u0', text: 'c0-room1-lost' });
  const r2 = checkChat({
    ...s2.history,
    posts: [...s2.history.posts, { client: 'c0', room: 'room1', text: 'c0-room1-lost', outcome: 'unknown' }],
  });
  assert.deepEqual(kinds(r2), ['client-mismatch'], formatChatReport(r2));
  assert.match(r2.violations[0]!.message, /which no node holds/);
});

test('ack-missing: the acknowledged tail of a room is lost on every node', () => {
  const s = small();
  const h = s.history;
  const lastOk = h.posts.filter((p) => p.room === 'room2' && p.outcome === 'ok').at(-1)!;
  const cut = lastOk.seq!;
  allNodes(h, 'room2', (l) => l.filter((m) => m.seq < cut));
  for (const views of Object.values(h.clientViews)) views.room2 = views.room2!.filter((m) => m.seq < cut);
  const r = checkChat(h);
  assert.deepEqual(kinds(r), ['ack-missing'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  const v = r.violations[0]!;
  assert.deepEqual([v.room, v.seq, v.text, v.client], ['room2', cut, lastOk.text, lastOk.client]);
  assert.match(v.message, /was acknowledged at seq \d+ but is missing \(no node holds it\)/);
});

test('ack-missing: an acknowledged seq holds another post', () => {
  const s = small();
  const lost = firstPost(s.history, (p) => p.outcome === 'unknown' && !landed(s, p.room).has(p.text));
  const i = s.history.posts.indexOf(lost);
  s.history.posts[i] = { ...lost, outcome: 'ok', seq: 3 };
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['ack-missing'], formatChatReport(r));
  assert.match(r.violations[0]!.message, /missing \(it holds /);
});

test('ack-misplaced: an acknowledged post sits at another seq', () => {
  const s = small();
  const p = firstPost(s.history, (q) => q.outcome === 'ok' && q.room === 'room1' && q.seq! > 5);
  const i = s.history.posts.indexOf(p);
  s.history.posts[i] = { ...p, seq: p.seq! - 1 };
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['ack-misplaced'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  assert.match(r.violations[0]!.message, new RegExp(`acknowledged at seq ${p.seq! - 1} but sits at seq ${p.seq}`));
});

test('duplicate-post: an entry applied twice, on every node', () => {
  const s = small();
  const twice = s.logs.get('room0')![11]!;
  s.history.nodeViews.n3!.room0 = s.logs.get('room0')!.map((m) => ({ ...m })); // n3 caught up
  allNodes(s.history, 'room0', (l) => [...l, { ...twice, seq: l.length + 1, time: twice.time + 1000 }]);
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['duplicate-post'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  const v = r.violations[0]!;
  assert.deepEqual([v.room, v.seq, v.text, v.nodes], ['room0', 41, twice.text, ['n1', 'n2', 'n3']]);
  assert.match(v.message, /appears at seqs 12, 41/);
});

test('duplicate-post: one node applied an entry twice after a restart (its later seqs shift)', () => {
  const s = small();
  const l = s.history.nodeViews.n2!.room1!;
  const k = 9;
  s.history.nodeViews.n2!.room1 = [
    ...l.slice(0, k + 1),
    { ...l[k]!, seq: k + 2 },
    ...l.slice(k + 1).map((m) => ({ ...m, seq: m.seq + 1 })),
  ];
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['duplicate-post', 'node-divergence'], formatChatReport(r));
  const dup = r.violations.find((v) => v.kind === 'duplicate-post')!;
  assert.deepEqual([dup.room, dup.seq, dup.nodes], ['room1', k + 2, ['n2']]);
  const div = r.violations.filter((v) => v.kind === 'node-divergence');
  assert.equal(div.length, 1, 'the shifted tail is one run');
  assert.deepEqual(div[0]!.nodes, ['n2']);
});

test('duplicate-post: an unknown post that landed twice', () => {
  const s = small();
  const p = firstPost(
    s.history,
    (q) => q.outcome === 'unknown' && q.room === 'room2' && landed(s, 'room2').has(q.text),
  );
  const m = s.logs.get('room2')!.find((x) => x.text === p.text)!;
  allNodes(s.history, 'room2', (l) => [...l, { ...m, seq: l.length + 1 }]);
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['duplicate-post'], formatChatReport(r));
  assert.equal(r.violations[0]!.text, p.text);
});

test('failed-post-present: a refused post is in the history', () => {
  const s = small();
  const p = firstPost(s.history, (q) => q.outcome === 'fail' && q.room === 'room2');
  allNodes(s.history, 'room2', (l) => [...l, { seq: l.length + 1, user: p.user!, text: p.text, time: 1 }]);
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['failed-post-present'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  assert.deepEqual(
    [r.violations[0]!.seq, r.violations[0]!.text, r.violations[0]!.nodes],
    [41, p.text, ['n1', 'n2', 'n3']],
  );
});

test('phantom: a message nobody posted', () => {
  const s = small();
  allNodes(s.history, 'room2', (l) => [...l, { seq: l.length + 1, user: 'u1', text: 'nobody-said-this', time: 1 }]);
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['phantom'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  assert.match(r.violations[0]!.message, /seq 41 holds u1: "nobody-said-this" @1, which nobody posted/);
});

test('post-mismatch: a message under another user, or in another room', () => {
  const s = small();
  const seq = 8;
  const fix = <M extends { seq: number; user: string }>(m: M): M => (m.seq === seq ? { ...m, user: 'mallory' } : m);
  allNodes(s.history, 'room1', (l) => l.map(fix));
  for (const views of Object.values(s.history.clientViews)) views.room1 = views.room1!.map(fix);
  const r = checkChat(s.history);
  assert.deepEqual(kinds(r), ['post-mismatch'], formatChatReport(r));
  assert.equal(r.violations.length, 1);
  assert.match(r.violations[0]!.message, /to room room1/);

  const s2 = small();
  const p = firstPost(
    s2.history,
    (q) => q.outcome === 'unknown' && q.room === 'room0' && !landed(s2, 'room0').has(q.text),
  );
  allNodes(s2.history, 'room2', (l) => [...l, { seq: l.length + 1, user: p.user!, text: p.text, time: 1 }]);
  const r2 = checkChat(s2.history);
  assert.deepEqual(kinds(r2), ['post-mismatch'], formatChatReport(r2));
  assert.equal(r2.violations[0]!.room, 'room2');
});

test('malformed histories are refused', () => {
  const base = { client: 'c0', room: 'r', text: 't1', requestId: 'q1' };
  const h = (posts: ChatPost[]) => ({ posts, nodeViews: {}, clientViews: {} });
  assert.throws(() => checkChat(h([{ ...base, outcome: 'ok' }])), ChatHistoryError);
  assert.throws(
    () =>
      checkChat(
        h([
          { ...base, outcome: 'unknown' },
          { ...base, requestId: 'q2', outcome: 'ok', seq: 1 },
        ]),
      ),
    /posted twice as different posts/,
  );
  assert.throws(
    () =>
      checkChat(
        h([
          { ...base, outcome: 'unknown' },
          { ...base, text: 't2', outcome: 'ok', seq: 1 },
        ]),
      ),
    /request id q1 for two texts/,
  );
  // Attempts of one post combine: ok wins over unknown and fail.
  const r = checkChat({
    posts: [
      { ...base, outcome: 'fail' },
      { ...base, outcome: 'unknown' },
    ],
    nodeViews: { n1: { r: [{ seq: 1, user: 'u', text: 't1', time: 1 }] } },
    clientViews: {},
  });
  assert.equal(r.ok, true, formatChatReport(r));
  assert.deepEqual([r.stats.unknown, r.stats.unknownLanded, r.stats.attempts, r.stats.posts], [1, 1, 2, 1]);
});

test('formatChatReport: summary, counts per kind, the first N violations', () => {
  const s = small();
  allNodes(s.history, 'room2', (l) => [
    ...l,
    ...[1, 2, 3, 4].map((i) => ({ seq: l.length + i, user: 'u1', text: `ghost-${i}`, time: 1 })),
  ]);
  const r = checkChat(s.history);
  assert.equal(r.counts.phantom, 4);
  const text = formatChatReport(r, 2);
  assert.match(text, /^chat history: 4 violations — 3 rooms, 124 messages/);
  assert.match(text, /\n {2}phantom: 4\n/);
  assert.match(text, /- phantom \(room room2, seq 41, on n1, n2, n3\): seq 41 holds u1: "ghost-1"/);
  assert.doesNotMatch(text, /ghost-3/);
  assert.match(text, /… 2 more/);
  assert.match(text, /warnings: 2/);
});

test('scale: 100,000 messages', () => {
  const s = synthetic({ rooms: 10, messagesPerRoom: 10_000, clients: 6, seed: 42 });
  let t0 = performance.now();
  let cpu = process.cpuUsage();
  const r = checkChat(s.history);
  const ms = performance.now() - t0;
  cpu = process.cpuUsage(cpu);
  assert.equal(r.ok, true, formatChatReport(r));
  assert.equal(r.stats.messages, 100_000);
  console.log(
    `checked ${r.stats.messages} messages, ${r.stats.attempts} post attempts, ${r.stats.received} received ` +
      `on 3 nodes and ${r.stats.clients} clients in ${ms.toFixed(0)} ms (${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU)`,
  );

  // One planted defect is still found at that size.
  const l = s.history.nodeViews.n2!.room7!;
  l[5_000] = { ...l[5_000]!, text: 'planted' };
  t0 = performance.now();
  const r2 = checkChat(s.history);
  console.log(`with a planted defect: ${(performance.now() - t0).toFixed(0)} ms`);
  assert.deepEqual(kinds(r2), ['node-divergence', 'phantom']);
  assert.deepEqual(
    r2.violations.map((v) => [v.kind, v.room, v.seq, v.nodes]),
    [
      ['node-divergence', 'room7', 5_001, ['n2']],
      ['phantom', 'room7', 5_001, ['n2']],
    ],
  );
});
