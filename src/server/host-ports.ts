/**
 * The host's ports for time and durable storage. A server plugs in real timers and its RaftStorage; the
 * simulator (src/sim/host.ts) plugs in its virtual clock and disk model, and so runs the same host loop.
 */
import type { HardState, NodeId } from '../raft/types.js';
import type { RaftStorage, StorageUpdate } from '../storage/types.js';

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
