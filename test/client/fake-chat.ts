/**
 * A fake chat cluster for chat client and CLI tests: N Fastify servers on 127.0.0.1 sharing one in-memory chat
 * state, speaking the contract's chat API (../shared/api.md, "chat app"). Node 1 is the leader; followers
 * forward (answer for the leader) or, with `forward: false`, answer writes and linearizable reads with 307.
 * Each node can be switched to answer 503 "No quorum" (stale reads and streams are still served from its
 * state), to hang, to apply a write and then hang (a lost answer), or be killed. Its stream can misbehave:
 * replay everything whatever Last-Event-ID says (duplicates), skip some seqs (a gap), go silent, or freeze
 * (heartbeats go on, new messages do not: a node cut off from the majority).
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHttpServer, HttpError } from '../../src/server/http-common.js';

export type Behaviour = 'ok' | 'no-quorum' | 'hang' | 'apply-then-hang';
export type StreamMode = 'ok' | 'replay-all' | 'skip' | 'silent' | 'frozen';

interface Msg {
  seq: number;
  room: string;
  user: string;
  text: string;
  time: number;
}

interface Room {
  members: Set<string>;
  messages: Msg[];
}

interface Outcome {
  status: number;
  body: Record<string, unknown>;
}

export interface FakeChatNode {
  readonly id: number;
  url: string;
  behaviour: Behaviour;
  streamMode: StreamMode;
  /** Seqs a 'skip' stream leaves out. */
  skip: Set<number>;
  app: FastifyInstance;
  down: boolean;
  /** Open streams of this node. */
  readonly subscribers: Set<(m: Msg) => void>;
}

export interface ChatSeen {
  readonly node: number;
  readonly method: string;
  readonly url: string;
  readonly requestId?: string;
  readonly authorization?: string;
  readonly lastEventId?: string;
}

async function closeNow(app: FastifyInstance): Promise<void> {
  const done = app.close();
  app.server.closeAllConnections();
  await done;
}

const USERNAME = /^[A-Za-z0-9_.-]{1,32}$/;

export class FakeChat {
  readonly nodes: FakeChatNode[] = [];
  readonly users = new Map<string, string>();
  readonly sessions = new Map<string, string>();
  readonly rooms = new Map<string, Room>();
  /** `<user> <request_id>` -> first outcome. */
  readonly answers = new Map<string, Outcome>();
  readonly seen: ChatSeen[] = [];
  /** Posts actually applied. */
  applied = 0;
  leader = 1;
  forward = true;
  heartbeatMs = 200;
  private readonly hanging = new Set<() => void>();

  static async start(n: number, opts: { forward?: boolean; heartbeatMs?: number } = {}): Promise<FakeChat> {
    const c = new FakeChat();
    c.forward = opts.forward ?? true;
    c.heartbeatMs = opts.heartbeatMs ?? 200;
    for (let id = 1; id <= n; id++) {
      const node: FakeChatNode = {
        id,
        url: '',
        behaviour: 'ok',
        streamMode: 'ok',
        skip: new Set(),
        app: c.build(id),
        down: false,
        subscribers: new Set(),
      };
      await node.app.listen({ host: '127.0.0.1', port: 0 });
      const addr = node.app.server.address();
      node.url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
      c.nodes.push(node);
    }
    return c;
  }

  get endpoints(): string[] {
    return this.nodes.map((n) => n.url);
  }

  node(id: number): FakeChatNode {
    return this.nodes[id - 1] as FakeChatNode;
  }

  /** Every node answers writes and linearizable reads 503 "No quorum" ('no-quorum') or serves again ('ok'). */
  setAll(b: Behaviour): void {
    for (const n of this.nodes) n.behaviour = b;
  }

  /** Adds a user (and optionally rooms it is a member of) straight into the state. */
  seedUser(user: string, password: string, rooms: string[] = []): void {
    this.users.set(user, password);
    for (const r of rooms) {
      const room = this.rooms.get(r) ?? { members: new Set<string>(), messages: [] };
      room.members.add(user);
      this.rooms.set(r, room);
    }
  }

  /** Appends a message straight into the state (as if committed through another client). */
  append(room: string, user: string, text: string): Msg {
    const r = this.rooms.get(room);
    if (r === undefined) throw new Error(`no room ${room}`);
    const m: Msg = { seq: r.messages.length + 1, room, user, text, time: Date.now() };
    r.messages.push(m);
    for (const n of this.nodes) for (const s of n.subscribers) s(m);
    return m;
  }

  texts(room: string): string[] {
    return (this.rooms.get(room)?.messages ?? []).map((m) => m.text);
  }

  async kill(id: number): Promise<void> {
    const n = this.node(id);
    n.down = true;
    await closeNow(n.app);
  }

  async close(): Promise<void> {
    for (const release of this.hanging) release();
    this.hanging.clear();
    await Promise.all(this.nodes.filter((n) => !n.down).map((n) => closeNow(n.app)));
  }

  private hang(reply: FastifyReply): Promise<FastifyReply> {
    return new Promise((resolve) => {
      const release = (): void => {
        this.hanging.delete(release);
        resolve(reply.code(503).send({ error: 'shutting down' }));
      };
      this.hanging.add(release);
    });
  }

  private build(id: number): FastifyInstance {
    const app = createHttpServer({ logger: false });
    const self = (): FakeChatNode => this.node(id);
    app.get('/health', async () => ({ status: 'healthy', node_id: id, mode: 'raft', role: 'follower' }));

    const userOf = (req: FastifyRequest): string => {
      const h = req.headers.authorization;
      const user = typeof h === 'string' && h.startsWith('Bearer ') ? this.sessions.get(h.slice(7)) : undefined;
      if (user === undefined) throw new HttpError(401, 'Not authenticated');
      return user;
    };
    const roomOf = (req: FastifyRequest, user: string): { name: string; room: Room } => {
      const name = (req.params as { room: string }).room;
      const room = this.rooms.get(name);
      if (room === undefined) throw new HttpError(404, 'Room does not exist');
      if (!room.members.has(user)) throw new HttpError(403, 'Not a member');
      return { name, room };
    };

    /** Records the request, then applies the node's behaviour; true when the request was answered here. */
    const gate = async (req: FastifyRequest, reply: FastifyReply, needsQuorum: boolean): Promise<boolean> => {
      const body = req.body as Record<string, unknown> | undefined;
      const h = req.headers;
      this.seen.push({
        node: id,
        method: req.method,
        url: req.url,
        ...(typeof body?.request_id === 'string' ? { requestId: body.request_id } : {}),
        ...(typeof h.authorization === 'string' ? { authorization: h.authorization } : {}),
        ...(typeof h['last-event-id'] === 'string' ? { lastEventId: h['last-event-id'] } : {}),
      });
      const b = self().behaviour;
      if (b === 'hang') {
        await this.hang(reply);
        return true;
      }
      if (!needsQuorum) return false;
      if (b === 'no-quorum') {
        reply.header('retry-after', '1');
        await reply.code(503).send({ error: 'No quorum' });
        return true;
      }
      if (id !== this.leader && !this.forward) {
        const leaderUrl = this.node(this.leader).url;
        reply.header('location', leaderUrl + req.url);
        await reply.code(307).send({ error: 'Not leader', leader: this.leader, leader_url: leaderUrl });
        return true;
      }
      return false;
    };

    /** Runs a write once; apply-then-hang applies it and never answers. */
    const write = async (reply: FastifyReply, run: () => Outcome, dedupKey?: string): Promise<FastifyReply> => {
      let out = dedupKey === undefined ? undefined : this.answers.get(dedupKey);
      if (out === undefined) {
        try {
          out = run();
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          out = { status: err.statusCode, body: { error: err.message } };
        }
        if (dedupKey !== undefined) this.answers.set(dedupKey, out);
      }
      if (self().behaviour === 'apply-then-hang') return this.hang(reply);
      return reply.code(out.status).send(out.body);
    };

    app.post('/chat/users', async (req, reply) => {
      if (await gate(req, reply, true)) return reply;
      const { username, password } = (req.body ?? {}) as { username?: unknown; password?: unknown };
      return write(reply, () => {
        if (typeof username !== 'string' || !USERNAME.test(username)) throw new HttpError(400, 'Bad username');
        if (typeof password !== 'string' || password.length < 8 || password.length > 256) {
          throw new HttpError(400, 'Bad password');
        }
        if (this.users.has(username)) throw new HttpError(409, 'Username is taken');
        this.users.set(username, password);
        return { status: 201, body: { result: 'created', username } };
      });
    });

    app.post('/chat/sessions', async (req, reply) => {
      if (await gate(req, reply, true)) return reply;
      const { username, password } = (req.body ?? {}) as { username?: unknown; password?: unknown };
      return write(reply, () => {
        if (typeof username !== 'string' || this.users.get(username) !== password) {
          throw new HttpError(401, 'Wrong username or password');
        }
        const token = randomBytes(16).toString('hex');
        this.sessions.set(token, username);
        return { status: 201, body: { token, username } };
      });
    });

    app.delete('/chat/sessions', async (req, reply) => {
      if (await gate(req, reply, true)) return reply;
      userOf(req);
      const token = (req.headers.authorization ?? '').slice(7);
      return write(reply, () => {
        this.sessions.delete(token);
        return { status: 200, body: { result: 'deleted' } };
      });
    });

    app.post('/chat/rooms', async (req, reply) => {
      if (await gate(req, reply, true)) return reply;
      const user = userOf(req);
      const { name } = (req.body ?? {}) as { name?: unknown };
      return write(reply, () => {
        if (typeof name !== 'string' || !USERNAME.test(name)) throw new HttpError(400, 'Bad room name');
        if (this.rooms.has(name)) throw new HttpError(409, 'Room exists');
        this.rooms.set(name, { members: new Set([user]), messages: [] });
        return { status: 201, body: { result: 'created', name } };
      });
    });

    app.get('/chat/rooms', async (req, reply) => {
      const stale = (req.query as { consistency?: string }).consistency === 'stale';
      if (await gate(req, reply, !stale)) return reply;
      userOf(req);
      const rooms = [...this.rooms].map(([name, r]) => ({
        name,
        members: r.members.size,
        last_seq: r.messages.length,
      }));
      return { rooms };
    });

    app.post('/chat/rooms/:room/join', async (req, reply) => {
      if (await gate(req, reply, true)) return reply;
      const user = userOf(req);
      const room = this.rooms.get((req.params as { room: string }).room);
      if (room === undefined) throw new HttpError(404, 'Room does not exist');
      return write(reply, () => {
        room.members.add(user);
        return { status: 200, body: { result: 'joined' } };
      });
    });

    app.post('/chat/rooms/:room/messages', async (req, reply) => {
      if (await gate(req, reply, true)) return reply;
      const user = userOf(req);
      const { name } = roomOf(req, user);
      const body = (req.body ?? {}) as { text?: unknown; request_id?: unknown };
      const rid = typeof body.request_id === 'string' ? `${user} ${body.request_id}` : undefined;
      return write(
        reply,
        () => {
          if (typeof body.text !== 'string' || body.text === '') throw new HttpError(400, 'Empty message');
          if (Buffer.byteLength(body.text) > 4096) throw new HttpError(413, 'Message is too long');
          this.applied++;
          return { status: 201, body: { ...this.append(name, user, body.text) } };
        },
        rid,
      );
    });

    app.get('/chat/rooms/:room/messages', async (req, reply) => {
      const q = req.query as { after?: string; limit?: string; consistency?: string };
      const stale = q.consistency === 'stale';
      if (await gate(req, reply, !stale)) return reply;
      const { room } = roomOf(req, userOf(req));
      const after = Number(q.after ?? 0);
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      const messages = room.messages
        .filter((m) => m.seq > after)
        .slice(0, limit)
        .map(({ seq, user, text, time }) => ({ seq, user, text, time }));
      const extra = stale ? { stale: true, applied: this.applied } : {};
      return { messages, last_seq: room.messages.length, ...extra };
    });

    app.get('/chat/rooms/:room/stream', async (req, reply) => {
      if (await gate(req, reply, false)) return reply;
      const { name, room } = roomOf(req, userOf(req));
      const node = self();
      const header = req.headers['last-event-id'];
      const q = req.query as { after?: string };
      let last = node.streamMode === 'replay-all' ? 0 : Number(typeof header === 'string' ? header : (q.after ?? 0));
      reply.hijack();
      const res: ServerResponse = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': hello\n\n');
      if (node.streamMode === 'silent') return;
      const send = (m: Msg): void => {
        if (m.room !== name || m.seq <= last || node.streamMode === 'frozen') return;
        last = m.seq;
        if (node.streamMode === 'skip' && node.skip.has(m.seq)) return;
        res.write(`id: ${m.seq}\ndata: ${JSON.stringify(m)}\n\n`);
      };
      for (const m of [...room.messages]) send(m);
      node.subscribers.add(send);
      const beat = setInterval(() => res.write(': ping\n\n'), this.heartbeatMs);
      res.on('close', () => {
        clearInterval(beat);
        node.subscribers.delete(send);
      });
    });
    return app;
  }
}
