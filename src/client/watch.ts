/**
 * `client.watch(prefix, {sinceRevision})`: the changes under a prefix as an async iterator, from
 * `GET /watch` (Server-Sent Events, ../shared/api.md).
 *
 * Changes are yielded a whole revision at a time: the stream marks the last change of a revision with its
 * id, and changes read before that mark are held back, so a connection lost in the middle of a transaction
 * never yields part of it twice. When the connection fails (refused, a 5xx, the node dies or says nothing
 * for `idleMs` — a live node sends a progress event every few seconds) the watch reconnects to the next
 * endpoint with jittered backoff, resuming after the last revision seen (`Last-Event-ID`); changes at or
 * below it are dropped, so each change is yielded once, in commit order. A compacted revision (410, or an
 * `event: compacted` on the stream) ends it with WatchCompactedError; 400, 401 and 403 (and a permission
 * revoked while watching, `event: cancelled`) end it with KvError.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SseParser } from './chat-stream.js';
import { KvError } from './errors.js';
import type { FetchLike } from './fetch.js';
import type { JsonValue } from './types.js';

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new value (puts only). */
  readonly value?: JsonValue;
  /** The revision (log index) of the change; a transaction's changes share one. */
  readonly revision: number;
  /** The key's version after a put; the deleted record's version for a delete. */
  readonly version: number;
}

export interface WatchOptions {
  /** Yield changes after this revision (default: from the moment the watch starts). */
  readonly sinceRevision?: number;
  /** Reconnect when nothing arrived for this long (default 12 s). */
  readonly idleMs?: number;
  /** Give up after this many failed connections in a row (default: never). */
  readonly maxFailures?: number;
  /** Called on each reconnection (for logging). */
  readonly onReconnect?: (info: { readonly endpoint: string; readonly reason: string; readonly after: number }) => void;
}

/** The revision asked for is older than the node's history (`compactRevision`). */
export class WatchCompactedError extends KvError {
  constructor(readonly compactRevision: number) {
    super(`Revision compacted (history starts after ${compactRevision})`, 410, {
      error: 'Revision compacted',
      compact_revision: compactRevision,
    });
    this.name = 'WatchCompactedError';
  }
}

/** What a watch needs from its client. */
export interface WatchHost {
  readonly endpoints: readonly string[];
  firstEndpoint(): string;
  readonly authorization: string | undefined;
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly backoffMs: number;
}

function toEvent(data: string): WatchEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, JsonValue>;
  if ((o.type !== 'put' && o.type !== 'delete') || typeof o.key !== 'string') return undefined;
  if (typeof o.revision !== 'number' || typeof o.version !== 'number') return undefined;
  const base = { type: o.type, key: o.key, revision: o.revision, version: o.version } as const;
  return o.type === 'put' ? { ...base, value: o.value ?? null } : base;
}

export class KvWatch implements AsyncIterable<WatchEvent> {
  private lastRevision: number | undefined;
  private closed = false;
  private controller: AbortController | undefined;
  private endpoint: string;
  /** Connections made (1 + reconnections). */
  connections = 0;

  constructor(
    private readonly host: WatchHost,
    readonly prefix: string,
    private readonly opts: WatchOptions = {},
  ) {
    this.lastRevision = opts.sinceRevision;
    this.endpoint = host.firstEndpoint();
  }

  /** The last revision delivered or passed (where a reconnection resumes); undefined before the first event. */
  get revision(): number | undefined {
    return this.lastRevision;
  }

  /** The node the watch is (or will next be) connected to. */
  get currentEndpoint(): string {
    return this.endpoint;
  }

  /** Ends the watch: the iterator finishes. */
  close(): void {
    this.closed = true;
    this.controller?.abort();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchEvent, void, undefined> {
    let failures = 0;
    const idleMs = this.opts.idleMs ?? 12_000;
    try {
      while (!this.closed) {
        let reason: string;
        try {
          const got = yield* this.stream(idleMs);
          reason = got.reason;
          if (got.delivered) failures = 0;
        } catch (err) {
          if (err instanceof KvError) throw err;
          reason = err instanceof Error ? err.message : String(err);
        }
        if (this.closed) return;
        failures++;
        if (this.opts.maxFailures !== undefined && failures >= this.opts.maxFailures) {
          throw new KvError(`watch failed ${failures} times in a row: ${reason}`, 0);
        }
        const i = this.host.endpoints.indexOf(this.endpoint);
        this.endpoint = this.host.endpoints[(i + 1) % this.host.endpoints.length] as string;
        this.opts.onReconnect?.({ endpoint: this.endpoint, reason, after: this.lastRevision ?? -1 });
        const round = Math.floor((failures - 1) / Math.max(1, this.host.endpoints.length));
        const backoff = Math.min(2000, this.host.backoffMs * 2 ** round);
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
      }
    } finally {
      this.controller?.abort();
    }
  }

  /** One connection: yields its changes; returns why it ended (throws a KvError for a final answer). */
  private async *stream(idleMs: number): AsyncGenerator<WatchEvent, { reason: string; delivered: boolean }, undefined> {
    const controller = new AbortController();
    this.controller = controller;
    if (this.closed) controller.abort();
    this.connections++;
    const q = new URLSearchParams({ prefix: this.prefix });
    if (this.lastRevision !== undefined) q.set('since_revision', String(this.lastRevision));
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.host.authorization !== undefined) headers.authorization = this.host.authorization;
    if (this.lastRevision !== undefined) headers['last-event-id'] = String(this.lastRevision);
    let idle: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new Error(`nothing for ${ms} ms`)), ms);
    };
    arm(this.host.timeoutMs);
    let delivered = false;
    try {
      const res = await this.host.fetch(`${this.endpoint}/watch?${q}`, { headers, signal: controller.signal });
      if (res.status !== 200) {
        const text = await res.text().catch(() => '');
        let body: Record<string, JsonValue> = {};
        try {
          body = JSON.parse(text) as Record<string, JsonValue>;
        } catch {
          // not JSON
        }
        const error = typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
        if (res.status === 410) throw new WatchCompactedError(Number(body.compact_revision ?? 0));
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
          throw new KvError(error, res.status, body);
        }
        return { reason: `${error} (HTTP ${res.status})`, delivered };
      }
      if (res.body === null) return { reason: 'no body', delivered };
      const parser = new SseParser();
      let held: WatchEvent[] = [];
      arm(idleMs);
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        arm(idleMs);
        for (const ev of parser.push(chunk)) {
          if (ev.event === 'compacted') {
            const body = JSON.parse(ev.data) as { compact_revision?: number };
            throw new WatchCompactedError(body.compact_revision ?? 0);
          }
          if (ev.event === 'cancelled') {
            const body = JSON.parse(ev.data) as Record<string, JsonValue>;
            throw new KvError(typeof body.error === 'string' ? body.error : 'Watch cancelled', 403, body);
          }
          if (ev.event === 'put' || ev.event === 'delete') {
            const change = toEvent(ev.data);
            if (change !== undefined) held.push(change);
          }
          if (ev.id === undefined || !/^\d+$/.test(ev.id)) continue;
          const rev = Number(ev.id);
          const last = this.lastRevision ?? -1;
          const out = held.filter((c) => c.revision > last);
          held = [];
          if (rev > last) this.lastRevision = rev;
          for (const c of out) {
            delivered = true;
            yield c;
            if (this.closed) return { reason: 'closed', delivered };
          }
        }
      }
      return { reason: 'stream ended', delivered };
    } catch (err) {
      if (err instanceof KvError) throw err;
      const cause = controller.signal.aborted ? controller.signal.reason : err;
      return { reason: cause instanceof Error ? cause.message : String(cause), delivered };
    } finally {
      clearTimeout(idle);
      controller.abort();
    }
  }
}
