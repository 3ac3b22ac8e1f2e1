/**
 * Post throughput (see bench/chat.ts): `concurrency` closed-loop posters, each a user with its own token
 * and its own keep-alive connection (an undici Client) to the leader, posting to the rooms in turn with a
 * unique `request_id` per post.
 */
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import { LatencyHistogram } from '../src/bench/histogram.js';
import { counterDelta, cpuMeter, leaderCounters, type ChatCluster, type CpuSplit } from './chat-setup.js';

export interface PostOptions {
  readonly concurrency: number;
  readonly duration: number;
  readonly warmup: number;
}

export interface PostResult {
  readonly opsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly ok: number;
  /** Non-201 answers by status ("error" for a failed request). */
  readonly failures: Record<string, number>;
  readonly cpu: CpuSplit;
  /** Seconds measured. */
  readonly elapsed: number;
  readonly counters: string;
}

const PADDING = 'x'.repeat(80);

export async function measurePosts(chat: ChatCluster, o: PostOptions, round: number): Promise<PostResult> {
  const clients = Array.from(
    { length: o.concurrency },
    () => new Client(chat.leaderUrl, { pipelining: 1, keepAliveTimeout: 60_000 }),
  );
  try {
    const failures: Record<string, number> = {};
    let ok = 0;
    const latency = new LatencyHistogram();
    let recording = false;
    let seq = 0;
    /** Every poster loops until `until` (performance.now() ms). */
    const run = async (until: number) => {
      await Promise.all(
        clients.map(async (client, w) => {
          const token = chat.tokens[w % chat.tokens.length] as string;
          const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
          for (let n = 0; performance.now() < until; n++) {
            const room = chat.rooms[(w + n) % chat.rooms.length] as string;
            const body = JSON.stringify({ text: `p${w}-${n} ${PADDING}`, request_id: `r${round}-${w}-${seq++}` });
            const t0 = performance.now();
            try {
              const res = await client.request({ path: `/chat/rooms/${room}/messages`, method: 'POST', headers, body });
              await res.body.dump();
              if (res.statusCode === 201) {
                ok++;
                if (recording) latency.record(performance.now() - t0);
              } else {
                failures[res.statusCode] = (failures[res.statusCode] ?? 0) + 1;
              }
            } catch {
              failures.error = (failures.error ?? 0) + 1;
            }
          }
        }),
      );
    };
    if (o.warmup > 0) await run(performance.now() + o.warmup * 1000);
    ok = 0;
    for (const k of Object.keys(failures)) delete failures[k];
    recording = true;
    const before = await leaderCounters(chat);
    const meter = cpuMeter(chat);
    const start = performance.now();
    await run(start + o.duration * 1000);
    const elapsed = (performance.now() - start) / 1000;
    const cpu = meter(ok);
    const after = await leaderCounters(chat);
    const s = latency.summary();
    return {
      opsPerSec: ok / elapsed,
      p50: s.p50Ms,
      p99: s.p99Ms,
      ok,
      failures,
      cpu,
      elapsed,
      counters: counterDelta(before, after),
    };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}
