/**
 * Delivery delay (see bench/chat.ts): `subscribers` Server-Sent Events streams of one room, spread across
 * the nodes, while an open-loop pacer posts to that room at a steady `rate` (a timer issues each post at
 * its scheduled time, whether or not earlier ones were answered). Every post's text carries its index, so
 * a subscriber finds the post's send time when the event arrives: delay = received − sent, one clock (one
 * process). Afterwards every stream is checked for every message exactly once, in seq order.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Client, Pool } from 'undici';
import { LatencyHistogram, type LatencySummary } from '../src/bench/histogram.js';
import { call, counterDelta, cpuMeter, leaderCounters, sleep, type ChatCluster, type CpuSplit } from './chat-setup.js';

export interface DeliveryOptions {
  readonly subscribers: number;
  readonly rate: number;
  readonly duration: number;
  readonly warmup: number;
}

export interface DeliveryResult {
  readonly delay: LatencySummary;
  /** Delay p50/p99 of the subscribers on each node, in id order (the leader's marked in `leaderIndex`). */
  readonly perNode: readonly LatencySummary[];
  readonly leaderIndex: number;
  readonly sent: number;
  readonly achievedRate: number;
  readonly postP50: number;
  readonly postP99: number;
  readonly failures: Record<string, number>;
  /** (message, subscriber) pairs never received, received twice, out of seq order, or with the wrong text. */
  readonly missing: number;
  readonly duplicates: number;
  readonly disordered: number;
  readonly mismatched: number;
  readonly lastSeq: number;
  /** How late the pacer issued posts (ms, worst), and this process's event-loop delay (p99, max; ms). */
  readonly pacerLateMs: number;
  readonly loopP99: number;
  readonly loopMax: number;
  readonly cpu: CpuSplit;
  readonly elapsed: number;
  readonly counters: string;
}

const PADDING = 'x'.repeat(80);

/** One live stream: parses SSE events, records each message's seq, text index and delay. */
class Subscriber {
  readonly seqs: number[] = [];
  readonly idxs: number[] = [];
  badIds = 0;
  private buf = '';
  private client: Client | undefined;

  constructor(
    readonly node: number,
    private readonly onMessage: (idx: number, at: number, node: number) => void,
  ) {}

  async open(url: string, room: string, token: string): Promise<void> {
    this.client = new Client(url, { bodyTimeout: 0, headersTimeout: 10_000 });
    const res = await this.client.request({
      path: `/chat/rooms/${room}/stream`,
      method: 'GET',
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    if (res.statusCode !== 200) throw new Error(`stream on ${url}: ${res.statusCode} ${await res.body.text()}`);
    res.body.setEncoding('utf8');
    res.body.on('data', (chunk: string) => this.chunk(chunk, performance.now()));
    res.body.on('error', () => undefined);
  }

  get last(): number {
    return this.seqs.length === 0 ? 0 : (this.seqs[this.seqs.length - 1] as number);
  }

  close(): void {
    this.client?.destroy().catch(() => undefined);
  }

  private chunk(chunk: string, at: number): void {
    this.buf += chunk;
    let end: number;
    while ((end = this.buf.indexOf('\n\n')) >= 0) {
      const event = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 2);
      let id: number | undefined;
      let data: string | undefined;
      for (const line of event.split('\n')) {
        if (line.startsWith('data:')) data = (data === undefined ? '' : data + '\n') + line.slice(5).trimStart();
        else if (line.startsWith('id:')) id = Number(line.slice(3).trim());
        // ':' comments (pings) and 'retry:' are not messages.
      }
      if (data === undefined) continue;
      const m = JSON.parse(data) as { seq: number; text: string };
      if (id !== m.seq) this.badIds++;
      const idx = m.text.startsWith('d') ? Number(m.text.slice(1, m.text.indexOf(' '))) : -1;
      this.seqs.push(m.seq);
      this.idxs.push(idx);
      this.onMessage(idx, at, this.node);
    }
  }
}

export async function measureDelivery(chat: ChatCluster, o: DeliveryOptions, round: number): Promise<DeliveryResult> {
  const room = chat.rooms[0] as string;
  const warmupPosts = Math.round(o.warmup * o.rate);
  const measuredPosts = Math.round(o.duration * o.rate);
  const sendTimes = new Float64Array(warmupPosts + measuredPosts);
  const delay = new LatencyHistogram();
  const perNode = chat.urls.map(() => new LatencyHistogram());
  const onMessage = (idx: number, at: number, node: number) => {
    if (idx < warmupPosts || idx >= sendTimes.length) return;
    const d = at - (sendTimes[idx] as number);
    delay.record(d);
    perNode[node]?.record(d);
  };
  const subs = Array.from({ length: o.subscribers }, (_, s) => new Subscriber(s % chat.urls.length, onMessage));
  const pool = new Pool(chat.leaderUrl, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });
  const loop = monitorEventLoopDelay({ resolution: 5 });
  try {
    await Promise.all(
      subs.map((sub, s) =>
        sub.open(chat.urls[sub.node] as string, room, chat.tokens[s % chat.tokens.length] as string),
      ),
    );

    const seqOfIdx = new Map<number, number>();
    const failures: Record<string, number> = {};
    const postLatency = new LatencyHistogram();
    const pending = new Set<Promise<void>>();
    let pacerLateMs = 0;
    const post = (idx: number) => {
      const token = chat.tokens[idx % chat.tokens.length] as string;
      const body = JSON.stringify({ text: `d${idx} ${PADDING}`, request_id: `d${round}-${idx}` });
      const t0 = performance.now();
      sendTimes[idx] = t0;
      const p = pool
        .request({
          path: `/chat/rooms/${room}/messages`,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body,
        })
        .then(async (res) => {
          const text = await res.body.text();
          if (res.statusCode !== 201) {
            failures[res.statusCode] = (failures[res.statusCode] ?? 0) + 1;
            return;
          }
          seqOfIdx.set(idx, (JSON.parse(text) as { seq: number }).seq);
          if (idx >= warmupPosts) postLatency.record(performance.now() - t0);
        })
        .catch(() => {
          failures.error = (failures.error ?? 0) + 1;
        })
        .finally(() => pending.delete(p));
      pending.add(p);
    };
    /** Issues posts `from..from+count-1` at `o.rate` per second, open loop; resolves after the last. */
    const pace = (from: number, count: number, measured: boolean) =>
      new Promise<void>((resolve) => {
        const t0 = performance.now();
        let sent = 0;
        const tick = () => {
          const now = performance.now();
          const due = Math.min(count, Math.floor(((now - t0) * o.rate) / 1000) + 1);
          for (; sent < due; sent++) {
            if (measured) pacerLateMs = Math.max(pacerLateMs, now - (t0 + (sent * 1000) / o.rate));
            post(from + sent);
          }
          if (sent >= count) resolve();
          else setTimeout(tick, Math.max(0, t0 + (sent * 1000) / o.rate - performance.now()));
        };
        tick();
      });

    await pace(0, warmupPosts, false);
    const before = await leaderCounters(chat);
    const meter = cpuMeter(chat);
    loop.enable();
    const start = performance.now();
    await pace(warmupPosts, measuredPosts, true);
    const elapsed = (performance.now() - start) / 1000;
    await Promise.all([...pending]);
    loop.disable();
    const cpu = meter(measuredPosts);
    const after = await leaderCounters(chat);

    // Every subscriber should reach the room's last seq.
    const rooms = await call(`${chat.leaderUrl}/chat/rooms`, 'GET', undefined, chat.tokens[0]);
    const list = (rooms.body.rooms ?? []) as { name: string; last_seq: number }[];
    const lastSeq = list.find((r) => r.name === room)?.last_seq ?? Math.max(0, ...seqOfIdx.values());
    const deadline = performance.now() + 10_000;
    while (performance.now() < deadline && subs.some((s) => s.last < lastSeq)) await sleep(20);

    const idxOfSeq = new Map<number, number>();
    for (const [idx, seq] of seqOfIdx) idxOfSeq.set(seq, idx);
    let missing = 0;
    let duplicates = 0;
    let disordered = 0;
    let mismatched = 0;
    for (const sub of subs) {
      const seen = new Uint8Array(lastSeq + 2);
      let prev = 0;
      sub.seqs.forEach((seq, i) => {
        if (seq <= prev) disordered++;
        prev = seq;
        if (seq >= 1 && seq <= lastSeq) {
          if (seen[seq]) duplicates++;
          seen[seq] = 1;
        }
        const idx = idxOfSeq.get(seq);
        if (idx !== undefined && idx !== sub.idxs[i]) mismatched++;
      });
      for (let seq = 1; seq <= lastSeq; seq++) if (!seen[seq]) missing++;
      mismatched += sub.badIds;
    }
    const postSummary = postLatency.summary();
    return {
      delay: delay.summary(),
      perNode: perNode.map((h) => h.summary()),
      leaderIndex: chat.cluster.ids.indexOf(chat.leader),
      sent: measuredPosts,
      achievedRate: measuredPosts / elapsed,
      postP50: postSummary.p50Ms,
      postP99: postSummary.p99Ms,
      failures,
      missing,
      duplicates,
      disordered,
      mismatched,
      lastSeq,
      pacerLateMs,
      loopP99: loop.percentile(99) / 1e6,
      loopMax: loop.max / 1e6,
      cpu,
      elapsed,
      counters: counterDelta(before, after),
    };
  } finally {
    loop.disable();
    for (const sub of subs) sub.close();
    await pool.destroy().catch(() => undefined);
  }
}
