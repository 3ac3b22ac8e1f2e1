/** Typed errors of the quorumkv client. All extend KvError. */
import type { JsonValue } from './types.js';

/** An error answer from a node (`status` is the HTTP status, 0 when no node answered). */
export class KvError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: Readonly<Record<string, JsonValue>> = {},
  ) {
    super(message);
    this.name = 'KvError';
  }
}

/** 404 "Key does not exist". */
export class NotFoundError extends KvError {
  constructor(
    readonly key: string,
    body: Readonly<Record<string, JsonValue>> = {},
  ) {
    super(`Key does not exist: ${key}`, 404, body);
    this.name = 'NotFoundError';
  }
}

/** 412 "Precondition failed"; `current` is the key's record as the node reported it (null: no such key). */
export class PreconditionFailedError extends KvError {
  readonly current: JsonValue;
  constructor(body: Readonly<Record<string, JsonValue>>) {
    super('Precondition failed', 412, body);
    this.name = 'PreconditionFailedError';
    this.current = body.current ?? null;
  }
}

/**
 * No node could serve the request within the retries and the deadline: every attempt failed to connect,
 * timed out or was answered 503 (e.g. "No quorum"). `attempts` lists what happened, one line per attempt.
 */
export class UnavailableError extends KvError {
  constructor(
    message: string,
    readonly attempts: readonly string[],
    status = 503,
    body: Readonly<Record<string, JsonValue>> = {},
    /** Set when every endpoint was tried: the nodes' own error, how many answered it, how many were unreachable. */
    readonly everyNode?: { readonly error: string; readonly answered: number; readonly unreachable: number },
  ) {
    super(message, status, body);
    this.name = 'UnavailableError';
  }
}
