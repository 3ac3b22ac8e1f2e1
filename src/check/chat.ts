/**
 * History checker for the chat app (the "chat app" section of `../shared/api.md`): rooms whose messages are
 * numbered by `seq` 1, 2, 3, … in commit order, identical on every node.
 *
 * Input: every post attempt a client made with its outcome, each node's final message list per room, and the
 * messages each client received per room (stream and/or reads) in the order it received them. Texts are unique
 * per post, so a message's text names the post it came from; a retried post (same text, same request id) is
 * several attempts of one post.
 *
 * Checks, room by room:
 * - node-seq: a node's list is sorted and contiguous from seq 1 (no gap, no duplicate seq);
 * - node-divergence: at each seq every node that holds it has the same message (user, text, time). The
 *   reference is the message most nodes hold there, so one bad replica is the one named;
 * - node-behind: a node holds fewer seqs than the longest one — a warning, or a violation with `requireCaughtUp`;
 * - client-seq / client-mismatch: a client's received seqs go up by one from wherever it started (no duplicate,
 *   no skip), and each received message is the one the nodes hold at that seq;
 * - ack-missing / ack-misplaced: a post acknowledged with seq s holds seq s in the final history;
 * - duplicate-post: no post's text at two seqs on a node (a retry, or an entry applied twice);
 * - failed-post-present: a definitely refused post is nowhere;
 * - phantom: every message's text is some post's; post-mismatch: it sits in the room it was posted to, under
 *   the poster's name when the post records one.
 *
 * Linear in the size of the input: maps keyed by room and text, arrays indexed by seq (a node listing absurdly
 * high seqs costs one sort of the room's seqs instead).
 */

export type PostOutcome = 'ok' | 'fail' | 'unknown';

/** One post attempt, as the client that made it recorded it. */
export interface ChatPost {
  readonly client: string;
  readonly room: string;
  /** Unique per post; every attempt of one post (its retries) carries the same text. */
  readonly text: string;
  /** The `request_id` sent; every attempt of one post carries the same one. */
  readonly requestId?: string;
  /** ok: answered 201 with `seq`; fail: a definite refusal (4xx); unknown: timeout, lost connection, 503. */
  readonly outcome: PostOutcome;
  /** The seq of the 201 answer (outcome 'ok' only). */
  readonly seq?: number;
  /** The poster's username, when known: the message must then carry it. */
  readonly user?: string;
}

/** A message as `GET /chat/rooms/<room>/messages` returns it. */
export interface NodeMessage {
  readonly seq: number;
  readonly user: string;
  readonly text: string;
  readonly time: number;
}

/** A message as a client received it; `time` is compared when present. */
export interface ReceivedMessage {
  readonly seq: number;
  readonly user: string;
  readonly text: string;
  readonly time?: number;
}

/** A map or a plain object (as parsed from JSON), keyed by node, client or room name. */
export type Keyed<T> = ReadonlyMap<string, T> | Readonly<Record<string, T>>;

export interface ChatHistory {
  readonly posts: readonly ChatPost[];
  /** node → room → the room's full message list read from that node at the end (pages concatenated). */
  readonly nodeViews: Keyed<Keyed<readonly NodeMessage[]>>;
  /** client → room → the messages it received, in the order received (may start late and stop early). */
  readonly clientViews: Keyed<Keyed<readonly ReceivedMessage[]>>;
}

export interface ChatCheckOptions {
  /** A node holding fewer messages than the longest one is a violation, not a warning (default false). */
  readonly requireCaughtUp?: boolean;
}

export type ChatViolationKind =
  | 'node-seq'
  | 'node-divergence'
  | 'node-behind'
  | 'client-seq'
  | 'client-mismatch'
  | 'ack-missing'
  | 'ack-misplaced'
  | 'duplicate-post'
  | 'failed-post-present'
  | 'phantom'
  | 'post-mismatch';

export const CHAT_VIOLATION_KINDS: readonly ChatViolationKind[] = [
  'node-seq',
  'node-divergence',
  'node-behind',
  'client-seq',
  'client-mismatch',
  'ack-missing',
  'ack-misplaced',
  'duplicate-post',
  'failed-post-present',
  'phantom',
  'post-mismatch',
];

export interface ChatViolation {
  readonly kind: ChatViolationKind;
  readonly room: string;
  /** The seq concerned (the first one of a run of consecutive seqs). */
  readonly seq?: number;
  /** The nodes showing it (a finding seen identically on several nodes is reported once). */
  readonly nodes?: readonly string[];
  readonly client?: string;
  /** The post's text, for findings about a post. */
  readonly text?: string;
  readonly message: string;
}

export interface ChatStats {
  readonly rooms: number;
  /** Distinct seqs held by some node, over all rooms. */
  readonly messages: number;
  /** Posts (distinct texts); `attempts` counts retries separately. */
  readonly posts: number;
  readonly attempts: number;
  /** Posts with an 'ok' attempt. */
  readonly acknowledged: number;
  /** Posts whose attempts all failed. */
  readonly failed: number;
  /** Posts with no 'ok' attempt and at least one 'unknown' one. */
  readonly unknown: number;
  /** Unknown posts found in the final history. */
  readonly unknownLanded: number;
  readonly nodes: number;
  /** Node × room pairs where the node holds fewer seqs than the longest node. */
  readonly nodesBehind: number;
  readonly clients: number;
  /** Messages received by clients, over all rooms. */
  readonly received: number;
}

export interface ChatCheckResult {
  readonly ok: boolean;
  readonly violations: ChatViolation[];
  /** Findings that are not violations (a node behind, without `requireCaughtUp`). */
  readonly warnings: ChatViolation[];
  readonly counts: Record<ChatViolationKind, number>;
  readonly stats: ChatStats;
}

/** Thrown for a history the checker cannot judge (e.g. one text posted as two different posts). */
export class ChatHistoryError extends Error {
  override readonly name = 'ChatHistoryError';
}

interface PostInfo {
  readonly text: string;
  readonly room: string;
  readonly client: string;
  readonly requestId: string | undefined;
  readonly user: string | undefined;
  outcome: PostOutcome;
  /** Distinct acknowledged seqs, in attempt order (shared empty array while there is none). */
  acked: readonly number[];
  /** Whether some node holds it in its room. */
  landed: boolean;
  /** Scratch of the duplicate search: the pass that last saw it, and at which seq. */
  stamp: number;
  seenAt: number;
}

const NONE: readonly number[] = [];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function entriesOf<T>(k: Keyed<T>): [string, T][] {
  if (k instanceof Map) return [...(k as ReadonlyMap<string, T>).entries()];
  return Object.entries(k as Readonly<Record<string, T>>);
}

/** Seqs are array indices here; a room never holds 2^31 messages. */
const validSeq = (s: unknown): s is number => typeof s === 'number' && Number.isInteger(s) && s >= 1 && s < 2 ** 31;

const sameAs = (a: NodeMessage | undefined, b: NodeMessage): boolean =>
  a !== undefined && (a === b || (a.seq === b.seq && a.text === b.text && a.user === b.user && a.time === b.time));

function quote(text: string, max = 60): string {
  const q = JSON.stringify(text);
  return q.length <= max ? q : `${q.slice(0, max - 2)}…"`;
}

function show(m: { user: string; text: string; time?: number }): string {
  return `${m.user}: ${quote(m.text)}${m.time === undefined ? '' : ` @${m.time}`}`;
}

const have = (holders: readonly string[]): string => `${holders.join(', ')} ${holders.length === 1 ? 'has' : 'have'}`;

const seqRange = (a: number, b: number): string => (a === b ? `seq ${a}` : `seqs ${a}..${b}`);

/** Groups posts by text; throws when attempts of one text disagree on what post they are. */
function indexPosts(posts: readonly ChatPost[]): Map<string, PostInfo> {
  const byText = new Map<string, PostInfo>();
  const textByRequest = new Map<string, Map<string, string>>(); // client → request id → text
  for (const p of posts) {
    if (p.outcome === 'ok' && !validSeq(p.seq)) {
      throw new ChatHistoryError(`post ${quote(p.text)} by ${p.client}: outcome ok needs the acknowledged seq`);
    }
    if (p.requestId !== undefined) {
      let ofClient = textByRequest.get(p.client);
      if (ofClient === undefined) textByRequest.set(p.client, (ofClient = new Map()));
      const t = ofClient.get(p.requestId);
      if (t !== undefined && t !== p.text) {
        throw new ChatHistoryError(
          `client ${p.client} used request id ${p.requestId} for two texts: ${quote(t)} and ${quote(p.text)}`,
        );
      }
      ofClient.set(p.requestId, p.text);
    }
    let info = byText.get(p.text);
    if (info === undefined) {
      info = {
        text: p.text,
        room: p.room,
        client: p.client,
        requestId: p.requestId,
        user: p.user,
        outcome: p.outcome,
        acked: NONE,
        landed: false,
        stamp: 0,
        seenAt: 0,
      };
      byText.set(p.text, info);
    } else {
      if (info.room !== p.room || info.client !== p.client || info.requestId !== p.requestId || info.user !== p.user) {
        throw new ChatHistoryError(
          `text ${quote(p.text)} is posted twice as different posts (client, room, request id or user differ); ` +
            'texts must be unique per post',
        );
      }
      // One acknowledged attempt makes the post acknowledged; else one unknown attempt leaves it unknown.
      if (p.outcome === 'ok' || (p.outcome === 'unknown' && info.outcome === 'fail')) info.outcome = p.outcome;
    }
    if (p.outcome === 'ok' && !info.acked.includes(p.seq!)) info.acked = [...info.acked, p.seq!];
  }
  return byText;
}

/** Collects consecutive-seq findings of one subject into one violation per run. */
class RunCollector {
  private start = 0;
  private end = -1;
  private first: () => string = () => '';

  constructor(private readonly flushRun: (start: number, end: number, first: string) => void) {}

  /** `detail` is only called for the first seq of a run. */
  add(seq: number, detail: () => string): void {
    if (this.end >= 0 && seq === this.end + 1) {
      this.end = seq;
      return;
    }
    this.flush();
    this.start = seq;
    this.end = seq;
    this.first = detail;
  }

  flush(): void {
    if (this.end >= 0) this.flushRun(this.start, this.end, this.first());
    this.end = -1;
  }
}

/** Checks a chat history; throws ChatHistoryError on a malformed one. */
export function checkChat(history: ChatHistory, opts: ChatCheckOptions = {}): ChatCheckResult {
  const posts = indexPosts(history.posts);
  const nodes = entriesOf(history.nodeViews).map(([id, rooms]) => ({ id, rooms: new Map(entriesOf(rooms)) }));
  const clients = entriesOf(history.clientViews).map(([id, rooms]) => ({ id, rooms: new Map(entriesOf(rooms)) }));

  const rooms = new Set<string>();
  for (const n of nodes) for (const r of n.rooms.keys()) rooms.add(r);
  for (const c of clients) for (const r of c.rooms.keys()) rooms.add(r);
  const postsByRoom = new Map<string, PostInfo[]>();
  for (const p of posts.values()) {
    rooms.add(p.room);
    const list = postsByRoom.get(p.room) ?? [];
    list.push(p);
    postsByRoom.set(p.room, list);
  }

  const violations: ChatViolation[] = [];
  const warnings: ChatViolation[] = [];
  const push = (v: ChatViolation): void => void violations.push(v);
  let messages = 0;
  let nodesBehind = 0;
  let received = 0;
  let stamp = 0;

  for (const room of [...rooms].sort()) {
    // 1. Each node's list: sorted, contiguous from 1. `slots[i][seq]` keeps the first message node i lists there.
    const lists = nodes.map((n) => n.rooms.get(room) ?? []);
    const slots: (NodeMessage | undefined)[][] = [];
    /** Per node, the messages that made it into `slots`, in list order. */
    const kept: (readonly NodeMessage[])[] = [];
    const lasts: number[] = [];
    let held = 0;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!.id;
      const at: (NodeMessage | undefined)[] = [];
      const list = lists[i]!;
      // Most lists are regular: then `keep` is the list itself, copied only from the first irregular entry on.
      let keep: NodeMessage[] | undefined;
      let expected = 1;
      for (let j = 0; j < list.length; j++) {
        const m = list[j]!;
        if (keep === undefined && m.seq !== expected) keep = list.slice(0, j);
        if (!validSeq(m.seq)) {
          push({ kind: 'node-seq', room, nodes: [node], message: `invalid seq ${String(m.seq)} (${show(m)})` });
          continue;
        }
        if (m.seq > expected) {
          push({
            kind: 'node-seq',
            room,
            seq: expected,
            nodes: [node],
            message: `gap: ${seqRange(expected, m.seq - 1)} missing before seq ${m.seq}`,
          });
        } else if (m.seq < expected) {
          const first = at[m.seq];
          push({
            kind: 'node-seq',
            room,
            seq: m.seq,
            nodes: [node],
            message:
              first !== undefined
                ? `seq ${m.seq} listed twice (${show(first)}, then ${show(m)})`
                : `seq ${m.seq} out of order, after seq ${expected - 1}`,
          });
        }
        if (at[m.seq] === undefined) {
          at[m.seq] = m;
          keep?.push(m);
          held++;
        }
        if (m.seq >= expected) expected = m.seq + 1;
      }
      slots.push(at);
      kept.push(keep ?? list);
      lasts.push(expected - 1);
    }
    const maxSeq = lasts.reduce((a, b) => Math.max(a, b), 0);

    // The seqs some node holds, ascending: all of 1..maxSeq unless a node lists absurdly high seqs.
    let sparse: number[] | undefined;
    if (maxSeq > 2 * held + 1024) {
      const union = new Set<number>();
      for (const k of kept) for (const m of k) union.add(m.seq);
      sparse = [...union].sort((a, b) => a - b);
    }
    const seqCount = sparse === undefined ? maxSeq : sparse.length;
    const seqAt = (k: number): number => (sparse === undefined ? k + 1 : sparse[k]!);

    // 2. Agreement at each seq. The reference is the message most nodes hold there (ties: the earliest node's).
    const ref: (NodeMessage | undefined)[] = [];
    const holders = (s: number): string[] => {
      const r = ref[s];
      return r === undefined ? [] : nodes.filter((_, i) => sameAs(slots[i]![s], r)).map((n) => n.id);
    };
    const divergence = nodes.map(
      (node) =>
        new RunCollector((start, end, first) =>
          push({
            kind: 'node-divergence',
            room,
            seq: start,
            nodes: [node.id],
            message: `${node.id} disagrees at ${seqRange(start, end)}: ${first}`,
          }),
        ),
    );
    let refCount = 0;
    for (let k = 0; k < seqCount; k++) {
      const s = seqAt(k);
      let first: NodeMessage | undefined;
      let agree = true;
      for (let i = 0; i < nodes.length; i++) {
        const m = slots[i]![s];
        if (m === undefined) continue;
        if (first === undefined) first = m;
        else if (!sameAs(m, first)) {
          agree = false;
          break;
        }
      }
      if (first === undefined) continue;
      refCount++;
      if (agree) {
        ref[s] = first;
        continue;
      }
      const groups: { msg: NodeMessage; idx: number[] }[] = [];
      for (let i = 0; i < nodes.length; i++) {
        const m = slots[i]![s];
        if (m === undefined) continue;
        const g = groups.find((x) => sameAs(x.msg, m));
        if (g === undefined) groups.push({ msg: m, idx: [i] });
        else g.idx.push(i);
      }
      let best = groups[0]!;
      for (const g of groups) if (g.idx.length > best.idx.length) best = g;
      ref[s] = best.msg;
      const others = best.idx.map((i) => nodes[i]!.id);
      for (const g of groups) {
        if (g === best) continue;
        for (const i of g.idx) {
          divergence[i]!.add(s, () => `at seq ${s} it has ${show(g.msg)} where ${have(others)} ${show(best.msg)}`);
        }
      }
    }
    for (const d of divergence) d.flush();
    messages += refCount;

    // Nodes behind the longest one.
    for (let i = 0; i < nodes.length; i++) {
      if (lasts[i]! >= maxSeq) continue;
      nodesBehind++;
      const v: ChatViolation = {
        kind: 'node-behind',
        room,
        seq: lasts[i]! + 1,
        nodes: [nodes[i]!.id],
        message: `${nodes[i]!.id} holds up to seq ${lasts[i]} of ${maxSeq}`,
      };
      if (opts.requireCaughtUp === true) push(v);
      else warnings.push(v);
    }

    // 3. Clients: seqs up by one from where each started; messages as the nodes hold them.
    for (const client of clients) {
      const list = client.rooms.get(room);
      if (list === undefined) continue;
      received += list.length;
      const mismatch = new RunCollector((start, end, first) =>
        push({
          kind: 'client-mismatch',
          room,
          seq: start,
          client: client.id,
          message: `${client.id} received other messages than the nodes hold at ${seqRange(start, end)}: ${first}`,
        }),
      );
      let prev: number | undefined;
      for (const m of list) {
        if (!validSeq(m.seq)) {
          push({ kind: 'client-seq', room, client: client.id, message: `invalid seq ${String(m.seq)} (${show(m)})` });
          continue;
        }
        if (prev !== undefined && m.seq !== prev + 1) {
          push({
            kind: 'client-seq',
            room,
            seq: m.seq,
            client: client.id,
            message:
              m.seq === prev
                ? `${client.id} received seq ${m.seq} twice in a row`
                : m.seq < prev
                  ? `${client.id} received seq ${m.seq} after seq ${prev} (duplicate or out of order)`
                  : `${client.id} skipped ${seqRange(prev + 1, m.seq - 1)} (received seq ${m.seq} after seq ${prev})`,
          });
        }
        if (prev === undefined || m.seq > prev) prev = m.seq;
        const r = ref[m.seq];
        if (r === undefined) {
          mismatch.add(m.seq, () => `at seq ${m.seq} it received ${show(m)}, which no node holds`);
        } else if (r.user !== m.user || r.text !== m.text || (m.time !== undefined && r.time !== m.time)) {
          mismatch.add(m.seq, () => `at seq ${m.seq} it received ${show(m)} where ${have(holders(m.seq))} ${show(r)}`);
        }
      }
      mismatch.flush();
    }

    // 5, 6. Every node's messages against the posts; a finding seen on several nodes is reported once.
    // The post of each reference message is looked up once, not once per node.
    const postAtRef: (PostInfo | null | undefined)[] = [];
    const found = new Map<string, Mutable<ChatViolation> & { nodes: string[] }>();
    const note = (key: string, node: string, v: Omit<ChatViolation, 'nodes'>): void => {
      const cur = found.get(key);
      if (cur === undefined) found.set(key, { ...v, nodes: [node] });
      else cur.nodes.push(node);
    };
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!.id;
      stamp++;
      // Texts this node holds at more than one seq; posts remember their first seq on this pass by stamp.
      let dups: Map<string, number[]> | undefined;
      const phantoms = new Map<string, number>();
      const again = (text: string, firstSeq: number, seq: number): void => {
        dups ??= new Map();
        const l = dups.get(text);
        if (l === undefined) dups.set(text, [firstSeq, seq]);
        else l.push(seq);
      };
      for (const m of kept[i]!) {
        const s = m.seq;
        let p: PostInfo | null | undefined;
        if (sameAs(m, ref[s]!)) {
          p = postAtRef[s];
          if (p === undefined) postAtRef[s] = p = posts.get(m.text) ?? null;
        } else p = posts.get(m.text) ?? null;
        if (p === null) {
          const firstSeq = phantoms.get(m.text);
          if (firstSeq === undefined) phantoms.set(m.text, s);
          else again(m.text, firstSeq, s);
          note(`phantom\0${s}\0${m.text}\0${m.user}`, node, {
            kind: 'phantom',
            room,
            seq: s,
            text: m.text,
            message: `seq ${s} holds ${show(m)}, which nobody posted`,
          });
          continue;
        }
        if (p.stamp === stamp) again(m.text, p.seenAt, s);
        else {
          p.stamp = stamp;
          p.seenAt = s;
        }
        if (p.room === room) p.landed = true;
        if (p.room !== room || (p.user !== undefined && p.user !== m.user)) {
          note(`mismatch\0${s}\0${m.text}\0${m.user}`, node, {
            kind: 'post-mismatch',
            room,
            seq: s,
            text: m.text,
            message:
              `seq ${s} holds ${show(m)}, posted by ${p.client}` +
              `${p.user === undefined ? '' : ` as ${p.user}`} to room ${p.room}`,
          });
        }
        if (p.outcome === 'fail') {
          note(`failed\0${s}\0${m.text}`, node, {
            kind: 'failed-post-present',
            room,
            seq: s,
            text: m.text,
            message: `seq ${s} holds ${show(m)}, whose post by ${p.client} was refused`,
          });
        }
      }
      for (const [text, seqsOfText] of dups ?? []) {
        seqsOfText.sort((a, b) => a - b);
        const p = posts.get(text);
        note(`duplicate\0${text}\0${seqsOfText.join(',')}`, node, {
          kind: 'duplicate-post',
          room,
          seq: seqsOfText[1]!,
          text,
          message:
            `${quote(text)} appears at seqs ${seqsOfText.join(', ')}` +
            (p === undefined
              ? ''
              : ` (post by ${p.client}, ${p.outcome}${p.requestId === undefined ? '' : `, request ${p.requestId}`})`),
        });
      }
    }
    for (const v of found.values()) push(v);

    // 4. Acknowledged posts at their seq in the reference history.
    let refSeqsOfText: Map<string, number[]> | undefined;
    const whereIs = (text: string): number[] | undefined => {
      if (refSeqsOfText === undefined) {
        refSeqsOfText = new Map();
        for (let k = 0; k < seqCount; k++) {
          const s = seqAt(k);
          const r = ref[s];
          if (r === undefined) continue;
          const l = refSeqsOfText.get(r.text);
          if (l === undefined) refSeqsOfText.set(r.text, [s]);
          else l.push(s);
        }
      }
      return refSeqsOfText.get(text);
    };
    for (const p of postsByRoom.get(room) ?? []) {
      for (const s of p.acked) {
        const r = ref[s];
        if (r !== undefined && r.text === p.text) continue;
        const holds = r === undefined ? 'no node holds it' : `it holds ${show(r)}`;
        const at = whereIs(p.text);
        push(
          at === undefined
            ? {
                kind: 'ack-missing',
                room,
                seq: s,
                client: p.client,
                text: p.text,
                message: `${quote(p.text)} by ${p.client} was acknowledged at seq ${s} but is missing (${holds})`,
              }
            : {
                kind: 'ack-misplaced',
                room,
                seq: s,
                client: p.client,
                text: p.text,
                message: `${quote(p.text)} by ${p.client} was acknowledged at seq ${s} but sits at seq ${at.join(', ')} (${holds})`,
              },
        );
      }
    }
  }

  const counts = Object.fromEntries(CHAT_VIOLATION_KINDS.map((k) => [k, 0])) as Record<ChatViolationKind, number>;
  for (const v of violations) counts[v.kind]++;
  let acknowledged = 0;
  let failed = 0;
  let unknown = 0;
  let unknownLanded = 0;
  for (const p of posts.values()) {
    if (p.outcome === 'ok') acknowledged++;
    else if (p.outcome === 'fail') failed++;
    else {
      unknown++;
      if (p.landed) unknownLanded++;
    }
  }
  return {
    ok: violations.length === 0,
    violations,
    warnings,
    counts,
    stats: {
      rooms: rooms.size,
      messages,
      posts: posts.size,
      attempts: history.posts.length,
      acknowledged,
      failed,
      unknown,
      unknownLanded,
      nodes: nodes.length,
      nodesBehind,
      clients: clients.length,
      received,
    },
  };
}

/** A short human-readable summary: the stats, counts per kind, and the first `maxViolations` violations. */
export function formatChatReport(r: ChatCheckResult, maxViolations = 10): string {
  const s = r.stats;
  const lines = [
    `chat history: ${r.ok ? 'OK' : `${r.violations.length} violations`} — ${s.rooms} rooms, ${s.messages} messages, ` +
      `${s.posts} posts (${s.acknowledged} acknowledged, ${s.unknown} unknown of which ${s.unknownLanded} landed, ` +
      `${s.failed} failed; ${s.attempts} attempts), ${s.nodes} nodes, ${s.clients} clients (${s.received} received)`,
  ];
  for (const [k, n] of Object.entries(r.counts)) if (n > 0) lines.push(`  ${k}: ${n}`);
  const line = (v: ChatViolation): string => {
    const where = [
      `room ${v.room}`,
      v.seq === undefined ? '' : `seq ${v.seq}`,
      v.nodes === undefined ? '' : `on ${v.nodes.join(', ')}`,
      v.client === undefined ? '' : `client ${v.client}`,
    ].filter((x) => x !== '');
    return `  - ${v.kind} (${where.join(', ')}): ${v.message}`;
  };
  for (const v of r.violations.slice(0, maxViolations)) lines.push(line(v));
  if (r.violations.length > maxViolations) lines.push(`  … ${r.violations.length - maxViolations} more`);
  if (r.warnings.length > 0) {
    lines.push(`  warnings: ${r.warnings.length}`);
    for (const v of r.warnings.slice(0, Math.min(3, maxViolations))) lines.push(line(v));
  }
  return lines.join('\n');
}
