/** The host's interfaces: the state machine it drives, its options and counters (see driver.ts). */
import type { NodeId } from '../raft/types.js';
import type { HostClock, HostStorage } from './host-ports.js';
import type { PeerTransport, RaftCore } from './host-ports.js';
import type { Waiter } from './requests.js';

/** The state machine as the host sees it. */
export interface HostStateMachine<R, C = unknown> {
  /**
   * Applies the committed entry at `index`. `decoded` is given for entries this node proposed: it is the
   * value `data` was encoded from, so the state machine need not decode the bytes again.
   */
  apply(index: number, data: Uint8Array, decoded?: C): R;
  snapshot(): Uint8Array;
  /**
   * Optional: the same snapshot taken in slices. Captures the state at the applied index now; the host
   * then calls `step` once per turn of its loop until it returns the bytes, so that a large state does not
   * stall every request while it is encoded.
   */
  beginSnapshot?(): { readonly index: number; step(): Uint8Array | undefined };
  restore(data: Uint8Array): void;
  /** Notes that entries up to `index` need no application (noops). */
  skipTo(index: number): void;
  /**
   * Called once after each batch of committed entries has been applied (`apply`/`skipTo`), before any
   * answer for them is sent and before a snapshot is taken: a state machine with durable state commits
   * the batch here, in one transaction with its applied index.
   */
  flush?(): void;
}

export interface HostCounters {
  proposals: number;
  proposeBatches: number;
  readRounds: number;
  reads: number;
  readies: number;
  saves: number;
  appliedEntries: number;
  snapshotsCreated: number;
  snapshotsRestored: number;
}

export interface HostOptions<R, C = unknown> {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly core: RaftCore;
  /** A server's RaftStorage through `hostStorageOf`, or the simulator's disk. */
  readonly storage: HostStorage;
  readonly transport: PeerTransport;
  readonly sm: HostStateMachine<R, C>;
  /** Timers and time (default: Node's; the simulator's virtual clock). */
  readonly clock?: HostClock;
  readonly tickMs: number;
  readonly requestTimeoutMs: number;
  readonly snapshotThreshold: number;
  readonly snapshotTrailing: number;
  /** Index the state machine holds when the host starts (restored snapshot). */
  readonly applied: number;
  readonly onError?: (err: unknown) => void;
}

/** How a callback-style request ends (exactly one of the two is called). */
export type Callbacks<T> = Pick<Waiter<T>, 'resolve' | 'reject'>;
