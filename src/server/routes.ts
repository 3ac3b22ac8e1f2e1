/**
 * The raft-mode client API (../shared/api.md): `/kvs/<key>`, `/kvs?prefix=`, `/txn`. Writes are proposed
 * on the leader and answered once applied; reads are linearizable (ReadIndex), lease or stale.
 *
 * With auth on (replicated, see kv-auth.ts and auth-routes.ts) the node that runs a request checks it: the
 * leader for writes and linearizable or lease reads (after the read barrier, so a change acknowledged
 * before the request is seen), the local node for stale reads. Writes are proposed as their user's, and
 * the state machine checks the permissions again when it applies them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthState } from '../kv/auth.js';
import { encodeCommand, type AsUserCommand, type Command, type LogCommand } from '../kv/commands.js';
import { isParseError, parseDeleteRequest, parsePutRequest, parseTxnRequest, type ParseLimits } from '../kv/parse.js';
import { renderResult, type ApplyResult, type KeyRecord } from '../kv/results.js';
import type { KvStateMachine } from '../kv/state-machine.js';
import { checkKey, HttpError, methodNotAllowed, type Limits } from './http-common.js';
import { registerAuthRoutes } from './auth-routes.js';
import { dispatch, type DispatchContext, type Rendered } from './dispatch.js';
import type { RaftHost } from './driver.js';
import { AuthGate } from './kv-auth.js';
import { registerWatchRoute, type WatchHub } from './watch.js';
import type { WatchHistory } from '../kv/watch.js';

export type Consistency = 'linearizable' | 'lease' | 'stale';

export interface KvRouteContext extends DispatchContext {
  readonly host: RaftHost<ApplyResult, LogCommand>;
  readonly kv: KvStateMachine;
  readonly limits: Limits;
  readonly parseLimits: ParseLimits;
  /** Forwarded requests carry a verified peer credential (a follower's `x-quorumkv-user` is then trusted). */
  readonly peerAuthenticated?: boolean;
  /** The watch history and its streams (`GET /watch`). */
  readonly watch?: { readonly history: WatchHistory; readonly hub: WatchHub };
}

/** Who may run a request, given the auth state and the authenticated user. */
type Allowed = (auth: AuthState, user: string) => boolean;

const consistencySchema = {
  type: 'string',
  enum: ['linearizable', 'lease', 'stale'],
} as const;

const MAX_LIST = 10_000;

interface KeyRoute {
  Params: { '*': string };
  Querystring: { consistency?: Consistency };
}

interface ListRoute {
  Querystring: { prefix?: string; limit?: number; after?: string; consistency?: Consistency };
}

export function registerKvRoutes(app: FastifyInstance, ctx: KvRouteContext): void {
  const leaderField = (): number | null => (ctx.host.leader === 0 ? null : ctx.host.leader);
  const gate = new AuthGate(ctx.kv, ctx.host, { trustForwardedUser: ctx.peerAuthenticated === true });
  const dctx: KvRouteContext = { ...ctx, forwardHeaders: (req) => gate.forwardHeaders(req) };

  const rendered = (result: ApplyResult): Rendered => renderResult(result, ctx.id);
  /** With auth on: the user's command, checked here first so that a refusal costs no log entry. */
  const proposeAs = (user: string, cmd: Command): Promise<Rendered> => {
    const as: AsUserCommand = { op: 'as-user', user, command: cmd };
    return ctx.host.propose(encodeCommand(as), as).then(rendered);
  };
  const proposeAsUser = (req: FastifyRequest, cmd: Command): Promise<Rendered> => {
    const allowed: Allowed = (auth, u) => auth.permits(u, cmd);
    const user = gate.quickCheck(req, allowed);
    if (user !== undefined) return proposeAs(user, cmd);
    return gate.check(req, allowed).then((u) => proposeAs(u, cmd));
  };
  const write = (req: FastifyRequest, reply: FastifyReply, cmd: Command) => {
    const data = encodeCommand(cmd);
    return dispatch(dctx, req, reply, () =>
      gate.enabled ? proposeAsUser(req, cmd) : ctx.host.propose(data, cmd).then(rendered),
    );
  };

  /**
   * Runs `local` against this node's state machine once the consistency level allows it, and, with auth on,
   * once the request's user passes `allowed`.
   */
  const read = (
    req: FastifyRequest,
    reply: FastifyReply,
    consistency: Consistency,
    allowed: Allowed,
    local: () => Rendered,
  ) => {
    if (consistency === 'stale') {
      ctx.checkServing();
      if (gate.enabled && gate.quickCheck(req, allowed) === undefined) {
        return gate.check(req, allowed).then(() => {
          const r = local();
          return reply.code(r.status).send({ ...r.body, stale: true, applied: ctx.host.applied });
        });
      }
      const r = local();
      return reply.code(r.status).send({ ...r.body, stale: true, applied: ctx.host.applied });
    }
    return dispatch(dctx, req, reply, async () => {
      if (consistency === 'lease' && ctx.host.hasLease()) {
        // The lease makes this node's commit index current; the state machine must catch up with it.
        await ctx.host.waitApplied(ctx.host.commitIndex());
      } else {
        await ctx.host.readBarrier();
      }
      if (gate.enabled) await gate.check(req, allowed, true);
      return local();
    });
  };

  const keyOf = (req: FastifyRequest<KeyRoute>): string => checkKey(req.params['*'], ctx.limits);

  app.get<KeyRoute>(
    '/kvs/*',
    { schema: { querystring: { type: 'object', properties: { consistency: consistencySchema } } } },
    (req, reply) => {
      const key = keyOf(req);
      const allowed: Allowed = (auth, user) => auth.canRead(user, key);
      return read(req, reply, req.query.consistency ?? 'linearizable', allowed, () => {
        const rec = ctx.kv.get(key);
        if (rec === undefined) return { status: 404, body: { error: 'Key does not exist', leader: leaderField() } };
        return {
          status: 200,
          body: {
            result: 'found',
            value: rec.value,
            revision: rec.revision,
            version: rec.version,
            leader: leaderField(),
          },
        };
      });
    },
  );

  app.put<KeyRoute>('/kvs/*', (req, reply) => {
    const key = keyOf(req);
    // The contract's body errors (no value, not an object, too large) come from parsePutRequest.
    const cmd = parsePutRequest(key, req.body, ctx.parseLimits);
    if (isParseError(cmd)) throw new HttpError(cmd.status, cmd.error);
    return write(req, reply, cmd);
  });

  app.delete<KeyRoute>('/kvs/*', (req, reply) => {
    const key = keyOf(req);
    const cmd = parseDeleteRequest(key, req.body, ctx.parseLimits);
    if (isParseError(cmd)) throw new HttpError(cmd.status, cmd.error);
    return write(req, reply, cmd);
  });
  methodNotAllowed(app, '/kvs/*', ['GET', 'PUT', 'DELETE']);

  app.get<ListRoute>(
    '/kvs',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            prefix: { type: 'string' },
            after: { type: 'string' },
            limit: { type: 'integer', minimum: 1, maximum: MAX_LIST },
            consistency: consistencySchema,
          },
        },
      },
    },
    (req, reply) => {
      const prefix = req.query.prefix ?? '';
      const limit = req.query.limit ?? 1000;
      const after = req.query.after;
      const allowed: Allowed = (auth, user) => auth.canReadPrefix(user, prefix);
      return read(req, reply, req.query.consistency ?? 'linearizable', allowed, () => {
        // One extra record tells whether the listing was cut by the limit.
        const recs = ctx.kv.list(prefix, limit + 1, after);
        const more = recs.length > limit;
        if (more) recs.length = limit;
        return {
          status: 200,
          body: {
            result: 'found',
            keys: recs.map(listEntry),
            count: recs.length,
            more,
            revision: ctx.host.applied,
            leader: leaderField(),
          },
        };
      });
    },
  );
  methodNotAllowed(app, '/kvs', ['GET']);

  app.post('/txn', (req, reply) => {
    const cmd = parseTxnRequest(req.body, ctx.parseLimits);
    if (isParseError(cmd)) throw new HttpError(cmd.status, cmd.error);
    return write(req, reply, cmd);
  });
  methodNotAllowed(app, '/txn', ['POST']);

  registerAuthRoutes(app, { ...dctx, gate });
  if (ctx.watch !== undefined) {
    registerWatchRoute(app, { ...ctx.watch, kv: ctx.kv, gate, checkServing: () => ctx.checkServing() });
  }
}

function listEntry(r: KeyRecord): Record<string, unknown> {
  return { key: r.key, value: r.value, revision: r.revision, version: r.version };
}
