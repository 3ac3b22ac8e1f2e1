/**
 * Node-level routes: `/health` (liveness, with `quorum`), `/ready` (readiness), `/status`, `/metrics`, and the failure simulation `/admin/fail`,
 * `/admin/recover`, plus the test-only `/admin/faults` that drives the transport's fault hook.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { majorityOf } from '../raft/quorum.js';
import type { NodeId } from '../raft/types.js';
import type { Transport } from '../net/transport.js';
import { methodNotAllowed, unavailable } from './http-common.js';
import type { RaftHost } from './driver.js';
import type { Forwarder } from './forward.js';
import type { NodeMetrics } from './metrics.js';

/** Whether the node serves clients: `failed` after /admin/fail, `recovering` until it has caught up. */
export class Availability {
  private recovering = false;
  private generation = 0;
  private closed = false;

  constructor(
    private readonly id: NodeId,
    private readonly host: RaftHost<unknown>,
    private readonly forwarder: Forwarder,
    private readonly tickMs: number,
  ) {}

  get state(): 'serving' | 'failed' | 'recovering' {
    if (this.host.failed) return 'failed';
    return this.recovering ? 'recovering' : 'serving';
  }

  check(): void {
    if (this.host.failed) throw unavailable('Node is failed');
    if (this.recovering) throw unavailable('Node is recovering');
  }

  fail(): void {
    this.generation++;
    this.recovering = false;
    this.host.fail();
  }

  /** Resumes replication, then serves again only once this node has applied the leader's commit index. */
  recover(): void {
    if (!this.host.failed) return;
    const gen = ++this.generation;
    this.recovering = true;
    this.host.recover();
    void this.catchUp(gen);
  }

  close(): void {
    this.closed = true;
  }

  private async catchUp(gen: number): Promise<void> {
    while (!this.closed && gen === this.generation) {
      const target = await this.leaderCommit();
      if (target !== undefined) {
        try {
          await this.host.waitApplied(target);
          if (gen === this.generation) this.recovering = false;
          return;
        } catch {
          // Deadline passed: ask again.
        }
      }
      await sleep(this.tickMs);
    }
  }

  private async leaderCommit(): Promise<number | undefined> {
    if (this.host.isLeader) {
      // It may be a deposed leader that has not heard of its successor yet: confirm with a quorum first.
      try {
        await this.host.readBarrier();
        return this.host.commitIndex();
      } catch {
        return undefined;
      }
    }
    const leader = this.host.leader;
    if (leader === 0 || leader === this.id) return undefined;
    try {
      const res = await this.forwarder.request(leader, 'GET', '/status', undefined, 1000);
      if (res.status !== 200) return undefined;
      const body = JSON.parse(res.body.toString('utf8')) as { commit?: unknown; role?: unknown };
      return body.role === 'leader' && typeof body.commit === 'number' ? body.commit : undefined;
    } catch {
      return undefined;
    }
  }
}

export interface AdminContext {
  readonly id: NodeId;
  readonly host: RaftHost<unknown>;
  readonly transport: Transport;
  readonly availability: Availability;
  readonly metrics: NodeMetrics;
  readonly forwarder: Forwarder;
  readonly storageStats: () => Record<string, unknown> | undefined;
  readonly extraStatus: () => Record<string, unknown>;
}

interface FaultsBody {
  drop?: number[];
  delayMs?: number;
}

/**
 * Whether this node is in touch with a majority, as far as its Raft state tells: a leader counts the peers it
 * heard from within an election timeout (its CheckQuorum view, `recentActive`); a follower needs a leader it
 * is not cut off from (it forgets the leader when its election timer fires).
 */
export function quorumState(ctx: Pick<AdminContext, 'id' | 'host'>): { quorum: boolean; reason?: string } {
  const s = ctx.host.status();
  if (s.role === 'leader') {
    const voters = s.progress.length;
    const active = s.progress.filter((p) => p.recentActive).length;
    const need = majorityOf(voters);
    if (voters === 0 || active >= need) return { quorum: true };
    return { quorum: false, reason: `No quorum: the leader hears from ${active} of ${voters} nodes, needs ${need}` };
  }
  if (s.leader === 0) return { quorum: false, reason: 'No quorum: no leader' };
  if (ctx.host.droppedPeers.includes(s.leader)) {
    return { quorum: false, reason: `No quorum: cut off from the leader (node ${s.leader})` };
  }
  return { quorum: true };
}

/** Ready = serving, in touch with a quorum, and this node has applied every entry it knows committed. */
export function readiness(ctx: Pick<AdminContext, 'id' | 'host' | 'availability' | 'storageStats'>): {
  ready: boolean;
  reason?: string;
} {
  const state = ctx.availability.state;
  if (state === 'failed') return { ready: false, reason: 'Node is failed' };
  if (state === 'recovering') return { ready: false, reason: 'Node is recovering' };
  const full = diskFull(ctx);
  if (full !== undefined) return { ready: false, reason: full.reason };
  const q = quorumState(ctx);
  if (!q.quorum) return { ready: false, reason: q.reason ?? 'No quorum' };
  const commit = ctx.host.status().commit;
  if (ctx.host.applied < commit) {
    return { ready: false, reason: `Catching up: applied ${ctx.host.applied} of ${commit}` };
  }
  return { ready: true };
}

/** Set while the node's disk is full: its log writes wait for room, so it acknowledges nothing new. */
function diskFull(ctx: Pick<AdminContext, 'storageStats'>): { since: string; reason: string } | undefined {
  const full = ctx.storageStats()?.diskFull as { since: number; error: string } | null | undefined;
  if (full === null || full === undefined) return undefined;
  const since = new Date(full.since).toISOString();
  return { since, reason: `Disk full since ${since}: log writes wait for room (${full.error})` };
}

/** The body of `GET /status` (also read by the dashboard once per second while a page is open). */
export function nodeStatus(ctx: AdminContext): Record<string, unknown> {
  const s = ctx.host.status();
  const t = ctx.transport.stats();
  const links = new Map(t.peers.map((p) => [p.id, p]));
  const progress = new Map(s.progress.map((p) => [p.id, p]));
  const peers = [...new Set([...links.keys(), ...progress.keys()])]
    .filter((id) => id !== ctx.id)
    .sort((a, b) => a - b)
    .map((id) => {
      const l = links.get(id);
      const p = progress.get(id);
      return {
        id,
        url: ctx.forwarder.urlOf(id) ?? null,
        connected: l?.connected ?? false,
        sent: l?.sent ?? 0,
        received: l?.received ?? 0,
        dropped: l?.dropped ?? 0,
        queue: l?.queueLength ?? 0,
        match: p?.match ?? null,
        next: p?.next ?? null,
        state: p?.state ?? null,
        recent_active: p?.recentActive ?? null,
      };
    });
  const q = quorumState(ctx);
  return {
    id: ctx.id,
    node_id: ctx.id,
    mode: 'raft',
    role: s.role,
    state: ctx.availability.state,
    quorum: q.quorum,
    ready: readiness(ctx).ready,
    term: s.term,
    vote: s.vote,
    commit: s.commit,
    applied: ctx.host.applied,
    first_index: s.firstIndex,
    last_index: s.lastIndex,
    leader: s.leader || null,
    leader_url: s.leader ? (ctx.forwarder.urlOf(s.leader) ?? null) : null,
    peers,
    dropped_peers: ctx.host.droppedPeers,
    counters: ctx.host.counters,
    storage: ctx.storageStats() ?? null,
    ...ctx.extraStatus(),
  };
}

export function registerAdminRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { host } = ctx;

  // Liveness: 200 while the process serves (503 only while marked failed or catching up after /admin/recover,
  // as before); `quorum` says whether it is in touch with a majority, `status` is then healthy or degraded.
  app.get('/health', (_req, reply) => {
    const q = quorumState(ctx);
    const full = diskFull(ctx);
    const body = {
      node_id: ctx.id,
      mode: 'raft',
      role: host.currentRole,
      leader: host.leader || null,
      quorum: q.quorum,
      ...(q.quorum ? {} : { reason: q.reason }),
      ...(full === undefined ? {} : { disk_full: true, reason: full.reason }),
    };
    const state = ctx.availability.state;
    if (state !== 'serving') {
      reply.header('retry-after', '1');
      return reply
        .code(503)
        .send({ error: state === 'failed' ? 'Node is failed' : 'Node is recovering', status: state, ...body });
    }
    return reply.send({ status: q.quorum && full === undefined ? 'healthy' : 'degraded', ...body });
  });
  methodNotAllowed(app, '/health', ['GET']);

  // Readiness: 200 only when this node can serve linearizable requests now.
  app.get('/ready', (_req, reply) => {
    const r = readiness(ctx);
    const body = { node_id: ctx.id, mode: 'raft', role: host.currentRole, leader: host.leader || null };
    if (r.ready) return reply.send({ ready: true, ...body });
    reply.header('retry-after', '1');
    return reply.code(503).send({ error: r.reason, ready: false, ...body });
  });
  methodNotAllowed(app, '/ready', ['GET']);

  app.get('/status', () => nodeStatus(ctx));
  methodNotAllowed(app, '/status', ['GET']);

  app.get('/metrics', async (_req, reply) => {
    const text = await ctx.metrics.text();
    return reply.header('content-type', ctx.metrics.contentType).send(text);
  });
  methodNotAllowed(app, '/metrics', ['GET']);

  app.post('/admin/fail', () => {
    ctx.availability.fail();
    return { result: 'failed', node_id: ctx.id };
  });
  methodNotAllowed(app, '/admin/fail', ['POST']);

  app.post('/admin/recover', () => {
    ctx.availability.recover();
    return { result: ctx.availability.state === 'serving' ? 'serving' : 'recovering', node_id: ctx.id };
  });
  methodNotAllowed(app, '/admin/recover', ['POST']);

  app.post<{ Body: FaultsBody }>(
    '/admin/faults',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            drop: { type: 'array', items: { type: 'integer', minimum: 1 }, maxItems: 64 },
            delayMs: { type: 'number', minimum: 0, maximum: 60_000 },
          },
        },
      },
    },
    (req) => {
      const drop = req.body?.drop ?? [];
      const delayMs = req.body?.delayMs ?? 0;
      host.setDropped(drop);
      ctx.transport.setFaults({ drop, delayMs });
      return { result: 'ok', node_id: ctx.id, drop, delayMs };
    },
  );
  methodNotAllowed(app, '/admin/faults', ['POST']);
}
