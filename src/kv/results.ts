/** Results of applying a command to the key-value state machine, and their HTTP rendering. */
import type { RequestId } from './commands.js';
import type { JsonValue } from './json.js';

export interface KeyRecord {
  readonly key: string;
  readonly value: JsonValue;
  /** Writes to this key since it was (last) created: 1 after creation. */
  readonly version: number;
  /** Log index of the key's last change. */
  readonly revision: number;
  /** Log index at which the key was (last) created. */
  readonly createRevision: number;
}

export type WriteResult =
  | { readonly kind: 'created'; readonly key: string; readonly revision: number; readonly version: number }
  | {
      readonly kind: 'replaced';
      readonly key: string;
      readonly revision: number;
      readonly version: number;
      readonly prevRevision: number;
    }
  /** `revision` is the index of the delete; `version`/`prevRevision` describe the record deleted. */
  | {
      readonly kind: 'deleted';
      readonly key: string;
      readonly revision: number;
      readonly version: number;
      readonly prevRevision: number;
    }
  | { readonly kind: 'not-found'; readonly key: string };

export type TxnOpResult = WriteResult | { readonly kind: 'found'; readonly record: KeyRecord };

export type ApplyResult =
  | WriteResult
  | { readonly kind: 'precondition-failed'; readonly key: string; readonly current: KeyRecord | null }
  /** `revision` is the entry's index (the revision of every key the transaction wrote). */
  | { readonly kind: 'txn'; readonly succeeded: boolean; readonly revision: number; readonly results: TxnOpResult[] }
  /** The entry is not a valid command; nothing changed. */
  | { readonly kind: 'invalid'; readonly error: string }
  /** The request id is older than what its client session still remembers: it may or may not have been applied. */
  | { readonly kind: 'expired-session'; readonly requestId: RequestId }
  /** Auth is on and the command carries no user, or one that no longer exists: nothing changed. */
  | { readonly kind: 'unauthenticated' }
  /** Auth is on and the command's user lacks a permission it needs: nothing changed. */
  | { readonly kind: 'permission-denied' }
  /** The outcome of an auth command: `result` on success, `error` otherwise, with its HTTP status. */
  | { readonly kind: 'auth'; readonly status: number; readonly result?: string; readonly error?: string };

/** The contract's answers to a request without valid credentials, and to one without the permission. */
export const NOT_AUTHENTICATED = 'Not authenticated';
export const PERMISSION_DENIED = 'Permission denied';

export interface HttpRendering {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

function recordJson(r: KeyRecord): Record<string, unknown> {
  return { key: r.key, value: r.value, version: r.version, revision: r.revision, create_revision: r.createRevision };
}

function opJson(r: TxnOpResult): Record<string, unknown> {
  if (r.kind === 'found') return { result: 'found', ...recordJson(r.record) };
  if (r.kind === 'not-found') return { result: 'not-found', key: r.key };
  return { result: r.kind, key: r.key, revision: r.revision, version: r.version };
}

/**
 * The HTTP status and JSON body of a result, following ../shared/api.md (raft mode), with `leader`
 * (the leader's id) when given; the caller adds whatever else the node knows.
 */
export function renderResult(r: ApplyResult, leader?: number): HttpRendering {
  const out = render(r);
  if (leader !== undefined) out.body.leader = leader;
  return out;
}

function render(r: ApplyResult): { status: number; body: Record<string, unknown> } {
  switch (r.kind) {
    case 'created':
      return { status: 201, body: { result: 'created', revision: r.revision, version: r.version } };
    case 'replaced':
      return { status: 200, body: { result: 'replaced', revision: r.revision, version: r.version } };
    case 'deleted':
      return { status: 200, body: { result: 'deleted', revision: r.revision, version: r.version } };
    case 'not-found':
      return { status: 404, body: { error: 'Key does not exist' } };
    case 'precondition-failed':
      return {
        status: 412,
        body: { error: 'Precondition failed', current: r.current === null ? null : recordJson(r.current) },
      };
    case 'txn':
      return { status: 200, body: { succeeded: r.succeeded, revision: r.revision, results: r.results.map(opJson) } };
    case 'invalid':
      return { status: 400, body: { error: r.error } };
    case 'unauthenticated':
      return { status: 401, body: { error: NOT_AUTHENTICATED } };
    case 'permission-denied':
      return { status: 403, body: { error: PERMISSION_DENIED } };
    case 'auth':
      return { status: r.status, body: r.error !== undefined ? { error: r.error } : { result: r.result ?? 'ok' } };
    case 'expired-session':
      return {
        status: 409,
        body: {
          error: 'Request id is too old to deduplicate: its outcome is unknown',
          request_id: `${r.requestId.client}:${r.requestId.seq}`,
        },
      };
  }
}
