import type { Storage } from './storage.js';
import type { NodeId, PlantedBug, Role } from './types.js';

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** All voters including this node; default: the storage's initial peers. */
  peers?: readonly NodeId[];
  /** Election timeout in ticks; each node randomizes it in [electionTick, 2 * electionTick). */
  electionTick?: number;
  heartbeatTick?: number;
  /** Seeded PRNG in [0, 1): the core's only source of randomness. */
  rng: () => number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Bytes of entries per append message (at least one entry is always sent). */
  maxSizePerMsg?: number;
  /** Largest command a proposal may carry. */
  maxEntryBytes?: number;
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
  maxCommittedBytesPerReady?: number;
  snapshotChunkSize?: number;
  /** Index the state machine already holds (from the snapshot it restored). */
  applied?: number;
  /**
   * A new commit index alone is not sent to followers with nothing in flight until the host calls
   * `sendCommitUpdates` (it knows whether an append that carries it anyway is about to follow).
   */
  lazyCommitUpdates?: boolean;
  /** For the planted-bug test only: deliberately break the algorithm. */
  plantedBugs?: readonly PlantedBug[];
}

export interface ProgressStatus {
  readonly id: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: string;
  readonly recentActive: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly leader: NodeId;
  readonly role: Role;
  readonly leadTransferee: NodeId;
  readonly progress: readonly ProgressStatus[];
}
