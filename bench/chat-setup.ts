/**
 * Chat benchmark setup (see bench/chat.ts): a fresh 3-node chat cluster on durable storage, its users
 * registered and logged in, its rooms created and joined by every user; plus the process CPU readers the
 * measurements use.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../src/server/local-cluster.js';

export interface SetupOptions {
  readonly nodes: number;
  readonly users: number;
  readonly rooms: number;
  /** `--cpu-prof` for the nodes, profiles written to this directory (nodes stopped with SIGTERM). */
  readonly profileDir?: string;
  /** The nodes' snapshot threshold (entries), when not the default. */
  readonly snapshotThreshold?: number;
}

export interface ChatCluster {
  readonly cluster: LocalCluster;
  readonly leader: number;
  readonly leaderUrl: string;
  /** Node URLs in id order. */
  readonly urls: readonly string[];
  /** Bearer tokens, one per user (`user<i>`). */
  readonly tokens: readonly string[];
  readonly rooms: readonly string[];
  /** Process ids of the nodes, in id order. */
  readonly pids: readonly (number | undefined)[];
  stop(): Promise<void>;
}

/** The cluster being measured, for the SIGINT handler. */
let current: ChatCluster | undefined;

export async function stopCurrent(): Promise<void> {
  await current?.stop();
}

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** One JSON request; retried on 503, 429 and connection errors (a node still settling), up to ~10 s. */
export async function call(url: string, method: string, body?: unknown, token?: string): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      const parsed = (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>;
      if ((res.status === 503 || res.status === 429) && attempt < 20) {
        await sleep(500);
        continue;
      }
      return { status: res.status, body: parsed };
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(500);
    }
  }
}

async function expect(what: string, r: Promise<Reply>, status: number): Promise<Reply> {
  const got = await r;
  if (got.status !== status)
    throw new Error(`${what}: expected ${status}, got ${got.status} ${JSON.stringify(got.body)}`);
  return got;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `f` over `0..n-1`, at most `width` at a time. */
async function inBatches(n: number, width: number, f: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await f(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

export async function startChatCluster(o: SetupOptions): Promise<ChatCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-chat-bench-'));
  let cluster: LocalCluster | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // SIGTERM lets a profiled node write its profile on the way out.
    await cluster?.stopAll(o.profileDir === undefined ? 'SIGKILL' : 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    current = undefined;
  };
  try {
    cluster = await LocalCluster.start({
      nodes: o.nodes,
      dir,
      app: 'chat',
      storage: 'disk',
      ...(o.snapshotThreshold === undefined ? {} : { snapshotThreshold: o.snapshotThreshold }),
      ...(o.profileDir === undefined ? {} : { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', o.profileDir] }),
    });
    const c = cluster;
    const leader = await c.waitLeader(20_000);
    const leaderUrl = c.url(leader);
    const users = Array.from({ length: o.users }, (_, i) => `user${i}`);
    const password = 'bench-password';
    // scrypt runs on the leader's libuv pool (4 threads by default): a few at a time keeps it busy.
    await inBatches(users.length, 8, (i) =>
      expect(`register ${users[i]}`, call(`${leaderUrl}/chat/users`, 'POST', { username: users[i], password }), 201),
    );
    const tokens: string[] = [];
    await inBatches(users.length, 8, async (i) => {
      const r = await expect(
        `login ${users[i]}`,
        call(`${leaderUrl}/chat/sessions`, 'POST', { username: users[i], password }),
        201,
      );
      tokens[i] = String(r.body.token);
    });
    const rooms = Array.from({ length: Math.max(1, o.rooms) }, (_, i) => `room${i}`);
    for (const room of rooms) {
      await expect(`create ${room}`, call(`${leaderUrl}/chat/rooms`, 'POST', { name: room }, tokens[0]), 201);
    }
    const joins = rooms.flatMap((room) => tokens.slice(1).map((token) => ({ room, token })));
    await inBatches(joins.length, 16, async (i) => {
      const j = joins[i] as { room: string; token: string };
      await expect(`join ${j.room}`, call(`${leaderUrl}/chat/rooms/${j.room}/join`, 'POST', undefined, j.token), 200);
    });
    const chat: ChatCluster = {
      cluster: c,
      leader,
      leaderUrl,
      urls: c.ids.map((id) => c.url(id)),
      tokens,
      rooms,
      pids: c.ids.map((id) => c.pid(id)),
      stop,
    };
    current = chat;
    return chat;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds this (load generator) process has used so far. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Server CPU during a measurement: per node, and per op split between the leader and the followers. */
export interface CpuSplit {
  /** CPU seconds each node used, in id order. */
  readonly nodes: readonly number[];
  readonly leaderUsPerOp: number;
  readonly followersUsPerOp: number;
  /** CPU seconds the load generator used. */
  readonly loadgen: number;
}

/** Starts counting CPU; the returned function ends the count for `ops` operations. */
export function cpuMeter(chat: ChatCluster): (ops: number) => CpuSplit {
  const before = chat.pids.map(cpuSeconds);
  const ownBefore = ownCpuSeconds();
  return (ops) => {
    const nodes = chat.pids.map((p, i) => cpuSeconds(p) - (before[i] ?? 0));
    const li = chat.cluster.ids.indexOf(chat.leader);
    const leader = nodes[li] ?? 0;
    const followers = nodes.reduce((s, u, i) => (i === li ? s : s + u), 0);
    const per = (s: number) => (ops > 0 ? (s * 1e6) / ops : Number.NaN);
    return {
      nodes,
      leaderUsPerOp: per(leader),
      followersUsPerOp: per(followers),
      loadgen: ownCpuSeconds() - ownBefore,
    };
  };
}

/** The leader's host counters (from /status): proposals, batches, saves, snapshots. */
export interface Counters {
  readonly proposals: number;
  readonly proposeBatches: number;
  readonly saves: number;
  readonly snapshotsCreated: number;
}

export async function leaderCounters(chat: ChatCluster): Promise<Counters | undefined> {
  try {
    const r = await call(`${chat.leaderUrl}/status`, 'GET');
    return r.body.counters as Counters;
  } catch {
    return undefined;
  }
}

/** "proposals per batch, saves, snapshots" between two counter readings. */
export function counterDelta(a: Counters | undefined, b: Counters | undefined): string {
  if (a === undefined || b === undefined) return 'leader counters unavailable';
  const proposals = b.proposals - a.proposals;
  const batches = b.proposeBatches - a.proposeBatches;
  return (
    `leader: ${(batches > 0 ? proposals / batches : 0).toFixed(1)} proposals/batch, ` +
    `${b.saves - a.saves} saves, ${b.snapshotsCreated - a.snapshotsCreated} snapshots`
  );
}
