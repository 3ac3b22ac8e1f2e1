/** Public types of the quorumkv client (raft-mode HTTP API, see ../shared/api.md). */
import type { NodeId } from '../raft/types.js';

/** Any JSON value: what the store keeps under a key. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type Consistency = 'linearizable' | 'lease' | 'stale';

/**
 * Credentials for a cluster with auth on: a user and its password (sent as HTTP Basic on every request; the
 * nodes cache the check), or a token from `POST /auth/authenticate` (sent as a Bearer token).
 */
export type ClientAuth = { readonly user: string; readonly password: string } | { readonly token: string };

export interface ClientOptions {
  /** Node base URLs, e.g. `http://127.0.0.1:8081`. At least one. */
  readonly endpoints: readonly string[];
  /** Time limit of one HTTP attempt in ms (default 4000: above the server's 3 s request timeout). */
  readonly timeoutMs?: number;
  /** Attempts after the first one before giving up (default 20; the deadline usually ends retries first). Redirects count as attempts. */
  readonly retries?: number;
  /** Overall time limit of one call, all retries included, in ms (default 15000). */
  readonly deadlineMs?: number;
  /** First retry backoff in ms, doubled per retry up to 1 s, jittered (default 25). */
  readonly backoffMs?: number;
  /**
   * Once every endpoint has been tried and none could serve — each answered 503 with an error (e.g.
   * "No quorum") or was unreachable, at least one answering —, retries go on this much longer (ms, default
   * 2000: enough for an election), then the call fails with that error instead of waiting for the deadline.
   */
  readonly unavailableGraceMs?: number;
  /** Prefix of request ids; random per Client by default. */
  readonly clientId?: string;
  /** Credentials, for a cluster with auth on. */
  readonly auth?: ClientAuth;
  /** For `https://` endpoints: the CA certificate (PEM) to verify the nodes with, instead of the system's CAs. */
  readonly ca?: string | Buffer;
  /** A client certificate (PEM) and its key, for nodes that identify users by certificate. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** Fields the raft mode adds to every key response. Absent when a node does not send them. */
export interface ResponseMeta {
  /** Log index at which the key last changed. */
  readonly revision?: number;
  /** Writes to this key since it was created (1 after creation). */
  readonly version?: number;
  /** The leader's node id as seen by the answering node. */
  readonly leader?: NodeId;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

export interface PutOptions {
  /** Write only if the key's version is this (0: only if the key does not exist). */
  readonly ifVersion?: number;
  /** Write only if the key's current value deep-equals this. */
  readonly ifValue?: JsonValue;
}

export interface PutResult extends ResponseMeta {
  readonly result: 'created' | 'replaced';
}

export interface GetOptions {
  readonly consistency?: Consistency;
}

export interface GetResult extends ResponseMeta {
  readonly value: JsonValue;
  /** True for `consistency: 'stale'` answers, which then carry the node's applied index. */
  readonly stale: boolean;
  readonly applied?: number;
}

export interface DeleteResult extends ResponseMeta {
  readonly result: 'deleted';
}

/** A txn comparison: `target` of `key` compared with `value` (as in the state machine's txn format). */
export interface TxnCompare {
  readonly key: string;
  readonly target: 'version' | 'value' | 'revision' | 'exists';
  /** Default '=='. */
  readonly op?: '==' | '!=' | '<' | '>';
  readonly value: JsonValue;
}

export type TxnOp =
  | { readonly op: 'put'; readonly key: string; readonly value: JsonValue }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'get'; readonly key: string };

export interface TxnRequest {
  readonly compare: readonly TxnCompare[];
  readonly success: readonly TxnOp[];
  readonly failure?: readonly TxnOp[];
}

export interface TxnResult extends ResponseMeta {
  /** Whether every comparison held (so `success` ran rather than `failure`). */
  readonly succeeded: boolean;
  /** Per-op results as the node returned them. */
  readonly results: readonly JsonValue[];
  /** The whole response body. */
  readonly raw: Readonly<Record<string, JsonValue>>;
}

export interface ListItem {
  readonly key: string;
  readonly value?: JsonValue;
  readonly version?: number;
  readonly revision?: number;
}

export interface ListOptions {
  readonly consistency?: Consistency;
  /** Start after this key (paging: pass the last key of the previous page). */
  readonly after?: string;
}

export interface ListResult extends ResponseMeta {
  readonly items: readonly ListItem[];
  /** The node cut the listing at the limit: more keys follow (fetch them with `after`). */
  readonly more: boolean;
  readonly raw: Readonly<Record<string, JsonValue>>;
}

export type NodeStatus =
  | { readonly endpoint: string; readonly ok: true; readonly status: Readonly<Record<string, JsonValue>> }
  | { readonly endpoint: string; readonly ok: false; readonly error: string };
