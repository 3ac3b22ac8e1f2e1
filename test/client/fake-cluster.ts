/**
 * A fake raft-mode cluster for client and CLI tests: N Fastify servers on 127.0.0.1 sharing one in-memory
 * store, speaking the contract's raft-mode API. One node is the leader; followers forward (answer for the
 * leader) or, with `forward: false`, answer 307 "Not leader". Each node's behaviour can be switched to
 * answer 503 "No quorum", to hang, to apply a write and then hang (a lost answer), or to be down.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDeepStrictEqual } from 'node:util';
import { createHttpServer, checkKey, checkPutBody, DEFAULT_LIMITS, HttpError } from '../../src/server/http-common.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Behaviour = 'ok' | 'unavailable' | 'hang' | 'apply-then-hang';

type Outcome = { status: number; body: Record<string, Json> };

interface Rec {
  value: Json;
  version: number;
  revision: number;
}

export interface FakeNode {
  readonly id: number;
  url: string;
  port: number;
  behaviour: Behaviour;
  app: FastifyInstance;
  down: boolean;
}

export interface Seen {
  readonly node: number;
  readonly method: string;
  readonly url: string;
  readonly requestId?: string;
}

/** Closes a server without waiting for clients' keep-alive connections to time out. */
async function closeNow(app: FastifyInstance): Promise<void> {
  const done = app.close();
  app.server.closeAllConnections();
  await done;
}

export class FakeCluster {
  readonly nodes: FakeNode[] = [];
  readonly store = new Map<string, Rec>();
  /** request_id -> first answer (exactly-once). */
  readonly answers = new Map<string, Outcome>();
  readonly seen: Seen[] = [];
  /** Writes actually applied to the store. */
  applied = 0;
  revision = 0;
  leader = 1;
  term = 2;
  forward = true;
  private readonly hanging = new Set<() => void>();

  static async start(n: number, opts: { forward?: boolean } = {}): Promise<FakeCluster> {
    const c = new FakeCluster();
    c.forward = opts.forward ?? true;
    for (let id = 1; id <= n; id++) {
      const node: FakeNode = { id, url: '', port: 0, behaviour: 'ok', app: c.build(id), down: false };
      await node.app.listen({ host: '127.0.0.1', port: 0 });
      const addr = node.app.server.address();
      node.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      node.url = `http://127.0.0.1:${node.port}`;
      c.nodes.push(node);
    }
    return c;
  }

  get endpoints(): string[] {
    return this.nodes.map((n) => n.url);
  }

  node(id: number): FakeNode {
    return this.nodes[id - 1] as FakeNode;
  }

  /** Stops a node's server: connections to it are refused. */
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
    const self = (): FakeNode => this.node(id);
    const status = () => ({
      id,
      mode: 'raft',
      role: id === this.leader ? 'leader' : 'follower',
      term: this.term,
      commit: this.revision,
      applied: this.revision,
      leader: this.leader,
    });
    app.get('/health', async () => ({ status: 'healthy', node_id: id, mode: 'raft', role: status().role }));
    app.get('/status', async () => status());

    /** Common gate: behaviour, then leadership. Returns true when the request was answered here. */
    const gate = async (req: FastifyRequest, reply: FastifyReply, leaderOnly: boolean): Promise<boolean> => {
      const body = req.body as Record<string, Json> | undefined;
      const requestId = typeof body?.request_id === 'string' ? body.request_id : undefined;
      this.seen.push({ node: id, method: req.method, url: req.url, ...(requestId ? { requestId } : {}) });
      const b = self().behaviour;
      if (b === 'unavailable') {
        reply.header('retry-after', '1');
        await reply.code(503).send({ error: 'No quorum' });
        return true;
      }
      if (b === 'hang') {
        await this.hang(reply);
        return true;
      }
      if (leaderOnly && id !== this.leader && !this.forward) {
        if (this.leader === 0) {
          reply.header('retry-after', '1');
          await reply.code(503).send({ error: 'No leader' });
          return true;
        }
        const leaderUrl = this.node(this.leader).url;
        reply.header('location', leaderUrl + req.url);
        await reply.code(307).send({ error: 'Not leader', leader: this.leader, leader_url: leaderUrl });
        return true;
      }
      return false;
    };

    const finishWrite = async (req: FastifyRequest, reply: FastifyReply, run: () => Outcome): Promise<FastifyReply> => {
      const body = req.body as Record<string, Json> | undefined;
      const rid = typeof body?.request_id === 'string' ? body.request_id : undefined;
      let out: Outcome | undefined = rid === undefined ? undefined : this.answers.get(rid);
      if (out === undefined) {
        out = run();
        if (rid !== undefined) this.answers.set(rid, out);
      }
      if (self().behaviour === 'apply-then-hang') return this.hang(reply);
      return reply.code(out.status).send({ ...out.body, leader: this.leader });
    };

    const keyOf = (req: FastifyRequest): string =>
      checkKey((req.params as Record<string, string | undefined>)['*'], DEFAULT_LIMITS);

    app.put('/kvs/*', async (req, reply) => {
      const key = keyOf(req);
      const body = checkPutBody(req.body, DEFAULT_LIMITS) as Record<string, Json> & { value: Json };
      if (await gate(req, reply, true)) return reply;
      return finishWrite(req, reply, (): Outcome => {
        const cur = this.store.get(key);
        const current = cur === undefined ? null : { key, ...cur };
        if (typeof body.if_version === 'number' && (cur?.version ?? 0) !== body.if_version) {
          return { status: 412, body: { error: 'Precondition failed', current } };
        }
        if ('if_value' in body && (cur === undefined || !isDeepStrictEqual(cur.value, body.if_value))) {
          return { status: 412, body: { error: 'Precondition failed', current } };
        }
        this.applied++;
        const rec = { value: body.value, version: (cur?.version ?? 0) + 1, revision: ++this.revision };
        this.store.set(key, rec);
        return {
          status: cur ? 200 : 201,
          body: { result: cur ? 'replaced' : 'created', revision: rec.revision, version: rec.version },
        };
      });
    });

    app.get('/kvs/*', async (req, reply) => {
      const key = keyOf(req);
      const consistency = (req.query as Record<string, string | undefined>).consistency ?? 'linearizable';
      if (!['linearizable', 'lease', 'stale'].includes(consistency)) throw new HttpError(400, 'Bad consistency');
      if (await gate(req, reply, consistency !== 'stale')) return reply;
      const rec = this.store.get(key);
      if (rec === undefined) return reply.code(404).send({ error: 'Key does not exist' });
      const extra = consistency === 'stale' ? { stale: true, applied: this.revision } : {};
      return {
        result: 'found',
        value: rec.value,
        revision: rec.revision,
        version: rec.version,
        leader: this.leader,
        ...extra,
      };
    });

    app.delete('/kvs/*', async (req, reply) => {
      const key = keyOf(req);
      if (await gate(req, reply, true)) return reply;
      return finishWrite(req, reply, (): Outcome => {
        if (!this.store.has(key)) return { status: 404, body: { error: 'Key does not exist' } };
        this.applied++;
        this.store.delete(key);
        return { status: 200, body: { result: 'deleted', revision: ++this.revision } };
      });
    });

    app.get('/kvs', async (req, reply) => {
      const q = req.query as Record<string, string | undefined>;
      const limit = q.limit === undefined ? 1000 : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new HttpError(400, 'Bad limit');
      if (await gate(req, reply, true)) return reply;
      const prefix = q.prefix ?? '';
      const after = q.after ?? '';
      const all = [...this.store.entries()]
        .filter(([k]) => k.startsWith(prefix) && k > after)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, r]) => ({ key, value: r.value, version: r.version, revision: r.revision }));
      const keys = all.slice(0, limit);
      return { result: 'found', keys, count: keys.length, more: all.length > limit, leader: this.leader };
    });

    app.post('/txn', async (req, reply) => {
      const body = req.body as Record<string, Json> | undefined;
      if (!body || !Array.isArray(body.compare) || !Array.isArray(body.success)) {
        throw new HttpError(400, 'txn needs compare and success arrays');
      }
      if (await gate(req, reply, true)) return reply;
      return finishWrite(req, reply, (): Outcome => {
        const holds = (body.compare as Json[]).every((c) => {
          const cmp = c as { key: string; target: string; op: string; value: Json };
          const rec = this.store.get(cmp.key);
          const actual: Json =
            cmp.target === 'exists'
              ? rec !== undefined
              : cmp.target === 'value'
                ? (rec?.value ?? null)
                : (rec?.version ?? 0);
          return cmp.op === '!=' ? !isDeepStrictEqual(actual, cmp.value) : isDeepStrictEqual(actual, cmp.value);
        });
        const ops = (holds ? body.success : (body.failure ?? [])) as { op: string; key: string; value?: Json }[];
        const rev = ++this.revision;
        this.applied++;
        const results: Json[] = ops.map((op): Json => {
          const cur = this.store.get(op.key);
          if (op.op === 'put') {
            this.store.set(op.key, { value: op.value ?? null, version: (cur?.version ?? 0) + 1, revision: rev });
            return { result: cur ? 'replaced' : 'created' };
          }
          if (op.op === 'delete') {
            this.store.delete(op.key);
            return { result: cur ? 'deleted' : 'not-found' };
          }
          return cur ? { result: 'found', value: cur.value } : { result: 'not-found' };
        });
        return { status: 200, body: { succeeded: holds, results, revision: rev } };
      });
    });
    return app;
  }
}
