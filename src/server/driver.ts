/**
 * The host loop of one node: drives the Raft core with real timers, the durable storage and the peer
 * transport, applies committed entries to the state machine and completes client requests.
 *
 * Batching: client proposals and linearizable reads queue up and go into the core once per pump (one
 * `propose` call carries every queued command, one ReadIndex round serves every queued read); one Ready is
 * persisted with one `save` (group commit). While a save is in flight each pump sends the core's early
 * messages, so replication and heartbeats keep flowing while the disk is slow. Request deadlines are
 * enforced by one periodic sweep, not a timer per request.
 */
import type { Entry, HardState, Message, NodeId, Ready, Role } from '../raft/types.js';
import { realClock, type HostClock, type HostStorage } from './host-ports.js';
import { LatencyHistogram } from './latency.js';
import type { PeerTransport, RaftCore } from './host-ports.js';
import type { Callbacks, HostCounters, HostOptions, HostStateMachine } from './host-types.js';
import { HostError, RequestTable } from './requests.js';

export { HostError, type HostFailure } from './requests.js';
export type { Callbacks, HostCounters, HostOptions, HostStateMachine } from './host-types.js';

/** Most ticks one timer callback catches up on (a stopped process resumes at most this far behind). */
const MAX_CATCH_UP_TICKS = 100;

/** Proposals held back while a batch is in flight before they are handed to the core anyway. */
const MAX_HELD_PROPOSALS = 1024;

export class RaftHost<R, C = unknown> {
  readonly counters: HostCounters = {
    proposals: 0,
    proposeBatches: 0,
    readRounds: 0,
    reads: 0,
    readies: 0,
    saves: 0,
    appliedEntries: 0,
    snapshotsCreated: 0,
    snapshotsRestored: 0,
  };
  /** How long each awaited `save` took (seconds). */
  readonly saveLatency = new LatencyHistogram();
  /** From a proposal reaching this (leader) host to its entry being applied here (seconds). */
  readonly commitLatency = new LatencyHistogram();
  private readonly core: RaftCore;
  private readonly storage: HostStorage;
  private readonly clock: HostClock;
  private readonly transport: PeerTransport;
  private readonly sm: HostStateMachine<R, C>;
  private appliedIndex: number;
  private snapshotIndex: number;
  private role: Role = 'follower';
  private leaderId: NodeId = 0;
  private pumpScheduled = false;
  /** Saves handed to storage and not yet durable. */
  private inflightSaves = 0;
  /** A save whose Ready waits for it before anything else (its messages or acknowledgements depend on it). */
  private blockingSave = false;
  private snapshotting = false;
  private closed = false;
  private failedFlag = false;
  private readonly dropped = new Set<NodeId>();
  /** Term and vote as last handed to storage (a change of either must be durable before anything is sent). */
  private durableTerm: number;
  private durableVote: NodeId;
  /** A commit-only hard state not yet handed to storage. */
  private heldHardState: HardState | undefined;

  private readonly requests = new RequestTable<R, C>();
  /** Index of the last entry of the batch of proposals in flight (0: none). */
  private lastBatchEnd = 0;
  private readSeq = 0;
  /**
   * Monotonic time the core's tick count stands for: ticks follow wall time, so a process that was stopped
   * (SIGSTOP, a long GC, an overloaded machine) catches up on resume instead of believing no time passed.
   */
  private tickedUntil: number;
  private readonly stopTicker: () => void;
  private readonly stopSweeper: () => void;
  private readonly leaderListeners: ((leader: NodeId, role: Role) => void)[] = [];
  /** `close` waiting for in-flight writes. */
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: HostOptions<R, C>) {
    this.core = opts.core;
    this.storage = opts.storage;
    this.transport = opts.transport;
    this.sm = opts.sm;
    this.clock = opts.clock ?? realClock;
    this.appliedIndex = opts.applied;
    this.snapshotIndex = opts.storage.snapshotIndex();
    const hs = opts.storage.hardState();
    this.durableTerm = hs.term;
    this.durableVote = hs.vote;
    this.tickedUntil = this.clock.now();
    this.stopTicker = this.clock.every(opts.tickMs, () => this.onTick());
    const sweepMs = Math.max(10, Math.min(100, opts.requestTimeoutMs / 10));
    this.stopSweeper = this.clock.every(sweepMs, () => this.sweep());
    this.schedule();
  }

  get applied(): number {
    return this.appliedIndex;
  }
  get leader(): NodeId {
    return this.leaderId;
  }
  get isLeader(): boolean {
    return this.role === 'leader';
  }
  get currentRole(): Role {
    return this.role;
  }
  get failed(): boolean {
    return this.failedFlag;
  }
  get droppedPeers(): readonly NodeId[] {
    return [...this.dropped];
  }
  get pendingCount(): number {
    return this.requests.size;
  }

  onLeaderChange(fn: (leader: NodeId, role: Role) => void): void {
    this.leaderListeners.push(fn);
  }

  /** An incoming message from the transport. */
  receive(m: Message): void {
    if (this.closed || this.failedFlag || this.dropped.has(m.from)) return;
    this.core.step(m);
    this.schedule();
  }

  /**
   * Proposes one command; resolves with the state machine's result once it is applied here. `decoded` is
   * what `data` encodes, handed back to the state machine when the entry applies (see HostStateMachine).
   */
  propose(data: Uint8Array, decoded?: C): Promise<R> {
    return new Promise<R>((resolve, reject) => this.submitProposal(data, decoded, { resolve, reject }));
  }

  /** `propose` with callbacks: `done.resolve` or `done.reject` is called exactly once. */
  submitProposal(data: Uint8Array, decoded: C | undefined, done: Callbacks<R>): void {
    if (this.failedFlag) return done.reject(new HostError({ kind: 'failed' }));
    if (this.role !== 'leader') return done.reject(new HostError({ kind: 'not-leader', leader: this.leaderId }));
    const now = this.clock.now();
    this.requests.queueProposal({
      resolve: done.resolve,
      reject: done.reject,
      deadline: now + this.opts.requestTimeoutMs,
      data,
      decoded,
      proposedAt: now,
      term: 0,
    });
    this.schedule();
  }

  /**
   * A linearizable read barrier: resolves with an applied index at which the local state machine reflects
   * every write acknowledged before the call (ReadIndex, confirmed by a quorum round).
   */
  readBarrier(): Promise<number> {
    return new Promise<number>((resolve, reject) => this.submitRead({ resolve, reject }));
  }

  /** `readBarrier` with callbacks: `done.resolve` (with the read index, applied here) or `done.reject`. */
  submitRead(done: Callbacks<number>): void {
    if (this.failedFlag) return done.reject(new HostError({ kind: 'failed' }));
    if (this.role !== 'leader') return done.reject(new HostError({ kind: 'not-leader', leader: this.leaderId }));
    const deadline = this.clock.now() + this.opts.requestTimeoutMs;
    this.requests.queueRead({ resolve: done.resolve, reject: done.reject, deadline });
    this.schedule();
  }

  /** The core's commit index. */
  commitIndex(): number {
    return this.core.status().commit;
  }

  /**
   * True when this node is the leader and its lease covers a read now. The core counts the lease in ticks;
   * it is trusted only while the tick count is current: after the process was stopped, a request may be
   * served before the tick timer has caught up, and the ticks would then understate the time that passed
   * (in which another leader may have been elected and have taken writes).
   */
  hasLease(): boolean {
    if (this.failedFlag || this.role !== 'leader') return false;
    if (this.clock.now() - this.tickedUntil > 2 * this.opts.tickMs) return false;
    return this.core.hasLease();
  }

  /** Resolves once `applied >= index` (or rejects at the deadline). */
  waitApplied(index: number, timeoutMs = this.opts.requestTimeoutMs): Promise<number> {
    if (this.appliedIndex >= index) return Promise.resolve(this.appliedIndex);
    return new Promise<number>((resolve, reject) => {
      this.requests.waitApplied(index, { resolve, reject, deadline: this.clock.now() + timeoutMs });
    });
  }

  status(): ReturnType<RaftCore['status']> {
    return this.core.status();
  }

  /** Simulated failure: no ticks, no replication traffic in or out, clients get 503. */
  fail(): void {
    if (this.failedFlag) return;
    this.failedFlag = true;
    const err = new HostError({ kind: 'failed' });
    this.failAll(err);
  }

  recover(): void {
    this.failedFlag = false;
    this.schedule();
  }

  /** Drops traffic to and from these peers (both directions), on top of the transport's own fault hook. */
  setDropped(ids: readonly NodeId[]): void {
    this.dropped.clear();
    for (const id of ids) this.dropped.add(id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTicker();
    this.stopSweeper();
    this.failAll(new HostError({ kind: 'failed' }));
    // Let an in-flight save finish before the caller closes the storage.
    while (this.inflightSaves > 0 || this.snapshotting) await new Promise<void>((r) => this.idleWaiters.push(r));
    const hs = this.heldHardState;
    this.heldHardState = undefined;
    if (hs !== undefined) await new Promise<void>((r) => this.storage.save({ hardState: hs, entries: [] }, () => r()));
  }

  // ---------------------------------------------------------------------------------------------------

  private onTick(): void {
    const now = this.clock.now();
    const due = Math.floor((now - this.tickedUntil) / this.opts.tickMs);
    // Usually one; more after the event loop or the process stood still (bounded: past an election timeout
    // or two, more ticks change nothing).
    const n = Math.min(Math.max(due, 1), MAX_CATCH_UP_TICKS);
    this.tickedUntil = due > MAX_CATCH_UP_TICKS ? now : this.tickedUntil + n * this.opts.tickMs;
    if (this.closed || this.failedFlag) return;
    for (let i = 0; i < n; i++) this.core.tick();
    this.schedule();
  }

  private schedule(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    this.clock.defer(() => this.pump());
  }

  protected send(msgs: readonly Message[]): void {
    if (msgs.length === 0 || this.failedFlag) return;
    if (this.dropped.size === 0) {
      this.transport.send(msgs);
      return;
    }
    const kept = msgs.filter((m) => !this.dropped.has(m.to));
    if (kept.length > 0) this.transport.send(kept);
  }

  private flushQueues(): void {
    // One batch of proposals in flight: proposals arriving while the previous batch is not yet committed
    // and applied wait for it, so that the next batch (one append, one save, one message per follower,
    // one acknowledgement back) carries everything that arrived meanwhile. Under load the batches grow
    // with the load; an idle leader proposes at once.
    if (this.lastBatchEnd <= this.appliedIndex) this.lastBatchEnd = 0;
    const queued = this.requests.queuedProposals;
    if (queued > 0 && (this.lastBatchEnd === 0 || queued >= MAX_HELD_PROPOSALS)) {
      const batch = this.requests.takeProposals();
      const res = this.core.propose(batch.map((p) => p.data));
      if (res.ok) {
        this.counters.proposals += batch.length;
        this.counters.proposeBatches++;
        this.lastBatchEnd = res.index;
        const first = res.index - batch.length + 1;
        for (let i = 0; i < batch.length; i++) {
          const idx = first + i;
          const p = batch[i];
          p.term = res.term;
          this.requests.setPending(idx, p);
        }
      } else {
        const err =
          res.error === 'too-large'
            ? new HostError({ kind: 'too-large', message: res.message })
            : new HostError({ kind: 'not-leader', leader: res.leader });
        for (const p of batch) p.reject(err);
      }
    }
    // One ReadIndex round at a time: reads queued meanwhile share the next round.
    if (this.requests.queuedReads > 0 && !this.requests.readRoundOut) {
      const waiters = this.requests.takeReads();
      const ctx = String(++this.readSeq);
      const res = this.core.readIndex(ctx);
      if (res.ok) {
        this.counters.readRounds++;
        this.counters.reads += waiters.length;
        this.requests.startRound(ctx, waiters);
      } else {
        const err = new HostError({ kind: 'not-leader', leader: res.leader });
        for (const w of waiters) w.reject(err);
      }
    }
  }

  private pump(): void {
    this.pumpScheduled = false;
    if (this.closed) return;
    try {
      if (!this.failedFlag) this.flushQueues();
      if (this.blockingSave) {
        this.send(this.core.drainEarlyMessages());
        return;
      }
      if (!this.core.hasReady()) return;
      const rd = this.core.ready();
      this.counters.readies++;
      this.noteSoftState(rd);
      this.send(rd.earlyMessages);
      const hs = rd.hardState;
      if (this.commitOnly(rd)) {
        // Only the commit index moved: nothing here needs to be durable before we send, apply and answer
        // (a lost commit index is recomputed after a restart). It rides along with the next write instead
        // of costing an fsync of its own.
        this.heldHardState = hs;
        this.afterSave(rd);
      } else if (hs !== undefined || rd.entries.length > 0 || rd.snapshot !== undefined) {
        const hardState = hs ?? this.heldHardState;
        this.heldHardState = undefined;
        if (hs !== undefined) {
          this.durableTerm = hs.term;
          this.durableVote = hs.vote;
        }
        // A leader's appends need not wait for its own disk: followers can make them a quorum, and the
        // core counts the leader only once `persisted` says they are durable. Commits, applies and answers
        // then go on during the write. Anything else (votes, acknowledgements, terms) waits for it.
        const early = this.advancesBeforeDurable(rd);
        this.inflightSaves++;
        if (!early) this.blockingSave = true;
        this.counters.saves++;
        const t0 = this.clock.now();
        const last = rd.entries.at(-1);
        this.storage.save({ hardState, entries: rd.entries, snapshot: rd.snapshot }, (err) => {
          this.inflightSaves--;
          if (err !== null) {
            this.fatal(err);
            return;
          }
          this.saveLatency.record((this.clock.now() - t0) / 1000);
          this.notifyIdle();
          if (this.closed) return;
          if (!early) {
            this.blockingSave = false;
            this.afterSave(rd);
            return;
          }
          if (last !== undefined) this.appendDurable(last.index, last.term);
          this.schedule();
        });
        if (early) this.afterSave(rd, false);
      } else {
        this.afterSave(rd);
      }
    } catch (err) {
      this.fatal(err);
    }
  }

  /**
   * Whether `rd` changes nothing that must be durable before its messages go out: only the commit index
   * moved (a lost commit index is recomputed after a restart).
   */
  protected commitOnly(rd: Ready): boolean {
    const hs = rd.hardState;
    if (rd.entries.length > 0 || rd.snapshot !== undefined || hs === undefined) return false;
    return hs.term === this.durableTerm && hs.vote === this.durableVote;
  }

  /** Whether the host may send, apply and answer for `rd` while its write is still in flight. */
  protected advancesBeforeDurable(rd: Ready): boolean {
    return this.core.canAdvanceBeforeDurable(rd);
  }

  /** A leader's own appends up to `index` (of `term`), written while it went on, are durable. */
  protected appendDurable(index: number, term: number): void {
    this.core.persisted(index, term);
  }

  /** Sends, applies and serves what `rd` allows, then advances the core (`durable`: see RaftCore.advance). */
  protected afterSave(rd: Ready, durable = true): void {
    try {
      this.send(rd.messages);
      if (rd.snapshot !== undefined && rd.snapshot.metadata.index > this.appliedIndex) {
        this.sm.restore(rd.snapshot.data);
        this.appliedIndex = rd.snapshot.metadata.index;
        this.snapshotIndex = Math.max(this.snapshotIndex, rd.snapshot.metadata.index);
        this.counters.snapshotsRestored++;
        // Proposals at or below the snapshot can no longer be matched to their entries.
        this.requests.losePendingUpTo(this.appliedIndex);
      }
      this.applyEntries(rd.committedEntries);
      this.requests.settleRounds(
        rd.readStates,
        rd.droppedReads,
        () => new HostError({ kind: 'not-leader', leader: this.leaderId }),
      );
      this.requests.serve(this.appliedIndex);
      this.core.advance(rd, durable);
      // With no proposal waiting, no append will carry the new commit index soon: send it on its own.
      if (this.role === 'leader' && this.requests.queuedProposals === 0) this.core.sendCommitUpdates();
      this.maybeSnapshot();
    } catch (err) {
      this.fatal(err);
      return;
    }
    this.schedule();
  }

  private noteSoftState(rd: Ready): void {
    const { leader, role } = rd.softState;
    if (leader === this.leaderId && role === this.role) return;
    const wasLeader = this.role === 'leader';
    this.leaderId = leader;
    this.role = role;
    // A batch proposed in an earlier term may never be applied at its indexes: do not wait for it.
    this.lastBatchEnd = 0;
    if (wasLeader && role !== 'leader') {
      // Queued reads cannot be confirmed by this node any more: the HTTP layer forwards or fails them.
      this.requests.failQueued(new HostError({ kind: 'not-leader', leader }));
    }
    for (const fn of this.leaderListeners) fn(leader, role);
  }

  protected applyEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // Answers are given once the whole batch is applied and flushed.
    const answers: (() => void)[] = [];
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue;
      const p = this.requests.pendingAt(e.index);
      if (e.type === 'noop') {
        this.sm.skipTo(e.index);
        this.appliedIndex = e.index;
        if (p) {
          this.requests.settled(e.index);
          answers.push(() => p.reject(new HostError({ kind: 'lost' })));
        }
        continue;
      }
      // Same index and term: the entry is the one proposed here (log matching).
      const ours = p !== undefined && p.term === e.term;
      const result = this.sm.apply(e.index, e.data, ours ? p.decoded : undefined);
      this.appliedIndex = e.index;
      this.counters.appliedEntries++;
      if (p) {
        this.requests.settled(e.index);
        if (ours) {
          this.commitLatency.record((this.clock.now() - p.proposedAt) / 1000);
          answers.push(() => p.resolve(result));
        } else answers.push(() => p.reject(new HostError({ kind: 'lost' })));
      }
    }
    this.sm.flush?.();
    for (const answer of answers) answer();
  }

  private maybeSnapshot(): void {
    if (this.snapshotting || this.appliedIndex - this.snapshotIndex <= this.opts.snapshotThreshold) return;
    this.snapshotting = true;
    const job = this.sm.beginSnapshot?.();
    if (job === undefined) {
      this.recordSnapshot(this.appliedIndex, this.sm.snapshot());
      return;
    }
    const step = (): void => {
      if (this.closed) {
        this.snapshotting = false;
        this.notifyIdle();
        return;
      }
      const data = job.step();
      if (data === undefined) this.clock.defer(step);
      else this.recordSnapshot(job.index, data);
    };
    step();
  }

  /** Hands the state machine's snapshot at `index` to storage, then compacts the log behind it. */
  private recordSnapshot(index: number, data: Uint8Array): void {
    // The stored commit index must cover the snapshot before it is recorded (storage keeps call order).
    this.flushHeldHardState();
    const trailing = this.opts.snapshotTrailing;
    const finished = (err: Error | null) => {
      if (err !== null) this.opts.onError?.(err);
      this.snapshotting = false;
      this.notifyIdle();
    };
    this.storage.createSnapshot(index, this.opts.peers, data, (err) => {
      if (err !== null) return finished(err);
      // A snapshot installed from the leader meanwhile may be newer (storage then keeps that one).
      this.snapshotIndex = Math.max(this.snapshotIndex, index);
      this.counters.snapshotsCreated++;
      const upTo = index - trailing;
      if (upTo >= this.storage.firstIndex()) this.storage.compact(upTo, finished);
      else finished(null);
    });
  }

  protected flushHeldHardState(): void {
    const hs = this.heldHardState;
    if (hs === undefined) return;
    this.heldHardState = undefined;
    this.storage.save({ hardState: hs, entries: [] }, (err) => {
      if (err !== null) this.fatal(err);
    });
  }

  /** Fails every request whose deadline passed. */
  private sweep(): void {
    this.requests.sweep(this.clock.now());
  }

  /** Wakes `close` once no save or snapshot is in flight. */
  private notifyIdle(): void {
    if (this.inflightSaves > 0 || this.snapshotting) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private failAll(err: HostError): void {
    this.requests.failAll(err);
  }

  private fatal(err: unknown): void {
    // A failed save or apply leaves the node in an unknown state: stop serving rather than risk divergence.
    this.opts.onError?.(err);
    this.fail();
    this.closed = true;
    this.stopTicker();
    this.stopSweeper();
    this.notifyIdle();
  }
}
