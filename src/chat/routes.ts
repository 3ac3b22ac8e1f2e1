/**
 * The chat app's HTTP API (the "chat app" section of ../shared/api.md). Writes run on the leader (a
 * follower forwards them, Authorization header included) and are answered once applied; reads are
 * linearizable by default (ReadIndex on the leader) or `?consistency=stale` (this node's state, marked);
 * room streams are served by every node from its own applied state.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dispatch, type DispatchContext, type Rendered } from '../server/dispatch.js';
import type { RaftHost } from '../server/driver.js';
import { HttpError, methodNotAllowed } from '../server/http-common.js';
import { bearerToken, hashPassword, newToken, RateLimiter, sessionId, verifyPassword } from '../util/password.js';
import { encodeChatCommand, type ChatCommand, type ChatResult } from './commands.js';
import type { ChatStateMachine } from './state-machine.js';
import type { StreamHub } from './stream.js';

export interface ChatLimits {
  /** Longest message text in UTF-8 bytes (contract: 4096). */
  readonly maxMessageBytes: number;
  /** How long a login token is valid (ms). */
  readonly sessionTtlMs: number;
  /** Login attempts allowed per username per minute. */
  readonly loginsPerMinute: number;
}

export const DEFAULT_CHAT_LIMITS: ChatLimits = {
  maxMessageBytes: 4096,
  sessionTtlMs: 24 * 3600 * 1000,
  loginsPerMinute: 10,
};

export interface ChatRouteContext extends DispatchContext {
  readonly host: RaftHost<ChatResult, ChatCommand>;
  readonly sm: ChatStateMachine;
  readonly hub: StreamHub;
  readonly limits: ChatLimits;
}

type Consistency = 'linearizable' | 'stale';

const USERNAME = /^[A-Za-z0-9_.-]{1,32}$/;
const ROOM = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_REQUEST_ID = 128;
const MAX_PAGE = 1000;

interface RoomParams {
  Params: { room: string };
}
interface MessagesQuery {
  Params: { room: string };
  Querystring: { after?: number; limit?: number; consistency?: Consistency };
}
interface StreamQuery {
  Params: { room: string };
  Querystring: { after?: number };
}
interface ListQuery {
  Querystring: { consistency?: Consistency };
}

const consistency = { type: 'string', enum: ['linearizable', 'stale'] } as const;
const roomParams = { type: 'object', properties: { room: { type: 'string' } } } as const;

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'Request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function checkUsername(v: unknown): string {
  if (typeof v !== 'string' || !USERNAME.test(v)) {
    throw new HttpError(400, 'Username must be 1 to 32 characters of A-Z, a-z, 0-9, "_", "." or "-"');
  }
  return v;
}

function checkPassword(v: unknown): string {
  if (typeof v !== 'string' || v.length < 8 || v.length > 256) {
    throw new HttpError(400, 'Password must be 8 to 256 characters');
  }
  return v;
}

/** A room named in a URL: a name that cannot exist is simply not found. */
function roomOf(name: string): string {
  if (!ROOM.test(name)) throw new HttpError(404, 'Room does not exist');
  return name;
}

function tokenOf(req: FastifyRequest): string {
  const token = bearerToken(req.headers.authorization);
  if (token === undefined) throw new HttpError(401, 'Not authenticated');
  return token;
}

export function registerChatRoutes(app: FastifyInstance, ctx: ChatRouteContext): void {
  const { host, sm } = ctx;
  const logins = new RateLimiter(ctx.limits.loginsPerMinute, 60_000);

  const propose = async (cmd: ChatCommand): Promise<ChatResult> => host.propose(encodeChatCommand(cmd), cmd);
  const rendered = (r: ChatResult): Rendered => ({ status: r.status, body: r.body });

  /** The user of a token on the leader; a token it does not know yet may be in entries it has yet to apply. */
  const leaderUser = async (token: string): Promise<{ session: string; user: string }> => {
    const session = sessionId(token);
    let user = sm.sessionUser(session, Date.now());
    if (user === undefined) {
      await host.readBarrier();
      user = sm.sessionUser(session, Date.now());
    }
    if (user === undefined) throw new HttpError(401, 'Not authenticated');
    return { session, user };
  };

  /** Room existence and membership as this node's applied state has them (401/404/403 otherwise). */
  const checkMember = (token: string, room: string): string => {
    const user = sm.sessionUser(sessionId(token), Date.now());
    if (user === undefined) throw new HttpError(401, 'Not authenticated');
    const r = sm.room(room);
    if (r === undefined) throw new HttpError(404, 'Room does not exist');
    if (!r.members.has(user)) throw new HttpError(403, 'Not a member');
    return user;
  };

  /** Runs `local` once the consistency level allows it: here (stale, marked) or after a ReadIndex round. */
  const read = (req: FastifyRequest, reply: FastifyReply, level: Consistency, local: () => Rendered) => {
    if (level === 'stale') {
      ctx.checkServing();
      const r = local();
      return reply.code(r.status).send({ ...r.body, stale: true, applied: host.applied });
    }
    return dispatch(ctx, req, reply, async () => {
      await host.readBarrier();
      return local();
    });
  };

  app.post('/chat/users', (req, reply) => {
    const body = objectBody(req.body);
    const username = checkUsername(body.username);
    const password = checkPassword(body.password);
    return dispatch(ctx, req, reply, async () => {
      if (sm.tables.userExists(username)) return { status: 409, body: { error: 'Username is taken' } };
      const { salt, hash } = await hashPassword(password);
      return rendered(await propose({ t: 'register', user: username, salt, hash, time: Date.now() }));
    });
  });
  methodNotAllowed(app, '/chat/users', ['POST']);

  app.post('/chat/sessions', (req, reply) => {
    const body = objectBody(req.body);
    if (typeof body.username !== 'string' || typeof body.password !== 'string') {
      throw new HttpError(400, 'Login needs a username and a password');
    }
    const username = body.username;
    const password = body.password;
    // No account can have a name outside the username rules: refused at once, and kept out of the login
    // limiter, which would otherwise hold every distinct name sent (up to the body limit, 64 KiB each) for
    // a minute.
    if (!USERNAME.test(username)) throw new HttpError(401, 'Wrong username or password');
    const limit = () => {
      const waitMs = logins.take(username, Date.now());
      if (waitMs > 0) {
        throw new HttpError(
          429,
          'Too many login attempts; try again later',
          {},
          { 'retry-after': String(Math.ceil(waitMs / 1000)) },
        );
      }
    };
    // Counted where the attempt arrives and on the leader that checks it: a change of leader (whose
    // counts start empty) then does not reset the limit for a client that stays with one node.
    if (!host.isLeader) limit();
    return dispatch(ctx, req, reply, async () => {
      limit();
      await host.readBarrier();
      const secret = USERNAME.test(username) ? sm.tables.userSecret(username) : undefined;
      if (password.length > 256 || !(await verifyPassword(password, secret))) {
        return { status: 401, body: { error: 'Wrong username or password' } };
      }
      const token = newToken();
      const now = Date.now();
      const cmd: ChatCommand = {
        t: 'login',
        user: username,
        session: sessionId(token),
        time: now,
        expires: now + ctx.limits.sessionTtlMs,
      };
      const r = await propose(cmd);
      return r.status === 201 ? { status: 201, body: { token, username } } : rendered(r);
    });
  });

  app.delete('/chat/sessions', (req, reply) => {
    const token = tokenOf(req);
    return dispatch(ctx, req, reply, async () => {
      const { session } = await leaderUser(token);
      return rendered(await propose({ t: 'logout', session, time: Date.now() }));
    });
  });
  methodNotAllowed(app, '/chat/sessions', ['POST', 'DELETE']);

  app.post('/chat/rooms', (req, reply) => {
    const token = tokenOf(req);
    const body = objectBody(req.body);
    if (typeof body.name !== 'string' || !ROOM.test(body.name)) {
      throw new HttpError(400, 'Room name must be 1 to 64 characters of A-Z, a-z, 0-9, "_", "." or "-"');
    }
    const room = body.name;
    return dispatch(ctx, req, reply, async () => {
      const { session } = await leaderUser(token);
      if (sm.room(room) !== undefined) throw new HttpError(409, 'Room exists');
      return rendered(await propose({ t: 'create-room', session, room, time: Date.now() }));
    });
  });

  app.get<ListQuery>(
    '/chat/rooms',
    { schema: { querystring: { type: 'object', properties: { consistency } } } },
    (req, reply) => {
      const token = tokenOf(req);
      return read(req, reply, req.query.consistency ?? 'linearizable', () => {
        if (sm.sessionUser(sessionId(token), Date.now()) === undefined) {
          return { status: 401, body: { error: 'Not authenticated' } };
        }
        const rooms = [...sm.tables.rooms.values()]
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
          .map((r) => ({ name: r.name, members: r.members.size, last_seq: r.lastSeq }));
        return { status: 200, body: { rooms } };
      });
    },
  );
  methodNotAllowed(app, '/chat/rooms', ['GET', 'POST']);

  app.post<RoomParams>('/chat/rooms/:room/join', { schema: { params: roomParams } }, (req, reply) => {
    const token = tokenOf(req);
    const room = roomOf(req.params.room);
    return dispatch(ctx, req, reply, async () => {
      const { session } = await leaderUser(token);
      // The leader's state is current after leaderUser's check or a ReadIndex round: refuse without writing.
      if (sm.room(room) === undefined) {
        await host.readBarrier();
        if (sm.room(room) === undefined) throw new HttpError(404, 'Room does not exist');
      }
      return rendered(await propose({ t: 'join', session, room, time: Date.now() }));
    });
  });
  methodNotAllowed(app, '/chat/rooms/:room/join', ['POST']);

  app.post<RoomParams>('/chat/rooms/:room/messages', { schema: { params: roomParams } }, (req, reply) => {
    const token = tokenOf(req);
    const room = roomOf(req.params.room);
    const body = objectBody(req.body);
    if (typeof body.text !== 'string') throw new HttpError(400, 'Message text must be a string');
    const text = body.text;
    if (text.trim().length === 0) throw new HttpError(400, 'Message text is empty');
    if (Buffer.byteLength(text, 'utf8') > ctx.limits.maxMessageBytes) throw new HttpError(413, 'Message is too long');
    const rid = body.request_id;
    if (rid !== undefined && (typeof rid !== 'string' || rid.length === 0 || rid.length > MAX_REQUEST_ID)) {
      throw new HttpError(400, `request_id must be a string of 1 to ${MAX_REQUEST_ID} characters`);
    }
    return dispatch(ctx, req, reply, async () => {
      const { session, user } = await leaderUser(token);
      // Refuse what would certainly be refused without writing to the log (a retried post with a known
      // request_id goes through: its first outcome is answered).
      const refusal = () => {
        const r = sm.room(room);
        return r === undefined ? 404 : r.members.has(user) ? 0 : 403;
      };
      let refused = refusal();
      if (refused !== 0) {
        // A leader may not have applied everything committed yet: refuse only on current state.
        await host.readBarrier();
        refused = refusal();
      }
      if (refused !== 0 && (rid === undefined || sm.tables.messageByRid(user, rid) === undefined)) {
        throw refused === 404 ? new HttpError(404, 'Room does not exist') : new HttpError(403, 'Not a member');
      }
      const cmd: ChatCommand = {
        t: 'post',
        session,
        room,
        text,
        time: Date.now(),
        ...(rid === undefined ? {} : { rid }),
      };
      return rendered(await propose(cmd));
    });
  });

  app.get<MessagesQuery>(
    '/chat/rooms/:room/messages',
    {
      schema: {
        params: roomParams,
        querystring: {
          type: 'object',
          properties: {
            after: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE },
            consistency,
          },
        },
      },
    },
    (req, reply) => {
      const token = tokenOf(req);
      const room = roomOf(req.params.room);
      const after = req.query.after ?? 0;
      const limit = req.query.limit ?? 100;
      return read(req, reply, req.query.consistency ?? 'linearizable', () => {
        try {
          checkMember(token, room);
        } catch (err) {
          if (err instanceof HttpError) return { status: err.statusCode, body: { error: err.message } };
          throw err;
        }
        const messages = sm.tables
          .messagesAfter(room, after, limit)
          .map((m) => ({ seq: m.seq, user: m.user, text: m.text, time: m.time }));
        return { status: 200, body: { messages, last_seq: sm.room(room)?.lastSeq ?? 0 } };
      });
    },
  );
  methodNotAllowed(app, '/chat/rooms/:room/messages', ['GET', 'POST']);

  app.get<StreamQuery>(
    '/chat/rooms/:room/stream',
    {
      schema: {
        params: roomParams,
        querystring: { type: 'object', properties: { after: { type: 'integer', minimum: 0 } } },
      },
    },
    async (req, reply) => {
      ctx.checkServing();
      const token = tokenOf(req);
      const room = roomOf(req.params.room);
      const last = req.headers['last-event-id'];
      let after = req.query.after ?? 0;
      if (typeof last === 'string' && last.trim() !== '') {
        if (!/^\d{1,15}$/.test(last.trim())) throw new HttpError(400, 'Last-Event-ID must be a message seq');
        after = Number(last.trim());
      }
      if (sm.sessionUser(sessionId(token), Date.now()) === undefined) {
        // A token logged in moments ago may be in entries this node has not applied yet.
        await host.waitApplied(host.commitIndex(), 1000).catch(() => undefined);
      }
      checkMember(token, room);
      reply.hijack();
      ctx.hub.open(room, after, reply.raw);
      return reply;
    },
  );
  methodNotAllowed(app, '/chat/rooms/:room/stream', ['GET']);
}
