/**
 * Where a client request runs: on this node when it leads, else forwarded to the leader (or redirected with
 * 307 when forwarding is off), waiting for an election when no leader is known — and always answering
 * within the request timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { NodeId } from '../raft/types.js';
import { HttpError, unavailable } from './http-common.js';
import { HostError, type RaftHost } from './driver.js';
import { FORWARDED_HEADER, NotSentError, type Forwarder } from './forward.js';

export interface Rendered {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export interface DispatchContext {
  readonly id: NodeId;
  readonly host: RaftHost<unknown>;
  readonly forwarder: Forwarder;
  readonly forward: boolean;
  readonly requestTimeoutMs: number;
  readonly tickMs: number;
  /** Throws the 503 a node answers while it is marked failed or still catching up. */
  checkServing(): void;
  /** Headers to add when forwarding `req` to the leader (beyond its Authorization header, always copied). */
  forwardHeaders?(req: FastifyRequest): Readonly<Record<string, string>> | undefined;
}

export function noQuorum(leader: NodeId): HttpError {
  return unavailable('No quorum', { leader: leader === 0 ? null : leader });
}

/** Maps a host failure to the contract's answer (not-leader is handled by the dispatch loop). */
export function hostErrorToHttp(err: HostError, leader: NodeId): HttpError {
  switch (err.failure.kind) {
    case 'failed':
      return unavailable('Node is failed');
    case 'too-large':
      return new HttpError(413, 'Value is too large');
    case 'timeout':
    default:
      return noQuorum(leader);
  }
}

/**
 * Runs `onLeader` if this node leads; otherwise forwards the request to the leader. `onLeader` may throw a
 * HostError: `not-leader` and `lost` (the proposal was overwritten, hence never applied) are retried while
 * time remains; the rest become 503s.
 */
export function dispatch(
  ctx: DispatchContext,
  req: FastifyRequest,
  reply: FastifyReply,
  onLeader: () => Promise<Rendered>,
): Promise<FastifyReply> {
  const deadline = Date.now() + ctx.requestTimeoutMs;
  // The common case, the leader serving a request, without the retry loop's promises.
  ctx.checkServing();
  if (!ctx.host.isLeader) return dispatchLoop(ctx, req, reply, onLeader, deadline);
  return onLeader().then(
    (r) => reply.code(r.status).send(r.body),
    (err: unknown) => {
      throwUnlessRetryable(err, ctx, deadline);
      return dispatchLoop(ctx, req, reply, onLeader, deadline);
    },
  );
}

/** `not-leader` and `lost` are retried while time remains; anything else is the request's answer. */
function throwUnlessRetryable(err: unknown, ctx: DispatchContext, deadline: number): void {
  if (!(err instanceof HostError)) throw err;
  const kind = err.failure.kind;
  if ((kind !== 'not-leader' && kind !== 'lost') || Date.now() >= deadline) {
    throw hostErrorToHttp(err, ctx.host.leader);
  }
}

async function dispatchLoop(
  ctx: DispatchContext,
  req: FastifyRequest,
  reply: FastifyReply,
  onLeader: () => Promise<Rendered>,
  deadline: number,
): Promise<FastifyReply> {
  for (;;) {
    ctx.checkServing();
    if (ctx.host.isLeader) {
      try {
        const r = await onLeader();
        return reply.code(r.status).send(r.body);
      } catch (err) {
        throwUnlessRetryable(err, ctx, deadline);
        continue;
      }
    }
    const leader = ctx.host.leader;
    if (leader !== 0 && leader !== ctx.id && !ctx.host.droppedPeers.includes(leader)) {
      if (req.headers[FORWARDED_HEADER] !== undefined) {
        // Never forward twice: the sender retries or gives up.
        throw unavailable('Not leader', { leader, leader_url: ctx.forwarder.urlOf(leader) ?? null });
      }
      if (!ctx.forward) {
        const leaderUrl = ctx.forwarder.urlOf(leader);
        if (leaderUrl === undefined) throw unavailable('Not leader', { leader, leader_url: null });
        reply.header('location', leaderUrl + req.url);
        return reply.code(307).send({ error: 'Not leader', leader, leader_url: leaderUrl });
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw noQuorum(leader);
      try {
        const body = req.body === undefined || req.body === null ? undefined : JSON.stringify(req.body);
        const auth = req.headers.authorization;
        const extra = ctx.forwardHeaders?.(req);
        const headers = auth === undefined ? extra : { ...extra, authorization: auth };
        const res = await ctx.forwarder.request(leader, req.method, req.url, body, remaining, headers);
        if (res.status === 503 && isNotLeaderBody(res.body) && Date.now() < deadline) {
          await sleep(ctx.tickMs);
          continue;
        }
        for (const h of ['retry-after', 'location'] as const) {
          const v = res.headers[h];
          if (typeof v === 'string') reply.header(h, v);
        }
        reply.header('content-type', res.headers['content-type'] ?? 'application/json; charset=utf-8');
        return reply.code(res.status).send(res.body);
      } catch (err) {
        if (err instanceof NotSentError && Date.now() < deadline) {
          await sleep(ctx.tickMs);
          continue;
        }
        // The leader may or may not have received it: the outcome is unknown, so no blind retry.
        throw noQuorum(leader);
      }
    }
    if (Date.now() >= deadline) throw noQuorum(leader);
    await sleep(Math.min(ctx.tickMs, Math.max(1, deadline - Date.now())));
  }
}

function isNotLeaderBody(b: Buffer): boolean {
  // A forwarded request that reached a node that has just lost leadership.
  return b.length < 512 && b.includes('"Not leader"');
}
