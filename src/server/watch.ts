/**
 * `GET /watch?prefix=<p>&since_revision=<r>` (raft mode, key-value app; ../shared/api.md): a Server-Sent
 * Events stream of every change to keys under the prefix after revision `r`, in commit order, served by any
 * node from what it has applied (so only committed changes, on a follower too).
 *
 * Each change is one event: `event: put|delete`, `data: {"type","key","value","revision","version"}`. The
 * last change of a revision carries `id: <revision>` (a transaction's changes share one revision, so a client
 * that resumes with `Last-Event-ID` never gets half a transaction twice). While idle, a `progress` event
 * (`id: <applied>`) every few seconds moves a quiet watcher's resume point forward; one is sent at the start
 * too (`id: <since_revision>`, or the applied revision when none was given).
 *
 * A revision older than the node's history (`WatchHistory.compactRevision`) answers
 * `410 {"error":"Revision compacted","compact_revision":n}`; a stream that falls that far behind (a reader
 * too slow for the history, a snapshot installed past it) ends with an `event: compacted` saying the same.
 * Slow readers are paced by the socket: while a write waits for `drain` the stream reads from the history.
 * With auth on, a user who loses read permission on the prefix gets `event: cancelled` (Permission denied)
 * with the next change, and the stream ends.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { KvStateMachine } from '../kv/state-machine.js';
import type { KvChange, WatchHistory, WatchListener } from '../kv/watch.js';
import { HttpError, methodNotAllowed } from './http-common.js';
import type { AuthGate } from './kv-auth.js';

const PROGRESS_MS = 5000;
const PAGE = 1024;

interface Subscriber {
  readonly prefix: string;
  readonly res: ServerResponse;
  /** Revision up to which everything matching was written (or passed over). */
  after: number;
  /** Changes queued for the next flush. */
  pending: KvChange[];
  /** Waiting for `drain`: live changes are left to the history. */
  busy: boolean;
  closed: boolean;
  /** With auth on: whether the user may still read the prefix (a revoked permission ends the stream). */
  readonly allowed?: () => boolean;
}

function frames(changes: readonly KvChange[]): string {
  let out = '';
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i] as KvChange;
    const last = i + 1 === changes.length || (changes[i + 1] as KvChange).revision !== c.revision;
    const data =
      c.type === 'put'
        ? { type: c.type, key: c.key, value: c.value, revision: c.revision, version: c.version }
        : { type: c.type, key: c.key, revision: c.revision, version: c.version };
    out += `event: ${c.type}\n${last ? `id: ${c.revision}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
  }
  return out;
}

function compactedFrame(compact: number): string {
  return `event: compacted\ndata: ${JSON.stringify({ error: 'Revision compacted', compact_revision: compact })}\n\n`;
}

export class WatchHub implements WatchListener {
  private readonly subs = new Set<Subscriber>();
  private readonly unsubscribe: () => void;
  private readonly timer: NodeJS.Timeout;
  private flushScheduled = false;
  /** Events written (for status and tests). */
  delivered = 0;

  constructor(
    private readonly history: WatchHistory,
    private readonly kv: KvStateMachine,
  ) {
    this.unsubscribe = history.subscribe(this);
    this.timer = setInterval(() => this.progress(), PROGRESS_MS);
    this.timer.unref();
  }

  get watchers(): number {
    return this.subs.size;
  }

  /** Starts streaming changes under `prefix` after `after` on `res` (headers not yet sent; `after` not compacted). */
  open(prefix: string, after: number, res: ServerResponse, allowed?: () => boolean): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // The starting point, as a progress event: a client that gave none learns where it may resume from.
    res.write(`retry: 1000\n\nevent: progress\nid: ${after}\ndata: {"revision":${after}}\n\n`);
    const sub: Subscriber = {
      prefix,
      res,
      after,
      pending: [],
      busy: false,
      closed: false,
      ...(allowed === undefined ? {} : { allowed }),
    };
    this.subs.add(sub);
    const done = () => this.drop(sub);
    res.on('close', done);
    res.on('error', done);
    this.catchUp(sub);
  }

  changed(c: KvChange): void {
    for (const sub of this.subs) {
      if (sub.busy || sub.closed || c.revision <= sub.after || !c.key.startsWith(sub.prefix)) continue;
      sub.pending.push(c);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    }
  }

  reset(compactRevision: number): void {
    for (const sub of this.subs) {
      sub.pending = [];
      if (sub.after < compactRevision) this.endCompacted(sub);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
    for (const sub of this.subs) sub.res.end();
    this.subs.clear();
  }

  private drop(sub: Subscriber): void {
    sub.closed = true;
    this.subs.delete(sub);
  }

  private endCompacted(sub: Subscriber): void {
    sub.res.end(compactedFrame(this.history.compactRevision));
    this.drop(sub);
  }

  /** Writes each subscriber's queued changes, one write per subscriber (all of an applied batch). */
  private flush(): void {
    this.flushScheduled = false;
    for (const sub of this.subs) {
      if (sub.pending.length === 0 || sub.busy || sub.closed) continue;
      const batch = sub.pending;
      sub.pending = [];
      this.write(sub, batch);
    }
  }

  private write(sub: Subscriber, batch: readonly KvChange[]): boolean {
    if (sub.allowed !== undefined && !sub.allowed()) {
      // The user lost read permission on the prefix (or was deleted): the watch ends, as in etcd.
      sub.res.end(`event: cancelled\ndata: ${JSON.stringify({ error: 'Permission denied' })}\n\n`);
      this.drop(sub);
      return false;
    }
    sub.after = (batch[batch.length - 1] as KvChange).revision;
    this.delivered += batch.length;
    if (sub.res.write(frames(batch))) return true;
    sub.busy = true;
    sub.res.once('drain', () => {
      sub.busy = false;
      this.catchUp(sub);
    });
    return false;
  }

  /** Writes what the history holds after the subscriber's revision, page by page, until caught up or blocked. */
  private catchUp(sub: Subscriber): void {
    if (sub.closed) return;
    // Live changes are written by `flush`; what is queued is also in the history.
    sub.pending = [];
    for (;;) {
      if (sub.after < this.history.compactRevision) return this.endCompacted(sub);
      const page = this.history.since(sub.after, sub.prefix, PAGE);
      if (page.length === 0) {
        // Nothing matching up to the last change kept.
        sub.after = Math.max(sub.after, this.history.lastRevision);
        return;
      }
      if (!this.write(sub, page)) return;
    }
  }

  /** Idle subscribers learn the applied revision (their resume point moves on past changes they do not watch). */
  private progress(): void {
    const applied = this.kv.appliedIndex;
    for (const sub of this.subs) {
      if (sub.busy || sub.closed || sub.pending.length > 0 || sub.after >= applied) continue;
      sub.after = applied;
      sub.res.write(`event: progress\nid: ${applied}\ndata: {"revision":${applied}}\n\n`);
    }
  }
}

interface WatchQuery {
  Querystring: { prefix?: string; since_revision?: number };
}

export interface WatchRouteContext {
  readonly kv: KvStateMachine;
  readonly history: WatchHistory;
  readonly hub: WatchHub;
  readonly gate: AuthGate;
  checkServing(): void;
}

export function registerWatchRoute(app: FastifyInstance, ctx: WatchRouteContext): void {
  app.get<WatchQuery>(
    '/watch',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            prefix: { type: 'string', maxLength: 4096 },
            since_revision: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
    async (req, reply) => {
      ctx.checkServing();
      const prefix = req.query.prefix ?? '';
      let after = req.query.since_revision ?? ctx.kv.appliedIndex;
      const last = req.headers['last-event-id'];
      if (typeof last === 'string' && last.trim() !== '') {
        if (!/^\d{1,15}$/.test(last.trim())) throw new HttpError(400, 'Last-Event-ID must be a revision');
        after = Number(last.trim());
      }
      let allowed: (() => boolean) | undefined;
      if (ctx.gate.enabled) {
        const user = await ctx.gate.check(req, (auth, u) => auth.canReadPrefix(u, prefix));
        allowed = () => !ctx.gate.enabled || ctx.gate.state.canReadPrefix(user, prefix);
      }
      const compact = ctx.history.compactRevision;
      if (after < compact) {
        return reply.code(410).send({ error: 'Revision compacted', compact_revision: compact });
      }
      reply.hijack();
      ctx.hub.open(prefix, after, reply.raw, allowed);
      return reply;
    },
  );
  methodNotAllowed(app, '/watch', ['GET']);
}
