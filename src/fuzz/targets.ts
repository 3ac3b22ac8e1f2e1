/**
 * The live clusters the fuzzer runs against, one per mode, as real processes on 127.0.0.1 with their shared
 * cluster secret: started, seeded with data, and observed — every node's process, `/health`, memory (RSS
 * from /proc) and a snapshot of the state its data lives in, compared before and after a run.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { clusterSecret, type ClusterSecret } from '../modes/common/cluster.js';
import { freePorts, spawnModeNode, type SpawnedNode } from '../modes/common/spawn.js';
import { PeerAuth, PeerKeys, loadSecretFile } from '../net/peer-auth.js';
import { LocalCluster } from '../server/local-cluster.js';
import type { FrameTarget } from './frames.js';
import type { FuzzMode, GenContext, NodeInfo } from './http-gen.js';

export interface FuzzNode {
  readonly index: number;
  readonly url: string;
  readonly port: number;
  /** raft and chat: the node id and its peer transport port. */
  readonly id?: number;
  readonly raftPort?: number;
  readonly address?: string;
  role: NodeInfo['role'];
  pid(): number | undefined;
  alive(): boolean;
  /** The end of the node's stderr and log. */
  logs(): string;
}

export interface FuzzTarget {
  readonly mode: FuzzMode;
  readonly nodes: readonly FuzzNode[];
  readonly keys: PeerKeys;
  readonly context: GenContext;
  /** raft and chat: each node's id and the members, for frames. */
  readonly frameTargets?: readonly FrameTarget[];
  /** The index of the node that leads now (raft, chat); quorum's static leader; else 0. */
  leader(): Promise<number>;
  /** The replicated state as each node holds it (compared for equality before and after). */
  snapshot(): Promise<unknown>;
  /** raft and chat: term and leader of every node (informational). */
  raftTerms?(): Promise<{ id: number; term: unknown; leader: unknown }[]>;
  stop(): Promise<void>;
}

const KEYS = 20;

export function seededKeys(): string[] {
  return Array.from({ length: KEYS }, (_, i) => `seed-${String(i).padStart(2, '0')}`);
}

function seedValue(i: number): unknown {
  const values: unknown[] = [
    `value ${i}`,
    { nested: { list: [1, 2, 3], text: 'ünïcödé 日本 🔑' }, n: i },
    [i, null, true, 'x'],
    i * 1.5,
    null,
    'x'.repeat(1000),
  ];
  return values[i % values.length];
}

async function json(
  url: string,
  init: RequestInit = {},
  timeoutMs = 10_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { text };
  }
  return { status: res.status, body };
}

async function must(url: string, init: RequestInit, ok: readonly number[]): Promise<Record<string, unknown>> {
  for (let attempt = 0; ; attempt++) {
    const r = await json(url, init).catch((e: Error) => ({ status: 0, body: { error: e.message } }));
    if (ok.includes(r.status)) return r.body;
    if (attempt >= 20) throw new Error(`${init.method ?? 'GET'} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The node's resident set size in bytes (Linux), or undefined when it cannot be read. */
export function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function contextFor(
  mode: FuzzMode,
  nodes: readonly NodeInfo[],
  secretFile: string,
  extra: Partial<GenContext> = {},
): GenContext {
  const keys = loadSecretFile(secretFile).keys;
  const signer = new PeerAuth({ id: 'fuzz-peer', keys });
  const wrong = new PeerAuth({ id: 'fuzz-peer', keys: PeerKeys.fromBuffers([Buffer.alloc(32, 0x5a)]) });
  const skewed = new Map<number, PeerAuth>();
  return {
    mode,
    nodes,
    seededKeys: seededKeys(),
    sign: (m, pq, body) => signer.signHeaders(m, pq, body),
    signWrong: (m, pq, body) => wrong.signHeaders(m, pq, body),
    signSkewed: (skew, m, pq, body) => {
      let s = skewed.get(skew);
      if (s === undefined) {
        s = new PeerAuth({ id: 'fuzz-skewed', keys, now: () => Date.now() + skew });
        if (skewed.size < 64) skewed.set(skew, s);
      }
      return s.signHeaders(m, pq, body);
    },
    ...extra,
  };
}

// ---------------------------------------------------------------- raft and chat

async function startRaft(mode: 'raft' | 'chat', log: (s: string) => void): Promise<FuzzTarget> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `qkv-fuzz-${mode}-`));
  // Slower elections than the default: the fuzz loads a shared machine, and an election would only make
  // some requests wait.
  const cluster = await LocalCluster.start({
    nodes: 3,
    dir,
    tickMs: 50,
    electionTicks: 30,
    logLevel: 'error',
    ...(mode === 'chat' ? { app: 'chat' as const } : {}),
  });
  const stop = async () => {
    await cluster.stopAll();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const leaderId = await cluster.waitLeader(30_000);
    const nodes: FuzzNode[] = cluster.ids.map((id, index) => {
      const url = cluster.url(id);
      return {
        index,
        url,
        port: Number(new URL(url).port),
        id,
        raftPort: cluster.raftPorts.get(id),
        role: id === leaderId ? 'leader' : 'follower',
        pid: () => cluster.pid(id),
        alive: () => cluster.isRunning(id) && pidAlive(cluster.pid(id)),
        logs: () =>
          `stderr: ${(cluster.stderr.get(id) ?? '').slice(-1500)}\nlog: ${(cluster.stdout.get(id) ?? '').slice(-1500)}`,
      };
    });
    const lurl = cluster.url(leaderId);
    const keys = loadSecretFile(cluster.secretFile).keys;
    let extra: Partial<GenContext> = {};
    let snapshotNode: (n: FuzzNode) => Promise<unknown>;
    if (mode === 'raft') {
      for (const [i, k] of seededKeys().entries()) {
        await must(`${lurl}/kvs/${k}`, { method: 'PUT', body: JSON.stringify({ value: seedValue(i) }) }, [200, 201]);
      }
      await must(
        `${lurl}/auth/users`,
        { method: 'POST', body: JSON.stringify({ name: 'seed-user', password: 'seed-password-1' }) },
        [201],
      );
      await must(`${lurl}/auth/roles`, { method: 'POST', body: JSON.stringify({ name: 'seed-role' }) }, [201]);
      await must(
        `${lurl}/auth/roles/seed-role/permissions`,
        { method: 'PUT', body: JSON.stringify({ prefix: 'seed-', read: true }) },
        [200],
      );
      await must(
        `${lurl}/auth/users/seed-user/roles`,
        { method: 'POST', body: JSON.stringify({ role: 'seed-role' }) },
        [200],
      );
      extra = { authNames: { users: ['seed-user'], roles: ['seed-role'] } };
      snapshotNode = async (n) => {
        const list = await must(`${n.url}/kvs?prefix=&limit=10000&consistency=stale`, {}, [200]);
        const users = await must(`${n.url}/auth/users`, {}, [200]);
        const roles = await must(`${n.url}/auth/roles`, {}, [200]);
        const auth = await must(`${n.url}/auth/status`, {}, [200]);
        return { keys: list.keys, users: users.users, roles: roles.roles, auth };
      };
      await until('every node holds the seeded keys', async () =>
        (await Promise.all(nodes.map(async (n) => ((await snapshotNode(n)) as { keys: unknown[] }).keys.length))).every(
          (c) => c === KEYS,
        ),
      );
    } else {
      const pw = () => Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('hex');
      const tokens: Record<string, string> = {};
      for (const user of ['alice', 'bob']) {
        await must(
          `${lurl}/chat/users`,
          { method: 'POST', body: JSON.stringify({ username: user, password: (tokens[`${user}-pw`] = pw()) }) },
          [201],
        );
        const s = await must(
          `${lurl}/chat/sessions`,
          { method: 'POST', body: JSON.stringify({ username: user, password: tokens[`${user}-pw`] }) },
          [201],
        );
        tokens[user] = s.token as string;
      }
      const as = (user: string) => ({ authorization: `Bearer ${tokens[user] as string}` });
      await must(
        `${lurl}/chat/rooms`,
        { method: 'POST', headers: as('alice'), body: JSON.stringify({ name: 'general' }) },
        [201],
      );
      await must(
        `${lurl}/chat/rooms`,
        { method: 'POST', headers: as('bob'), body: JSON.stringify({ name: 'bobroom' }) },
        [201],
      );
      for (let i = 0; i < 5; i++) {
        await must(
          `${lurl}/chat/rooms/general/messages`,
          { method: 'POST', headers: as('alice'), body: JSON.stringify({ text: `hello ${i} 🔑` }) },
          [201],
        );
      }
      for (let i = 0; i < 2; i++) {
        await must(
          `${lurl}/chat/rooms/bobroom/messages`,
          { method: 'POST', headers: as('bob'), body: JSON.stringify({ text: `bob ${i}` }) },
          [201],
        );
      }
      extra = {
        chat: {
          tokens: { alice: tokens.alice as string, bob: tokens.bob as string },
          rooms: { general: ['alice'], bobroom: ['bob'] },
          users: ['alice', 'bob'],
        },
      };
      snapshotNode = async (n) => {
        const rooms = await must(`${n.url}/chat/rooms?consistency=stale`, { headers: as('alice') }, [200]);
        const general = await must(
          `${n.url}/chat/rooms/general/messages?consistency=stale&limit=1000`,
          { headers: as('alice') },
          [200],
        );
        const bobroom = await must(
          `${n.url}/chat/rooms/bobroom/messages?consistency=stale&limit=1000`,
          { headers: as('bob') },
          [200],
        );
        const status = await must(`${n.url}/status`, {}, [200]);
        const { applied: _applied, ...stats } = (status.chat ?? {}) as Record<string, unknown>;
        return {
          rooms: rooms.rooms,
          general: general.messages,
          bobroom: bobroom.messages,
          stats: { ...stats, streams: undefined, delivered: undefined },
        };
      };
      await until('every node holds the seeded chat', async () =>
        (
          await Promise.all(nodes.map(async (n) => ((await snapshotNode(n)) as { general: unknown[] }).general.length))
        ).every((c) => c === 5),
      );
    }
    const info = (): NodeInfo[] => nodes.map((n) => ({ index: n.index, role: n.role }));
    const context = contextFor(mode, info(), cluster.secretFile, extra);
    const leader = async (): Promise<number> => {
      const id = await cluster.waitLeader(15_000);
      for (const n of nodes) n.role = n.id === id ? 'leader' : 'follower';
      (context.nodes as NodeInfo[]).splice(0, context.nodes.length, ...info());
      return nodes.findIndex((n) => n.id === id);
    };
    log(`${mode}: 3 nodes up (leader ${leaderId}), seeded`);
    return {
      mode,
      nodes,
      keys,
      context,
      frameTargets: nodes.map((n) => ({ self: n.id as number, members: cluster.ids })),
      leader,
      snapshot: async () => Promise.all(nodes.map(async (n) => ({ node: n.id, state: await snapshotNode(n) }))),
      raftTerms: async () =>
        Promise.all(
          nodes.map(async (n) => {
            const s = await json(`${n.url}/status`).catch(() => ({ status: 0, body: {} as Record<string, unknown> }));
            return { id: n.id as number, term: s.body.term, leader: s.body.leader };
          }),
        ),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------- quorum, eventual, causal

function spawnedNode(n: SpawnedNode, index: number, role: NodeInfo['role'], address?: string): FuzzNode {
  let err = '';
  n.child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-3000);
  });
  return {
    index,
    url: n.url,
    port: Number(new URL(n.url).port),
    role,
    ...(address === undefined ? {} : { address }),
    pid: () => n.pid,
    alive: () => n.child.exitCode === null && n.child.signalCode === null && pidAlive(n.pid),
    logs: () => `stderr: ${err}`,
  };
}

async function startModeCluster(mode: 'quorum' | 'eventual' | 'causal', log: (s: string) => void): Promise<FuzzTarget> {
  const secret: ClusterSecret = clusterSecret();
  const spawned: SpawnedNode[] = [];
  const stop = async () => {
    await Promise.all(spawned.map((n) => n.stop(true)));
    secret.dispose();
  };
  try {
    const ports = await freePorts(3);
    const [p0, p1, p2] = ports as [number, number, number];
    const nodes: FuzzNode[] = [];
    if (mode === 'quorum') {
      const leader = await spawnModeNode(
        'quorum',
        ['--role', 'leader', '--id', 'leader', '--port', String(p0), '--followers', `127.0.0.1:${p1},127.0.0.1:${p2}`],
        {
          ...secret.env,
          WRITE_QUORUM: '2',
        },
      );
      spawned.push(leader);
      const followers = await Promise.all(
        [p1, p2].map((p, i) =>
          spawnModeNode(
            'quorum',
            ['--role', 'follower', '--id', `f${i + 1}`, '--port', String(p), '--leader', `127.0.0.1:${p0}`],
            secret.env,
          ),
        ),
      );
      spawned.push(...followers);
      nodes.push(spawnedNode(leader, 0, 'leader'), ...followers.map((f, i) => spawnedNode(f, i + 1, 'follower')));
    } else if (mode === 'eventual') {
      const started = await Promise.all(
        ports.map((p, i) =>
          spawnModeNode(
            'eventual',
            [
              '--id',
              `r${i + 1}`,
              '--port',
              String(p),
              '--peers',
              ports
                .filter((q) => q !== p)
                .map((q) => `127.0.0.1:${q}`)
                .join(','),
            ],
            secret.env,
          ),
        ),
      );
      spawned.push(...started);
      nodes.push(...started.map((n, i) => spawnedNode(n, i, 'replica')));
    } else {
      const addresses = ports.map((p) => `127.0.0.1:${p}`);
      const started = await Promise.all(
        addresses.map((a) =>
          spawnModeNode('causal', [], {
            ...secret.env,
            SOCKET_ADDRESS: a,
            VIEW: addresses.join(','),
            // A loaded machine must not make a replica drop a slow peer from its view (a view change is
            // state): generous timeouts and threshold.
            QKV_CAUSAL_PEER_TIMEOUT_MS: '5000',
            QKV_CAUSAL_FAIL_THRESHOLD: '100000',
          }),
        ),
      );
      spawned.push(...started);
      nodes.push(...started.map((n, i) => spawnedNode(n, i, 'replica', addresses[i])));
    }
    const first = nodes[0] as FuzzNode;
    let snapshotNode: (n: FuzzNode) => Promise<unknown>;
    if (mode === 'causal') {
      let meta: unknown = null;
      for (const [i, k] of seededKeys().entries()) {
        const b = await must(
          `${first.url}/kvs/${k}`,
          { method: 'PUT', body: JSON.stringify({ value: seedValue(i), 'causal-metadata': meta }) },
          [200, 201],
        );
        meta = b['causal-metadata'];
      }
      snapshotNode = async (n) => {
        const s = await must(`${n.url}/status`, {}, [200]);
        const values = await Promise.all(
          seededKeys().map(async (k) => (await must(`${n.url}/kvs/${k}`, {}, [200])).value),
        );
        return { clock: s.vector_clock, keys: s.keys, view: s.view, pending: s.pending_writes, values };
      };
      await until('every replica holds the seeded keys', async () =>
        (await Promise.all(nodes.map(async (n) => (await must(`${n.url}/status`, {}, [200])).keys))).every(
          (c) => c === KEYS,
        ),
      );
    } else {
      for (const [i, k] of seededKeys().entries()) {
        if (mode === 'quorum')
          await must(
            `${first.url}/write`,
            { method: 'POST', body: JSON.stringify({ key: k, value: seedValue(i) }) },
            [200],
          );
        else
          await must(
            `${(nodes[i % nodes.length] as FuzzNode).url}/kvs/${k}`,
            { method: 'PUT', body: JSON.stringify({ value: seedValue(i) }) },
            [200, 201],
          );
      }
      snapshotNode = async (n) => (await must(`${n.url}/data?tombstones=1`, {}, [200])).data;
      await until('every node holds the seeded keys', async () =>
        (await Promise.all(nodes.map(async (n) => Object.keys((await snapshotNode(n)) as object).length))).every(
          (c) => c === KEYS,
        ),
      );
    }
    const context = contextFor(
      mode,
      nodes.map((n) => ({ index: n.index, role: n.role, ...(n.address === undefined ? {} : { address: n.address }) })),
      secret.file,
    );
    log(`${mode}: 3 nodes up, seeded`);
    return {
      mode,
      nodes,
      keys: loadSecretFile(secret.file).keys,
      context,
      leader: async () => 0,
      snapshot: async () => Promise.all(nodes.map(async (n) => ({ node: n.index, state: await snapshotNode(n) }))),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function startTarget(mode: FuzzMode, log: (s: string) => void): Promise<FuzzTarget> {
  return mode === 'raft' || mode === 'chat' ? startRaft(mode, log) : startModeCluster(mode, log);
}
