/**
 * quorumkv chat client (the "chat app" section of ../shared/api.md), modelled on the KV Client:
 *
 * - Each request goes to the preferred endpoint (the last one that answered, or the target of a `307`), follows
 *   redirects itself, and fails over to the next endpoint on a connection error, a timeout, a 503 or another
 *   5xx, with jittered exponential backoff (Retry-After honoured once every endpoint failed in a row) and an
 *   overall deadline; then it throws UnavailableError. 4xx answers are final: typed ChatErrors.
 * - Posts carry `request_id = <clientId>:<seq>`, the same on every retry, so the server applies each once.
 * - The outbox (`postWithOutbox`) keeps posts that cannot be committed now and retries them in the
 *   background, in order per room, until each is acknowledged or refused for good.
 * - `messages` may fall back to a stale read when no node can serve a linearizable one (`allowStale`).
 * - `stream` follows a room over Server-Sent Events and survives the loss of nodes (see ChatStream).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { normalizeEndpoint } from './client.js';
import { clientFetch, type FetchLike } from './fetch.js';
import { UnavailableError } from './errors.js';
import type { JsonValue } from './types.js';
import {
  ChatError,
  RateLimitedError,
  chatError,
  type ChatClientEvents,
  type ChatClientOptions,
  type ChatMessage,
  type MessagesOptions,
  type MessagesResult,
  type OutboxEntry,
  type QueuedPost,
  type RoomInfo,
  type StreamOptions,
} from './chat-types.js';
import { ChatStream, describeError, toChatMessage, type StreamHost } from './chat-stream.js';

type Body = Record<string, JsonValue>;

interface Answer {
  readonly status: number;
  readonly body: Body;
  readonly endpoint: string;
  readonly headers: Headers;
}

interface Call {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: Body;
}

interface CallOptions {
  /** Give up (UnavailableError) as soon as every endpoint failed in a row, not at the deadline. */
  readonly stopAfterRound?: boolean;
  /** A stale read: its success says nothing about the quorum (no 'available' event). */
  readonly stale?: boolean;
  /** Called each time every endpoint has failed in a row. */
  readonly onRound?: (reason: string) => void;
}

interface Pending {
  entry: { -readonly [K in keyof OutboxEntry]: OutboxEntry[K] };
  resolve(m: ChatMessage): void;
  reject(e: Error): void;
}

function isObject(v: unknown): v is Body {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function num(v: JsonValue | undefined, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}

function str(v: JsonValue | undefined): string {
  return typeof v === 'string' ? v : '';
}

function errorText(body: Body): string {
  return typeof body.error === 'string' ? body.error : JSON.stringify(body).slice(0, 200);
}

function retryAfterMs(h: Headers): number | undefined {
  const s = Number(h.get('retry-after'));
  return Number.isFinite(s) && s > 0 ? s * 1000 : undefined;
}

const room = (name: string): string => `/chat/rooms/${encodeURIComponent(name)}`;

export class ChatClient extends EventEmitter<ChatClientEvents> {
  readonly endpoints: readonly string[];
  readonly clientId: string;
  private readonly timeoutMs: number;
  private readonly deadlineMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly streamIdleMs: number;
  private readonly streamLagMs: number;
  private seq = 0;
  private preferred: string;
  private _token: string | undefined;
  private _username: string | undefined;
  private unavailable = false;
  private closed = false;
  private readonly closer = new AbortController();
  /** Outbox: pending posts per room, in order; one worker per room with entries. */
  private readonly queues = new Map<string, Pending[]>();
  private readonly drainWaiters: (() => void)[] = [];
  private readonly streams = new Set<ChatStream>();
  private readonly fetch: FetchLike;

  constructor(opts: ChatClientOptions) {
    super();
    if (opts.endpoints.length === 0) throw new TypeError('ChatClient needs at least one endpoint');
    this.endpoints = [...new Set(opts.endpoints.map(normalizeEndpoint))];
    this.preferred = this.endpoints[0] as string;
    this.timeoutMs = opts.timeoutMs ?? 4000;
    this.deadlineMs = opts.deadlineMs ?? 15000;
    this.backoffMs = opts.backoffMs ?? 25;
    this.maxBackoffMs = opts.maxBackoffMs ?? 1000;
    this.streamIdleMs = opts.streamIdleMs ?? 30000;
    this.streamLagMs = opts.streamLagMs ?? 3000;
    this.clientId = opts.clientId ?? randomBytes(8).toString('hex');
    this._token = opts.token;
    this._username = opts.username;
    this.fetch = clientFetch(opts);
  }

  /** The bearer token of the current session, if logged in. */
  get token(): string | undefined {
    return this._token;
  }

  get username(): string | undefined {
    return this._username;
  }

  /** The endpoint the next request goes to first. */
  get currentEndpoint(): string {
    return this.preferred;
  }

  /** Pending posts of the outbox, per room in sending order. */
  get outbox(): readonly OutboxEntry[] {
    return [...this.queues.values()].flatMap((q) => q.map((p) => ({ ...p.entry })));
  }

  async register(username: string, password: string): Promise<{ username: string }> {
    const a = await this.call({ method: 'POST', path: '/chat/users', body: { username, password } });
    return { username: str(a.body.username) || username };
  }

  /** Opens a session; its token is sent with every later request. */
  async login(username: string, password: string): Promise<{ token: string; username: string }> {
    const a = await this.call({ method: 'POST', path: '/chat/sessions', body: { username, password } });
    const token = str(a.body.token);
    if (token === '') throw new ChatError(a.status, a.body, 'login answer without a token');
    this._token = token;
    this._username = str(a.body.username) || username;
    return { token, username: this._username };
  }

  /** Ends the session on the server (if it still exists) and forgets the token. */
  async logout(): Promise<void> {
    if (this._token === undefined) return;
    try {
      await this.call({ method: 'DELETE', path: '/chat/sessions' });
    } catch (err) {
      if (!(err instanceof ChatError && err.status === 401)) throw err;
    }
    this._token = undefined;
    this._username = undefined;
  }

  /** Creates a room (the creator joins it). ConflictError "Room exists" if it does. */
  async createRoom(name: string): Promise<{ name: string }> {
    const a = await this.call({ method: 'POST', path: '/chat/rooms', body: { name } });
    return { name: str(a.body.name) || name };
  }

  /** Joins a room. ChatNotFoundError "Room does not exist" if it does not. */
  async joinRoom(name: string): Promise<void> {
    await this.call({ method: 'POST', path: `${room(name)}/join` });
  }

  async rooms(): Promise<RoomInfo[]> {
    const a = await this.call({ method: 'GET', path: '/chat/rooms' });
    const list = Array.isArray(a.body.rooms) ? a.body.rooms : [];
    return list.filter(isObject).map((r): RoomInfo => {
      const names = Array.isArray(r.members) ? r.members.filter((m): m is string => typeof m === 'string') : undefined;
      return {
        name: str(r.name),
        members: names === undefined ? num(r.members) : names.length,
        ...(names === undefined ? {} : { memberNames: names }),
        lastSeq: num(r.last_seq),
      };
    });
  }

  /** Posts a message; retried with the same request id, so it is applied once. Throws if not committed in time. */
  post(roomName: string, text: string): Promise<ChatMessage> {
    return this.sendPost(this.nextRequestId(), roomName, text);
  }

  /**
   * Posts through the outbox: the post is queued at once and sent in order after the room's earlier queued
   * posts; if it cannot be committed (no quorum, no node reachable) it stays queued, is retried with backoff
   * (same request id: delivered exactly once) and `delivered` resolves when it is acknowledged. A 4xx other
   * than 429 (e.g. "Not a member") drops it and rejects `delivered` with the ChatError.
   */
  postWithOutbox(roomName: string, text: string): QueuedPost {
    if (this.closed) throw new ChatError(0, { error: 'Client closed' });
    const requestId = this.nextRequestId();
    let resolve!: (m: ChatMessage) => void;
    let reject!: (e: Error) => void;
    const delivered = new Promise<ChatMessage>((res, rej) => ((resolve = res), (reject = rej)));
    delivered.catch(() => undefined); // a caller that ignores the promise must not crash on a rejection
    const p: Pending = {
      entry: { requestId, room: roomName, text, enqueuedAt: Date.now(), attempts: 0, queued: false },
      resolve,
      reject,
    };
    const q = this.queues.get(roomName);
    if (q === undefined) {
      this.queues.set(roomName, [p]);
      void this.runOutbox(roomName);
    } else q.push(p);
    this.emit('enqueued', { ...p.entry });
    if (q?.[0]?.entry.queued === true) this.markQueued([p]); // behind a post that waits: it waits too
    return { requestId, room: roomName, text, delivered };
  }

  /** Resolves once the outbox is empty (every queued post delivered or refused). */
  drain(): Promise<void> {
    if (this.queues.size === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  /** Messages of a room (linearizable by default; see MessagesOptions.allowStale). */
  async messages(roomName: string, opts: MessagesOptions = {}): Promise<MessagesResult> {
    const path = (consistency: string | undefined): string => {
      const q = new URLSearchParams();
      if (opts.after !== undefined) q.set('after', String(opts.after));
      if (opts.limit !== undefined) q.set('limit', String(opts.limit));
      if (consistency !== undefined) q.set('consistency', consistency);
      const s = q.toString();
      return `${room(roomName)}/messages${s === '' ? '' : `?${s}`}`;
    };
    const fallback = opts.allowStale === true && opts.consistency !== 'stale';
    let a: Answer;
    try {
      const stale = opts.consistency === 'stale';
      a = await this.call({ method: 'GET', path: path(opts.consistency) }, { stopAfterRound: fallback, stale });
    } catch (err) {
      if (!fallback || !(err instanceof UnavailableError)) throw err;
      a = await this.call({ method: 'GET', path: path('stale') }, { stale: true });
    }
    const list = Array.isArray(a.body.messages) ? a.body.messages : [];
    const messages = list.map((m) => toChatMessage(m, roomName)).filter((m): m is ChatMessage => m !== undefined);
    const lastSeq = num(a.body.last_seq, messages[messages.length - 1]?.seq ?? 0);
    if (a.body.stale !== true) this.committed(roomName, lastSeq);
    return {
      messages,
      lastSeq,
      stale: a.body.stale === true,
      ...(typeof a.body.applied === 'number' ? { applied: a.body.applied } : {}),
      endpoint: a.endpoint,
    };
  }

  /** Follows a room's messages after `opts.after` (see ChatStream). Close it (or the client) when done. */
  stream(roomName: string, opts: StreamOptions = {}): ChatStream {
    if (this.closed) throw new ChatError(0, { error: 'Client closed' });
    const host: StreamHost = {
      endpoints: this.endpoints,
      firstEndpoint: () => this.preferred,
      authorization: () => (this._token === undefined ? undefined : `Bearer ${this._token}`),
      timeoutMs: this.timeoutMs,
      idleMs: this.streamIdleMs,
      lagMs: this.streamLagMs,
      backoffMs: this.backoffMs,
      maxBackoffMs: this.maxBackoffMs,
      fetch: this.fetch,
    };
    const s = new ChatStream(host, roomName, opts);
    this.streams.add(s);
    s.once('closed', () => this.streams.delete(s));
    return s;
  }

  /** Stops the outbox (pending posts are rejected: read `outbox` first to keep them), streams and requests. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closer.abort();
    for (const s of this.streams) s.close();
    const closedError = new ChatError(0, { error: 'Client closed' });
    for (const q of this.queues.values()) for (const p of q) p.reject(closedError);
    this.queues.clear();
    this.notifyDrained();
  }

  /** `seq` is committed in `room`: the room's streams must deliver it soon (else they change node). */
  private committed(roomName: string, seq: number): void {
    for (const s of this.streams) if (s.room === roomName) s.expect(seq);
  }

  private nextRequestId(): string {
    this.seq++;
    return `${this.clientId}:${this.seq}`;
  }

  private async sendPost(requestId: string, roomName: string, text: string, o: CallOptions = {}): Promise<ChatMessage> {
    const body: Body = { text, request_id: requestId };
    const a = await this.call({ method: 'POST', path: `${room(roomName)}/messages`, body }, o);
    const m = toChatMessage(a.body, roomName);
    if (m === undefined) throw new ChatError(a.status, a.body, 'post answer without a seq');
    this.committed(roomName, m.seq);
    return m;
  }

  private async runOutbox(roomName: string): Promise<void> {
    let failures = 0;
    for (;;) {
      const q = this.queues.get(roomName);
      const p = q?.[0];
      if (this.closed || q === undefined || p === undefined) break;
      p.entry.attempts++;
      const markQueued = (reason: string): void => {
        p.entry.lastError = reason;
        this.markQueued(q);
      };
      try {
        const m = await this.sendPost(p.entry.requestId, roomName, p.entry.text, { onRound: markQueued });
        q.shift();
        failures = 0;
        this.emit('delivered', { ...p.entry }, m);
        p.resolve(m);
      } catch (err) {
        if (this.closed) break;
        if (err instanceof RateLimitedError) {
          markQueued(err.message);
          await this.sleep(err.retryAfterMs ?? this.backoff(++failures, 5000));
        } else if (err instanceof ChatError && err.status >= 400 && err.status < 500) {
          q.shift();
          this.emit('failed', { ...p.entry, lastError: err.message }, err);
          p.reject(err);
        } else {
          markQueued(err instanceof Error ? err.message : String(err));
          await this.sleep(this.backoff(++failures, 2000));
        }
      }
      if (q.length === 0 && this.queues.get(roomName) === q) this.queues.delete(roomName);
    }
    this.notifyDrained();
  }

  /** Marks posts as waiting for a later retry ('queued' event, once each). */
  private markQueued(ps: readonly Pending[]): void {
    for (const p of ps) {
      if (p.entry.queued) continue;
      p.entry.queued = true;
      this.emit('queued', { ...p.entry });
    }
  }

  private notifyDrained(): void {
    if (this.queues.size > 0) return;
    for (const w of this.drainWaiters.splice(0)) w();
  }

  private backoff(attempt: number, cap = this.maxBackoffMs): number {
    const base = Math.min(cap, this.backoffMs * 2 ** Math.min(attempt, 16));
    return base / 2 + (Math.random() * base) / 2;
  }

  /** Sleeps, returning early when the client closes. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.closer.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.closer.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** One HTTP exchange, no retries. Throws on network errors, timeouts and close(). */
  private async exchange(endpoint: string, c: Call, timeoutMs: number): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (c.body !== undefined) headers['content-type'] = 'application/json';
    if (this._token !== undefined) headers.authorization = `Bearer ${this._token}`;
    const res = await this.fetch(endpoint + c.path, {
      method: c.method,
      redirect: 'manual',
      headers,
      signal: AbortSignal.any([AbortSignal.timeout(Math.max(1, timeoutMs)), this.closer.signal]),
      ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
    });
    const text = await res.text();
    let body: Body = {};
    if (text.length > 0) {
      try {
        const parsed: unknown = JSON.parse(text);
        body = isObject(parsed) ? parsed : { value: parsed as JsonValue };
      } catch {
        body = { error: text.slice(0, 200) };
      }
    }
    return { status: res.status, body, endpoint, headers: res.headers };
  }

  /** Runs a request with redirects, failover, retries and the deadline. */
  private async call(c: Call, o: CallOptions = {}): Promise<Answer> {
    if (this.closed) throw new ChatError(0, { error: 'Client closed' });
    const deadline = Date.now() + this.deadlineMs;
    const attempts: string[] = [];
    let target = this.preferred;
    let inARow = 0;
    let redirects = 0;
    let lastStatus = 0;
    let lastBody: Body = {};
    for (let attempt = 0; Date.now() < deadline && !this.closed; attempt++) {
      let wait = 0;
      let reason: string;
      try {
        const a = await this.exchange(target, c, Math.min(this.timeoutMs, deadline - Date.now()));
        if (a.status === 307 || a.status === 308) {
          const leader = redirectTarget(a, target);
          if (leader !== undefined && leader !== target && redirects++ < 2 * this.endpoints.length) {
            attempts.push(`${target}: ${a.status} ${errorText(a.body)} -> ${leader}`);
            this.preferred = target = leader;
            continue;
          }
          reason = `${a.status} ${errorText(a.body)}`; // no usable leader hint: an election is going on
          lastStatus = 503;
          lastBody = a.body;
        } else if (a.status >= 500) {
          reason = `${a.status} ${errorText(a.body)}`;
          lastStatus = a.status;
          lastBody = a.body;
          wait = Math.min(retryAfterMs(a.headers) ?? 0, 2000);
        } else {
          this.preferred = a.endpoint;
          if (this.unavailable && o.stale !== true) {
            this.unavailable = false;
            this.emit('available', { endpoint: a.endpoint });
          }
          if (a.status >= 200 && a.status < 300) return a;
          throw chatError(a.status, a.body, retryAfterMs(a.headers));
        }
      } catch (err) {
        if (err instanceof ChatError) throw err;
        if (this.closed) break;
        reason = describeError(err);
        lastStatus = 0;
      }
      attempts.push(`${target}: ${reason}`);
      inARow++;
      redirects = 0;
      const next = this.endpoints[(this.endpoints.indexOf(target) + 1) % this.endpoints.length] as string;
      if (inARow % this.endpoints.length === 0) {
        if (!this.unavailable) {
          this.unavailable = true;
          this.emit('unavailable', { reason });
        }
        o.onRound?.(reason);
        if (o.stopAfterRound === true) break;
      } else wait = 0; // Retry-After only once every endpoint has failed in a row
      if (next !== target) this.emit('failover', { from: target, to: next, reason });
      if (this.preferred === target) this.preferred = next;
      target = next;
      const left = deadline - Date.now();
      if (left <= 0) break;
      await this.sleep(Math.min(Math.max(wait, this.backoff(attempt)), left));
    }
    if (this.closed) throw new ChatError(0, { error: 'Client closed' });
    const last = attempts[attempts.length - 1] ?? 'no attempt made';
    throw new UnavailableError(
      `${c.method} ${c.path} failed after ${attempts.length} attempt(s): ${last}`,
      attempts,
      lastStatus === 0 ? 503 : lastStatus,
      lastBody,
    );
  }
}

function redirectTarget(a: Answer, from: string): string | undefined {
  for (const c of [a.headers.get('location'), a.body.leader_url]) {
    if (typeof c !== 'string' || c.length === 0) continue;
    try {
      return new URL(c, from).origin;
    } catch {
      continue;
    }
  }
  return undefined;
}
