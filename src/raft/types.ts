/**
 * Data types of the pure Raft core. Everything here is plain data: it can be serialised by the transport
 * and persisted by storage without knowing anything about the core's internals.
 */

/** A node id. 0 means "none" (no vote, no known leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

/** `normal` entries carry a state-machine command; `noop` is the empty entry a new leader appends. */
export type EntryType = 'normal' | 'noop';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Opaque command bytes (empty for `noop`). */
  readonly data: Uint8Array;
}

/** The state that must be durable before the node votes or acknowledges anything. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export interface SnapshotMetadata {
  /** Index and term of the last entry the snapshot covers. */
  readonly index: number;
  readonly term: number;
  /** Voters of the cluster as of `index`. */
  readonly peers: readonly NodeId[];
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The serialised state machine. */
  readonly data: Uint8Array;
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  metadata: Object.freeze({ index: 0, term: 0, peers: Object.freeze([]) as readonly NodeId[] }),
  data: new Uint8Array(0),
});

/** Every message type, in a fixed order (the transport's wire codes follow it). */
export const MESSAGE_TYPES = [
  'prevote',
  'prevote-resp',
  'vote',
  'vote-resp',
  'app',
  'app-resp',
  'heartbeat',
  'heartbeat-resp',
  'snap',
  'snap-resp',
  'timeout-now',
] as const;

export type MessageType = (typeof MESSAGE_TYPES)[number];

/** One chunk of an InstallSnapshot transfer. */
export interface SnapshotChunk {
  readonly metadata: SnapshotMetadata;
  /** Byte offset of `data` within the whole snapshot. */
  readonly offset: number;
  readonly totalSize: number;
  readonly data: Uint8Array;
}

/**
 * A message between cores. One flat shape for every type (as in etcd's raftpb), so that the transport
 * can encode it without a schema per type. Field meaning by type:
 *
 * - `app`: `index`/`logTerm` are the index and term of the entry preceding `entries`; `commit` is the leader's.
 * - `app-resp`: `index` is the last index now matching the leader (accept), or the rejected `index` (reject),
 *   with `rejectHint`/`logTerm` giving the follower's hint for fast backtracking.
 * - `vote`/`prevote`: `index`/`logTerm` describe the candidate's last entry; `context` 1 marks a campaign
 *   started by leadership transfer (it overrides the leader lease).
 * - `heartbeat`: `commit` is min(leader commit, follower match); `context` is the ReadIndex round (0: none).
 * - `heartbeat-resp`: echoes `context`.
 * - `snap`: carries one `snapshot` chunk; `snap-resp`: `index` acknowledges bytes up to `rejectHint`
 *   (the next offset wanted), `reject` asks the leader to restart the transfer.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  commit: number;
  entries?: Entry[];
  reject?: boolean;
  rejectHint?: number;
  context?: number;
  snapshot?: SnapshotChunk;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** The volatile state of a node, for status pages and checkers. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** A read that has become safe: once the state machine has applied `index`, the read may be served. */
export interface ReadState {
  readonly index: number;
  readonly ctx: string;
}

/**
 * What the host must do, in this order:
 *  1. persist `hardState`, `entries` and `snapshot` (fsync) — and meanwhile it may already send
 *     `earlyMessages` (leader replication traffic that does not depend on this Ready being durable);
 *  2. send `messages` (they may depend on what step 1 persisted: votes, acknowledgements);
 *  3. restore `snapshot` into the state machine if present, then apply `committedEntries` in order and
 *     serve `readStates` once their index is applied; fail `droppedReads`;
 *  4. call `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState;
  /** Present only when it changed since the last Ready. */
  readonly hardState?: HardState;
  /** Entries to append to stable storage (they may overwrite a conflicting suffix). */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist and restore. */
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly earlyMessages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** Read requests that can no longer be served by this node (it lost leadership): fail or retry them. */
  readonly droppedReads: readonly string[];
}

export type ProposeError = 'not-leader' | 'transferring' | 'too-large';

export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly error: ProposeError; readonly leader: NodeId; readonly message: string };

export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: 'not-leader'; readonly leader: NodeId; readonly message: string };

/**
 * Known bugs that the planted-bug test switches on, one at a time, to show that the simulator's checks
 * catch them. Never set outside that test.
 */
export type PlantedBug =
  | 'commit-old-term-by-counting'
  | 'vote-not-persisted'
  | 'vote-for-stale-log'
  | 'read-without-confirmation'
  | 'keep-conflicting-entries'
  | 'apply-before-commit'
  /** The leader counts its own appends towards a quorum before they are durable. */
  | 'count-self-before-durable';
