/**
 * Chat benchmark: `npm run bench:chat -- --duration 10 --rounds 3`.
 *
 * Each measurement starts a fresh 3-node chat cluster (real processes, durable storage), registers and logs
 * in the users, creates the rooms and has every user join them (bench/chat-setup.ts), then measures:
 *
 * 1. post throughput: `--concurrency` closed-loop posters over keep-alive connections straight to the
 *    leader, a unique `request_id` per post (bench/chat-posts.ts): posts/s, p50/p99 latency, server CPU
 *    per post and the load generator's own CPU;
 * 2. delivery delay: `--subscribers` SSE streams of one room spread across the nodes while posts arrive at
 *    `--rate` per second, open loop (bench/chat-delivery.ts): received − sent over every (message,
 *    subscriber) pair, and every stream checked for every message exactly once, in seq order.
 *
 * The two alternate `--rounds` times (after `--warmup` seconds of the same load, unmeasured) and the run
 * ends with the medians of the rounds and the targets (≥ 5,000 posts/s; delivery p99 < 100 ms).
 */
import os from 'node:os';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { median } from '../src/bench/histogram.js';
import { startChatCluster, stopCurrent, type ChatCluster } from './chat-setup.js';
import { measurePosts, type PostResult } from './chat-posts.js';
import { measureDelivery, type DeliveryResult } from './chat-delivery.js';

const POSTS_TARGET = 5000;
const DELAY_P99_TARGET_MS = 100;

interface Options {
  duration: number;
  warmup: number;
  rounds: number;
  concurrency: number;
  subscribers: number;
  rate: number;
  rooms: number;
  users: number;
  only: 'posts' | 'delivery' | 'both';
  profile: string | undefined;
  snapshotThreshold: number | undefined;
}

const mid = (xs: readonly number[]): number => median(xs) ?? Number.NaN;
const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '?');
const ms = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(n < 10 ? 2 : 1)} ms` : '?');
const failuresOf = (f: Record<string, number>): string => {
  const parts = Object.entries(f).map(([k, v]) => `${v}×${k}`);
  return parts.length === 0 ? 'no failures' : `failures ${parts.join(', ')}`;
};

async function withCluster<T>(o: Options, f: (chat: ChatCluster) => Promise<T>): Promise<T> {
  const chat = await startChatCluster({
    nodes: 3,
    users: o.users,
    rooms: o.rooms,
    ...(o.profile === undefined ? {} : { profileDir: o.profile }),
    ...(o.snapshotThreshold === undefined ? {} : { snapshotThreshold: o.snapshotThreshold }),
  });
  try {
    return await f(chat);
  } finally {
    await chat.stop();
  }
}

function postLine(name: string, r: PostResult): string {
  const nodesCpu = r.cpu.nodes.reduce((s, c) => s + c, 0) / r.elapsed;
  return (
    `${name.padEnd(10)} ${int(r.opsPerSec).padStart(7)} posts/s   p50 ${ms(r.p50)}   p99 ${ms(r.p99)}   ` +
    `(${int(r.ok)} ok, ${failuresOf(r.failures)})\n` +
    `${''.padEnd(10)} server CPU ${r.cpu.leaderUsPerOp.toFixed(0)} us/post leader + ` +
    `${r.cpu.followersUsPerOp.toFixed(0)} us/post followers (${nodesCpu.toFixed(2)} cores busy); ` +
    `load generator ${(r.cpu.loadgen / r.elapsed).toFixed(2)} cores (${((r.cpu.loadgen * 1e6) / Math.max(1, r.ok)).toFixed(0)} us/post); ` +
    r.counters
  );
}

function deliveryLine(name: string, r: DeliveryResult, subscribers: number): string {
  const nodes = r.perNode
    .map((h, i) => `n${i + 1}${i === r.leaderIndex ? '(leader)' : ''} ${ms(h.p50Ms)}/${ms(h.p99Ms)}`)
    .join(', ');
  return (
    `${name.padEnd(10)} ${int(r.achievedRate)} posts/s to ${subscribers} subscribers: delay p50 ${ms(r.delay.p50Ms)}   ` +
    `p99 ${ms(r.delay.p99Ms)}   max ${ms(r.delay.maxMs)}   (${int(r.delay.count)} deliveries)\n` +
    `${''.padEnd(10)} per node p50/p99: ${nodes}; post p50 ${ms(r.postP50)} p99 ${ms(r.postP99)}, ${failuresOf(r.failures)}\n` +
    `${''.padEnd(10)} streams: ${r.missing} missing, ${r.duplicates} duplicates, ${r.disordered} out of order, ` +
    `${r.mismatched} wrong text/id (last seq ${r.lastSeq}); pacer at worst ${ms(r.pacerLateMs)} late, ` +
    `bench event loop delay p99 ${ms(r.loopP99)} max ${ms(r.loopMax)}; load generator ` +
    `${(r.cpu.loadgen / r.elapsed).toFixed(2)} cores; ${r.counters}`
  );
}

function deliveryErrors(r: DeliveryResult): number {
  return r.missing + r.duplicates + r.disordered + r.mismatched;
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--duration <s>', 'seconds per measurement', '10')
    .option('--warmup <s>', 'seconds of the same load before each measurement, not counted', '2')
    .option('--rounds <n>', 'posts and delivery measured alternately this many times; medians at the end', '3')
    .option('--concurrency <n>', 'concurrent posters (closed loop, one connection each)', '64')
    .option('--subscribers <n>', 'live stream subscribers of the delivery room, spread across the nodes', '50')
    .option('--rate <n>', 'posts per second during the delivery measurement (open loop)', '1000')
    .option('--rooms <n>', 'rooms the posters spread over (delivery uses the first)', '4')
    .option('--users <n>', 'registered users (default: --concurrency)')
    .option('--only <what>', 'posts, delivery or both', 'both')
    .option('--profile <dir>', 'run the nodes with --cpu-prof, profiles written to <dir>')
    .option('--snapshot-threshold <n>', "the nodes' snapshot threshold in entries (default: the server's)")
    .parse();
  const raw = program.opts<Record<string, string | undefined>>();
  const concurrency = Math.max(1, Number(raw.concurrency));
  const o: Options = {
    duration: Number(raw.duration),
    warmup: Number(raw.warmup),
    rounds: Math.max(1, Math.floor(Number(raw.rounds)) || 1),
    concurrency,
    subscribers: Math.max(1, Number(raw.subscribers)),
    rate: Math.max(1, Number(raw.rate)),
    rooms: Math.max(1, Number(raw.rooms)),
    users: Math.max(1, Number(raw.users ?? concurrency)),
    only: raw.only === 'posts' || raw.only === 'delivery' ? raw.only : 'both',
    profile: raw.profile === undefined ? undefined : path.resolve(raw.profile),
    snapshotThreshold: raw.snapshotThreshold === undefined ? undefined : Number(raw.snapshotThreshold),
  };
  if (o.profile !== undefined) mkdirSync(o.profile, { recursive: true });
  const started = new Date();
  console.log(
    `quorumkv chat bench: 3 nodes (disk), ${o.concurrency} posters over ${o.rooms} rooms, ${o.subscribers} ` +
      `subscribers at ${o.rate} posts/s, ${o.duration} s (+${o.warmup} s warmup) per measurement, ${o.rounds} ` +
      `round(s), ${os.cpus().length} cpus, load average ${os.loadavg()[0].toFixed(2)}`,
  );
  const posts: PostResult[] = [];
  const deliveries: DeliveryResult[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    if (o.only !== 'delivery') {
      const p = await withCluster(o, (chat) => measurePosts(chat, o, r));
      posts.push(p);
      console.log(postLine(`posts${r}`, p));
    }
    if (o.only !== 'posts') {
      const d = await withCluster(o, (chat) => measureDelivery(chat, o, r));
      deliveries.push(d);
      console.log(deliveryLine(`delivery${r}`, d, o.subscribers));
    }
  }

  const n = o.rounds;
  const of = n > 1 ? ` (median of ${n} rounds)` : '';
  console.log('');
  console.log(
    `chat bench, ${started.toISOString()} (${os.cpus().length} cpus, load average now ${os.loadavg()[0].toFixed(2)})`,
  );
  console.log('-'.repeat(100));
  if (posts.length > 0) {
    const ops = mid(posts.map((p) => p.opsPerSec));
    const pass = ops >= POSTS_TARGET ? 'PASS' : 'MISS';
    console.log(
      `posts, ${o.concurrency} posters: ${int(ops)} ops/s${of}, p50 ${ms(mid(posts.map((p) => p.p50)))}, ` +
        `p99 ${ms(mid(posts.map((p) => p.p99)))}   [target >= ${int(POSTS_TARGET)}/s: ${pass}]`,
    );
    console.log(
      `  rounds: ${posts.map((p) => int(p.opsPerSec)).join(', ')} posts/s; server CPU ` +
        `${mid(posts.map((p) => p.cpu.leaderUsPerOp)).toFixed(0)} us/post leader + ` +
        `${mid(posts.map((p) => p.cpu.followersUsPerOp)).toFixed(0)} followers; load generator ` +
        `${mid(posts.map((p) => p.cpu.loadgen / p.elapsed)).toFixed(2)} cores`,
    );
  }
  let errors = 0;
  if (deliveries.length > 0) {
    const p99 = mid(deliveries.map((d) => d.delay.p99Ms));
    errors = deliveries.reduce((s, d) => s + deliveryErrors(d), 0);
    const pass = p99 < DELAY_P99_TARGET_MS ? 'PASS' : 'MISS';
    console.log(
      `delivery at ${int(o.rate)} posts/s to ${o.subscribers} subscribers: p50 ${ms(mid(deliveries.map((d) => d.delay.p50Ms)))}, ` +
        `p99 ${ms(p99)}, max ${ms(mid(deliveries.map((d) => d.delay.maxMs)))}${of}   ` +
        `[target p99 < ${DELAY_P99_TARGET_MS} ms: ${pass}]`,
    );
    console.log(
      `  rounds p99: ${deliveries.map((d) => ms(d.delay.p99Ms)).join(', ')}; ` +
        `max: ${deliveries.map((d) => ms(d.delay.maxMs)).join(', ')}`,
    );
    console.log(
      `  exactly once, in order: ${errors === 0 ? 'OK' : 'ERROR'} (` +
        `${deliveries.reduce((s, d) => s + d.missing, 0)} missing, ` +
        `${deliveries.reduce((s, d) => s + d.duplicates, 0)} duplicates, ` +
        `${deliveries.reduce((s, d) => s + d.disordered, 0)} out of order, ` +
        `${deliveries.reduce((s, d) => s + d.mismatched, 0)} wrong text/id over all rounds)`,
    );
  }
  if (errors > 0) process.exitCode = 1;
}

process.once('SIGINT', () => {
  void stopCurrent().finally(() => process.exit(130));
});

main().catch(async (err: unknown) => {
  console.error(err);
  await stopCurrent();
  process.exit(1);
});
