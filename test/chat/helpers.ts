/** Real-process chat clusters for tests: start/stop, users, stream recorders, per-node reads and digests. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { contentDigestOfFile } from '../../src/chat/store.js';
import { CHAT_DB_FILE } from '../../src/chat/app.js';
import { ChatClient } from '../../src/client/chat.js';
import type { ChatMessage } from '../../src/client/chat-types.js';
import type { ChatStream } from '../../src/client/chat-stream.js';
import { LocalCluster, type LocalClusterOptions } from '../../src/server/local-cluster.js';

export const PASSWORD = 'correct horse battery';

/** Fast timings: 20 ms ticks, elections in 200–400 ms, 1.5 s request timeout. */
export const CHAT_FAST: Omit<LocalClusterOptions, 'nodes' | 'dir'> = {
  app: 'chat',
  tickMs: 20,
  electionTicks: 10,
  requestTimeoutMs: 1500,
  logLevel: 'error',
  chatLoginsPerMinute: 1000,
};

export interface ChatCluster {
  readonly cluster: LocalCluster;
  readonly dir: string;
  readonly endpoints: string[];
  cleanup(): Promise<void>;
}

export async function startChatCluster(nodes: number, opts: Partial<LocalClusterOptions> = {}): Promise<ChatCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-chat-'));
  const cluster = await LocalCluster.start({ ...CHAT_FAST, ...opts, nodes, dir });
  await cluster.waitLeader(10_000);
  const endpoints = cluster.ids.map((id) => cluster.url(id));
  return {
    cluster,
    dir,
    endpoints,
    async cleanup() {
      await cluster.stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function client(endpoints: readonly string[]): ChatClient {
  return new ChatClient({ endpoints, timeoutMs: 2500, deadlineMs: 12_000, backoffMs: 20, maxBackoffMs: 300 });
}

/** A registered, logged-in client that is a member of `rooms` (created by the first to ask). */
export async function user(endpoints: readonly string[], name: string, rooms: readonly string[]): Promise<ChatClient> {
  const c = client(endpoints);
  await c.register(name, PASSWORD);
  await c.login(name, PASSWORD);
  for (const r of rooms) {
    try {
      await c.joinRoom(r);
    } catch {
      try {
        await c.createRoom(r);
      } catch {
        await c.joinRoom(r); // created meanwhile by another user
      }
    }
  }
  return c;
}

/** Records everything a stream delivers. */
export class Recorder {
  readonly received: ChatMessage[] = [];
  readonly endpoints = new Set<string>();
  failovers = 0;

  constructor(readonly stream: ChatStream) {
    stream.on('message', (m) => this.received.push(m));
    stream.on('connected', (i) => this.endpoints.add(i.endpoint));
    stream.on('failover', () => this.failovers++);
  }

  async waitFor(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`stream got ${this.received.length} of ${count} messages in ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  close(): void {
    this.stream.close();
  }
}

/** A room's full history as one node holds it (stale read of that node alone, paged). */
export async function nodeHistory(url: string, token: string, room: string): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  for (;;) {
    const res = await fetch(
      `${url}/chat/rooms/${encodeURIComponent(room)}/messages?consistency=stale&limit=1000&after=${out.length}`,
      { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) },
    );
    assert.equal(res.status, 200, `history of ${room} from ${url}`);
    const body = (await res.json()) as { messages: Omit<ChatMessage, 'room'>[] };
    for (const m of body.messages) out.push({ ...m, room });
    if (body.messages.length < 1000) return out;
  }
}

interface NodeStatus {
  applied: number;
  commit: number;
  role: string;
}

export async function status(url: string): Promise<NodeStatus> {
  const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as NodeStatus;
}

/** Waits until every running node has applied the same index (and that index is the leader's commit). */
export async function waitConverged(cluster: LocalCluster, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const ids = cluster.ids.filter((id) => cluster.isRunning(id));
      const st = await Promise.all(ids.map((id) => status(cluster.url(id))));
      const applied = st.map((s) => s.applied);
      const leader = st.find((s) => s.role === 'leader');
      last = JSON.stringify(applied);
      if (leader !== undefined && applied.every((a) => a === leader.commit)) return leader.commit;
    } catch {
      // a node is starting
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nodes did not converge: applied ${last}`);
}

/** The replicated content digest of every node's chat database (nodes may be running). */
export function digests(c: ChatCluster): string[] {
  return c.cluster.ids.map((id) => contentDigestOfFile(path.join(c.dir, `n${id}`, CHAT_DB_FILE)));
}

/** Asserts a stream or history is exactly seq 1..n with these texts, each once. */
export function assertExactly(label: string, got: readonly ChatMessage[], texts: readonly string[]): void {
  assert.deepEqual(
    got.map((m) => m.seq),
    Array.from({ length: got.length }, (_, i) => i + 1),
    `${label}: seq contiguous from 1`,
  );
  const seen = got.map((m) => m.text);
  assert.equal(new Set(seen).size, seen.length, `${label}: no message twice`);
  assert.deepEqual([...seen].sort(), [...texts].sort(), `${label}: every message, once`);
}
