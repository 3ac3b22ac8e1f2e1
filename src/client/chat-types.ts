/** Public types and typed errors of the chat client (the "chat app" section of ../shared/api.md). */
import { KvError } from './errors.js';
import type { JsonValue } from './types.js';

export interface ChatClientOptions {
  /** Node base URLs, e.g. `http://127.0.0.1:8081`. At least one. */
  readonly endpoints: readonly string[];
  /** Time limit of one HTTP attempt in ms (default 4000: above the server's 3 s request timeout). */
  readonly timeoutMs?: number;
  /** Overall time limit of one call, every retry included, in ms (default 15000). */
  readonly deadlineMs?: number;
  /** First retry backoff in ms, doubled per retry up to `maxBackoffMs`, jittered (default 25). */
  readonly backoffMs?: number;
  /** Longest backoff between two attempts in ms (default 1000). */
  readonly maxBackoffMs?: number;
  /**
   * Prefix of post request ids (`<clientId>:<seq>`); random per ChatClient by default. A fixed id must not be
   * reused by another client or a later run: the server would take its posts for retries of earlier ones.
   */
  readonly clientId?: string;
  /** A bearer token from an earlier login. */
  readonly token?: string;
  /** The user the token belongs to, if known. */
  readonly username?: string;
  /** A stream connection that receives nothing (not even a heartbeat) for this long is reopened (default 30000). */
  readonly streamIdleMs?: number;
  /**
   * A stream that has not delivered, this long after it, a message this client knows is committed (its own
   * post, a linearizable read's last seq) is reopened on another node: its node is cut off or stopped
   * (default 3000).
   */
  readonly streamLagMs?: number;
  /** For `https://` endpoints: the CA certificate (PEM) to verify the nodes with, instead of the system's CAs. */
  readonly ca?: string | Buffer;
  /** A client certificate (PEM) and its key, for nodes that identify users by certificate. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** A committed chat message as every node serves it. */
export interface ChatMessage {
  readonly seq: number;
  readonly room: string;
  readonly user: string;
  readonly text: string;
  /** The leader's clock (ms since the epoch) when it proposed the message. */
  readonly time: number;
}

export interface RoomInfo {
  readonly name: string;
  /** Number of members. */
  readonly members: number;
  /** The members' names, when the node lists them. */
  readonly memberNames?: readonly string[];
  /** The room's last message seq (0: no message yet). */
  readonly lastSeq: number;
}

export type ChatConsistency = 'linearizable' | 'stale';

export interface MessagesOptions {
  /** Only messages with a seq above this (default 0: from the first). */
  readonly after?: number;
  /** At most this many (the node's default if omitted). */
  readonly limit?: number;
  /** Read level (default linearizable). */
  readonly consistency?: ChatConsistency;
  /**
   * When no node can serve a linearizable read (every node answered 503, e.g. "No quorum", or none is
   * reachable), read a node's local copy instead (`consistency=stale`); the result then says `stale: true`.
   */
  readonly allowStale?: boolean;
}

export interface MessagesResult {
  readonly messages: readonly ChatMessage[];
  /** The room's last seq as the answering node knows it. */
  readonly lastSeq: number;
  /** True when the answer is a node's local copy (possibly behind the majority). */
  readonly stale: boolean;
  /** The answering node's applied index, on stale answers. */
  readonly applied?: number;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

export interface StreamOptions {
  /** Start after this seq (default 0: every message of the room). */
  readonly after?: number;
  /** Closes the stream when aborted. */
  readonly signal?: AbortSignal;
}

/** A post waiting in the outbox (or being sent from it). */
export interface OutboxEntry {
  /** The post's request id, the same on every attempt: the server applies it once. */
  readonly requestId: string;
  readonly room: string;
  readonly text: string;
  /** When it was enqueued (ms since the epoch). */
  readonly enqueuedAt: number;
  /** Attempts made so far (each one a full call with failover, bounded by the deadline). */
  readonly attempts: number;
  /** True once a call failed to deliver it (no quorum, no node reachable) and it waits for a retry. */
  readonly queued: boolean;
  /** What the last failed attempt met, if any. */
  readonly lastError?: string;
}

/** What `postWithOutbox` returns at once. */
export interface QueuedPost {
  readonly requestId: string;
  readonly room: string;
  readonly text: string;
  /** Settles when the post is acknowledged (its message), or is refused for good (a ChatError) or closed. */
  readonly delivered: Promise<ChatMessage>;
}

export interface FailoverInfo {
  /** The endpoint given up on. */
  readonly from: string;
  /** The endpoint tried next. */
  readonly to: string;
  /** What went wrong at `from` (e.g. "503 No quorum", "timed out", "connection refused"). */
  readonly reason: string;
}

/** Events of a ChatClient (`client.on(name, listener)`). */
export interface ChatClientEvents {
  /** A request moved from one endpoint to another after a failure. */
  failover: [info: FailoverInfo];
  /** Every endpoint failed in a row: no quorum, or no node reachable. `reason` is the last failure. */
  unavailable: [info: { readonly reason: string }];
  /** A request succeeded again after `unavailable`. */
  available: [info: { readonly endpoint: string }];
  /** The outbox accepted a post. */
  enqueued: [entry: OutboxEntry];
  /** A post could not be delivered now and waits in the outbox for a later retry. */
  queued: [entry: OutboxEntry];
  /** A post from the outbox was acknowledged. */
  delivered: [entry: OutboxEntry, message: ChatMessage];
  /** A post from the outbox was refused for good (4xx other than 429) and dropped from the outbox. */
  failed: [entry: OutboxEntry, error: ChatError];
}

/** Events of a ChatStream (`stream.on(name, listener)`). */
export interface ChatStreamEvents {
  message: [message: ChatMessage];
  /** A connection is open (its answer was 200) on `endpoint`. */
  connected: [info: { readonly endpoint: string; readonly lastSeq: number }];
  /** The connection was lost (or dropped for a gap or an idle timeout); a reconnection follows. */
  disconnected: [info: { readonly endpoint: string; readonly reason: string }];
  /** Reconnecting to another endpoint than the last one. */
  failover: [info: FailoverInfo];
  /** The stream ended: `close()`, the abort signal, or a final error (401, 403, 404). */
  closed: [error?: Error];
}

/**
 * An error answer of a chat node. `status` is the HTTP status; `error` the server's `error` string
 * (e.g. "Not a member"). Extends KvError, so code catching the KV client's errors catches these too.
 */
export class ChatError extends KvError {
  readonly error: string;
  constructor(status: number, body: Readonly<Record<string, JsonValue>>, message?: string) {
    const error = typeof body.error === 'string' ? body.error : `HTTP ${status}`;
    super(message ?? error, status, body);
    this.name = 'ChatError';
    this.error = error;
  }
}

/** 400 or 413: the request itself is wrong (bad username, empty or too long text...). */
export class ChatRequestError extends ChatError {
  override readonly name = 'ChatRequestError';
}

/** 401: "Not authenticated" (no or unknown token) or "Wrong username or password". */
export class NotAuthenticatedError extends ChatError {
  override readonly name = 'NotAuthenticatedError';
}

/** 403 "Not a member". */
export class ForbiddenError extends ChatError {
  override readonly name = 'ForbiddenError';
}

/** 404, e.g. "Room does not exist". */
export class ChatNotFoundError extends ChatError {
  override readonly name = 'ChatNotFoundError';
}

/** 409: "Username is taken", "Room exists". */
export class ConflictError extends ChatError {
  override readonly name = 'ConflictError';
}

/** 429: too many requests; `retryAfterMs` from the Retry-After header when the node sent one. */
export class RateLimitedError extends ChatError {
  override readonly name = 'RateLimitedError';
  constructor(
    body: Readonly<Record<string, JsonValue>>,
    readonly retryAfterMs?: number,
  ) {
    super(429, body);
  }
}

/** The typed error for a 4xx answer. */
export function chatError(status: number, body: Readonly<Record<string, JsonValue>>, retryAfterMs?: number): ChatError {
  switch (status) {
    case 400:
    case 413:
      return new ChatRequestError(status, body);
    case 401:
      return new NotAuthenticatedError(status, body);
    case 403:
      return new ForbiddenError(status, body);
    case 404:
      return new ChatNotFoundError(status, body);
    case 409:
      return new ConflictError(status, body);
    case 429:
      return new RateLimitedError(body, retryAfterMs);
    default:
      return new ChatError(status, body);
  }
}
