/**
 * The host's ports: the Raft core it drives, the peer transport, time and durable storage. A server plugs in
 * the core, its TCP transport, real timers and its RaftStorage; the simulator (src/sim/host.ts) plugs in the
 * same core, its network, its virtual clock and its disk model, and so runs the same host loop.
 */
import type { HardState, Message, NodeId, ProposeResult, ReadIndexResult, Ready, Role } from '../raft/types.js';
import type { RaftStorage, StorageUpdate } from '../storage/types.js';

/** What the host loop needs of the Raft core (`RaftNode` from src/raft/node.ts satisfies it). */
export interface RaftCore {
  tick(): void;
  step(m: Message): void;
  propose(data: Uint8Array | readonly Uint8Array[]): ProposeResult;
  readIndex(ctx: string): ReadIndexResult;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready, durable?: boolean): void;
  canAdvanceBeforeDurable(rd: Ready): boolean;
  persisted(index: number, term: number): void;
  drainEarlyMessages(): Message[];
  hasLease(): boolean;
  sendCommitUpdates(): void;
  status(): CoreStatus;
}

export interface CoreStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly leader: NodeId;
  readonly role: Role;
  readonly progress: readonly {
    readonly id: NodeId;
    readonly match: number;
    readonly next: number;
    readonly state: string;
    readonly recentActive: boolean;
  }[];
}

export interface TransportFaults {
  drop?: NodeId[];
  delayMs?: number;
}

/** What the host needs of the peer transport (`TcpTransport` from src/net satisfies it). */
export interface PeerTransport {
  send(msgs: readonly Message[]): void;
  setFaults(faults: TransportFaults): void;
  stats(): unknown;
  close(): Promise<void>;
}

/** Time and scheduling as the host sees them. */
export interface HostClock {
  /** Monotonic time in milliseconds (request deadlines, tick catch-up, latency figures). */
  now(): number;
  /** Calls `fn` every `ms` milliseconds until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
  /** Calls `fn` once, after the current callback (and the promise reactions it started) have run. */
  defer(fn: () => void): void;
}

/** Node's timers and `performance.now()`. */
export const realClock: HostClock = {
  now: () => performance.now(),
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  defer(fn) {
    setImmediate(fn);
  },
};

/** Completion of a storage operation: `null` once it is durable, the error if it failed. */
export type Done = (err: Error | null) => void;

/**
 * What the host writes to durable storage and reads of its metadata. Operations complete (`done`) in call
 * order; `save` applies its update to what the core reads at once (see RaftStorage.save).
 */
export interface HostStorage {
  /** Index of the latest snapshot (0: none). */
  snapshotIndex(): number;
  hardState(): HardState;
  firstIndex(): number;
  save(update: StorageUpdate, done: Done): void;
  /** Records a snapshot of the state machine as of `index` (applied, hence committed). */
  createSnapshot(index: number, peers: readonly NodeId[], data: Uint8Array, done: Done): void;
  /** Discards log entries up to and including `index` (covered by a snapshot). */
  compact(index: number, done: Done): void;
}

function settle(p: Promise<unknown>, done: Done): void {
  p.then(
    () => done(null),
    (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
  );
}

/** A server's RaftStorage as the host's storage port. */
export function hostStorageOf(s: RaftStorage): HostStorage {
  return {
    snapshotIndex: () => s.snapshot().metadata.index,
    hardState: () => s.initialState().hardState,
    firstIndex: () => s.firstIndex(),
    save: (update, done) => settle(s.save(update), done),
    createSnapshot: (index, peers, data, done) => settle(s.createSnapshot(index, peers, data), done),
    compact: (index, done) => settle(s.compact(index), done),
  };
}
