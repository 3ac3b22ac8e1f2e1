/**
 * The chat client's room stream: `GET /chat/rooms/<room>/stream`, Server-Sent Events (`id: <seq>`,
 * `data: <message JSON>`, `:` comment lines as heartbeats), parsed here.
 *
 * When the connection drops, the node dies, an answer is a 5xx, or nothing arrives for `idleMs`, the stream
 * reconnects to the next endpoint (rotating, with jittered backoff) asking for what follows the last seq it
 * delivered (`Last-Event-ID` and `?after=`). Events at or below that seq are dropped (no duplicate); an event
 * beyond the next seq (a gap) makes it reconnect elsewhere from the last seq (no gap). 401, 403 and 404 end it.
 */
import { EventEmitter } from 'node:events';
import { ChatError, chatError, type ChatMessage, type ChatStreamEvents, type StreamOptions } from './chat-types.js';
import type { FetchLike } from './fetch.js';
import type { JsonValue } from './types.js';

export interface SseEvent {
  readonly id?: string;
  /** The `event:` field; "message" when absent. */
  readonly event: string;
  readonly data: string;
}

/** An incremental Server-Sent Events parser: feed it chunks, get complete events. */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buf = '';
  private data: string[] = [];
  private id: string | undefined;
  private event = '';

  push(chunk: Uint8Array | string): SseEvent[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const ch = this.buf[i];
      if (ch !== '\n' && ch !== '\r') continue;
      if (ch === '\r' && i + 1 === this.buf.length) break; // a CR ending the chunk may be the first half of CRLF
      this.line(this.buf.slice(start, i), out);
      if (ch === '\r' && this.buf[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.data.length > 0) {
        const ev = { event: this.event === '' ? 'message' : this.event, data: this.data.join('\n') };
        out.push(this.id === undefined ? ev : { ...ev, id: this.id });
      }
      this.data = [];
      this.event = '';
      this.id = undefined;
      return;
    }
    if (line.startsWith(':')) return; // a comment: heartbeat
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
    else if (field === 'event') this.event = value;
  }
}

/** What a ChatStream needs from its client. */
export interface StreamHost {
  readonly endpoints: readonly string[];
  /** Where to connect first. */
  firstEndpoint(): string;
  /** The Authorization header value, if logged in. */
  authorization(): string | undefined;
  readonly timeoutMs: number;
  readonly idleMs: number;
  readonly lagMs: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** The client's fetch (its TLS options). */
  readonly fetch: FetchLike;
}

function isObject(v: unknown): v is Record<string, JsonValue> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A message from a node's JSON (`room` filled in when the node leaves it out). */
export function toChatMessage(v: unknown, room: string, seq?: number): ChatMessage | undefined {
  if (!isObject(v)) return undefined;
  const s = typeof v.seq === 'number' ? v.seq : seq;
  if (s === undefined || !Number.isFinite(s)) return undefined;
  const text = (x: JsonValue | undefined): string => (typeof x === 'string' ? x : '');
  return {
    seq: s,
    room: typeof v.room === 'string' ? v.room : room,
    user: text(v.user),
    text: text(v.text),
    time: typeof v.time === 'number' ? v.time : 0,
  };
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) return `${err.message}: ${cause.message}`;
    return err.message;
  }
  return String(err);
}

interface Outcome {
  readonly reason: string;
  /** The connection delivered a message or lasted a while: the next reconnection need not back off long. */
  readonly progress: boolean;
  /** A redirect's target. */
  readonly next?: string;
}

/**
 * A room's messages, in seq order, each once: an async iterable (single consumer) and an EventEmitter
 * ('message', 'connected', 'disconnected', 'failover', 'closed'). Messages are buffered for the iterator
 * unless only 'message' listeners consume them. Breaking out of a `for await` closes the stream.
 */
export class ChatStream extends EventEmitter<ChatStreamEvents> implements AsyncIterable<ChatMessage> {
  readonly room: string;
  private last: number;
  private current: string | undefined;
  private readonly buffer: ChatMessage[] = [];
  private iterating = false;
  private readonly waiters: (() => void)[] = [];
  private ended = false;
  private failure: Error | undefined;
  private readonly stopper = new AbortController();
  /** The open connection, and why it is being dropped by us (lag watchdog). */
  private conn: AbortController | undefined;
  private dropReason: string | undefined;
  /** Highest seq known to be committed, and the timer checking that it gets delivered. */
  private expected = 0;
  private lagTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: StreamHost,
    room: string,
    opts: StreamOptions = {},
  ) {
    super();
    this.room = room;
    this.last = opts.after ?? 0;
    if (opts.signal?.aborted === true) {
      this.finish();
      return;
    }
    opts.signal?.addEventListener('abort', () => this.close(), { once: true });
    void this.run();
  }

  /** The endpoint the stream is connected to (undefined while reconnecting). */
  get endpoint(): string | undefined {
    return this.current;
  }

  /** The last seq delivered (or the `after` it started from). */
  get lastSeq(): number {
    return this.last;
  }

  get closed(): boolean {
    return this.ended;
  }

  close(): void {
    this.finish();
  }

  /**
   * Tells the stream that message `seq` is committed: if it is not delivered within `lagMs`, the node
   * serving the stream is behind (cut off from the majority, stopped) and the stream moves to another one.
   */
  expect(seq: number): void {
    if (this.ended || seq <= this.last) return;
    this.expected = Math.max(this.expected, seq);
    if (this.lagTimer !== undefined) return;
    this.lagTimer = setTimeout(() => {
      this.lagTimer = undefined;
      if (this.ended || this.last >= this.expected || this.conn === undefined) return;
      this.dropReason = `behind: #${this.expected} is committed, #${this.last} delivered`;
      this.conn.abort();
    }, this.host.lagMs);
  }

  [Symbol.asyncIterator](): AsyncIterator<ChatMessage> {
    this.iterating = true;
    return {
      next: async (): Promise<IteratorResult<ChatMessage>> => {
        for (;;) {
          const m = this.buffer.shift();
          if (m !== undefined) return { value: m, done: false };
          if (this.ended) {
            const f = this.failure;
            this.failure = undefined;
            if (f !== undefined) throw f;
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => this.waiters.push(r));
        }
      },
      return: async (): Promise<IteratorResult<ChatMessage>> => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  private finish(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = err;
    this.current = undefined;
    clearTimeout(this.lagTimer);
    this.stopper.abort();
    for (const w of this.waiters.splice(0)) w();
    this.emit('closed', err);
  }

  private async run(): Promise<void> {
    let target = this.host.firstEndpoint();
    let failures = 0;
    let reconnect = false;
    try {
      while (!this.ended) {
        const r = await this.connect(target, reconnect);
        if (this.ended) return;
        reconnect = true;
        failures = r.progress ? 1 : failures + 1;
        const eps = this.host.endpoints;
        const next = r.next ?? (eps[(eps.indexOf(target) + 1) % eps.length] as string);
        await this.sleep(this.backoff(failures));
        if (this.ended) return;
        if (next !== target) this.emit('failover', { from: target, to: next, reason: r.reason });
        target = next;
      }
    } catch (err) {
      this.finish(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private backoff(failures: number): number {
    const base = Math.min(this.host.maxBackoffMs, this.host.backoffMs * 2 ** Math.min(failures - 1, 16));
    return base / 2 + (Math.random() * base) / 2;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.stopper.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.stopper.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** One connection, until it fails. Throws the ChatError of a final answer (401, 403, 404...). */
  private async connect(endpoint: string, reconnect: boolean): Promise<Outcome> {
    const ctl = new AbortController();
    this.conn = ctl;
    this.dropReason = undefined;
    let timer = setTimeout(() => ctl.abort(), this.host.timeoutMs);
    const rearm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => ctl.abort(), this.host.idleMs);
    };
    const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache' };
    const auth = this.host.authorization();
    if (auth !== undefined) headers.authorization = auth;
    if (reconnect) headers['last-event-id'] = String(this.last);
    const url = `${endpoint}/chat/rooms/${encodeURIComponent(this.room)}/stream?after=${this.last}`;
    const started = Date.now();
    let connected = false;
    let delivered = false;
    let reason: string;
    try {
      const res = await this.host.fetch(url, {
        headers,
        redirect: 'manual',
        signal: AbortSignal.any([ctl.signal, this.stopper.signal]),
      });
      if (res.status === 307 || res.status === 308) {
        const loc = res.headers.get('location');
        await res.body?.cancel();
        return {
          reason: `${res.status} redirect`,
          progress: false,
          ...(loc ? { next: new URL(loc, endpoint).origin } : {}),
        };
      }
      if (res.status !== 200 || res.body === null) {
        const text = await res.text();
        let body: Record<string, JsonValue> = {};
        try {
          const parsed: unknown = JSON.parse(text);
          if (isObject(parsed)) body = parsed;
        } catch {
          body = { error: text.slice(0, 200) };
        }
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
          throw chatError(res.status, body);
        }
        return { reason: `${res.status} ${typeof body.error === 'string' ? body.error : ''}`.trim(), progress: false };
      }
      this.current = endpoint;
      connected = true;
      this.emit('connected', { endpoint, lastSeq: this.last });
      rearm();
      const reader = res.body.getReader();
      const parser = new SseParser();
      reason = 'the node closed the stream';
      read: for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rearm();
        for (const ev of parser.push(value)) {
          const gap = this.deliver(ev);
          if (gap === true) delivered = true;
          else if (gap !== false) {
            reason = gap;
            break read;
          }
        }
      }
    } catch (err) {
      if (err instanceof ChatError) throw err;
      if (ctl.signal.aborted)
        reason = this.dropReason ?? (connected ? `no data for ${this.host.idleMs} ms` : 'timed out');
      else reason = describeError(err);
    } finally {
      clearTimeout(timer);
      ctl.abort(); // releases the connection
      this.conn = undefined;
    }
    if (connected) {
      this.current = undefined;
      if (!this.ended) this.emit('disconnected', { endpoint, reason });
    }
    return { reason, progress: delivered || (connected && Date.now() - started >= 1000) };
  }

  /** Delivers an event: true if it was the next message, false if ignored (duplicate, not a message), else a gap. */
  private deliver(ev: SseEvent): boolean | string {
    if (ev.event !== 'message') return false;
    let data: unknown;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return false;
    }
    const id = ev.id !== undefined && /^\d+$/.test(ev.id) ? Number(ev.id) : undefined;
    const m = toChatMessage(data, this.room, id);
    if (m === undefined || m.seq <= this.last) return false;
    if (m.seq > this.last + 1) return `gap: #${m.seq} after #${this.last}`;
    this.last = m.seq;
    if (this.iterating || this.listenerCount('message') === 0) {
      this.buffer.push(m);
      for (const w of this.waiters.splice(0)) w();
    }
    this.emit('message', m);
    return true;
  }
}
