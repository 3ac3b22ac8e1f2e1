import { MajorityConfig } from './quorum.js';
import { invariant } from './assert.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import type { ProgressStatus, RaftConfig, RaftStatus } from './config.js';
import { ReadOnly } from './read-only.js';
import { Replicator } from './replication.js';
import { Election } from './election.js';
import { FollowerSide, type Reply } from './follower.js';
import {
  NONE,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
  type PlantedBug,
  type ProposeResult,
  type ReadIndexResult,
  type Ready,
  type Role,
  type SoftState,
} from './types.js';

const EARLY_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'app',
  'heartbeat',
  'heartbeat-resp',
  'snap',
  'timeout-now',
  'prevote',
  'prevote-resp',
]);

const RESPONSE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>(['app-resp', 'heartbeat-resp', 'snap-resp']);

/**
 * A pure, deterministic Raft node. It never performs I/O: inputs are `tick`, `step`, `propose` and
 * `readIndex`; outputs are collected in a `Ready` that the host persists, sends and applies.
 *
 * Includes PreVote, CheckQuorum with leader lease, a no-op entry per term, fast log backtracking,
 * per-follower flow control, batched appends, ReadIndex with shared confirmation rounds, leadership
 * transfer and chunked snapshot transfer. Membership is static.
 */
export type { ProgressStatus, RaftConfig, RaftStatus } from './config.js';

export class RaftNode {
  readonly id: NodeId;
  private readonly peers: readonly NodeId[];
  /** The voters and their majority arithmetic. */
  private readonly voters: MajorityConfig;
  private readonly log: RaftLog;
  private readonly rng: () => number;
  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxEntryBytes: number;
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;
  private readonly snapshotChunkSize: number;
  private readonly bugs: ReadonlySet<PlantedBug>;
  private readonly lazyCommitUpdates: boolean;

  private term = 0;
  private vote: NodeId = NONE;
  private lead: NodeId = NONE;
  private role: Role = 'follower';
  private prs = new Map<NodeId, Progress>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private ticks = 0;
  private leadTransferee: NodeId = NONE;
  private readonly readOnly = new ReadOnly();
  /** Leader: new entries or a new commit index not yet sent to followers. */
  private needFlush = false;
  /**
   * First index advanced before its write was durable (`advance(rd, false)`) and not yet `persisted`;
   * Infinity when every stable entry is durable. The leader never counts itself beyond it.
   */
  private undurableFrom = Infinity;
  /** Campaigns, vote tallies and answers to vote requests. */
  private readonly election: Election;
  /** Follower-side handling of appends, heartbeats and snapshot chunks. */
  private readonly follower: FollowerSide;
  /** Leader-side sending: appends, snapshot chunks, heartbeats. */
  private readonly repl: Replicator;

  private msgs: Message[] = [];
  private msgsEarly: Message[] = [];
  private droppedReads: string[] = [];
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(cfg: RaftConfig) {
    invariant(cfg.id !== NONE, 'node id must not be 0');
    const init = cfg.storage.initialState();
    this.id = cfg.id;
    this.peers = [...(cfg.peers ?? init.peers)].sort((a, b) => a - b);
    invariant(this.peers.includes(cfg.id), `node ${cfg.id} is not among its peers ${this.peers.join(',')}`);
    this.voters = new MajorityConfig(this.peers);
    this.rng = cfg.rng;
    this.electionTimeout = cfg.electionTick ?? 10;
    this.heartbeatTimeout = cfg.heartbeatTick ?? 1;
    invariant(this.heartbeatTimeout < this.electionTimeout, 'heartbeat tick must be below election tick');
    this.preVote = cfg.preVote ?? true;
    this.lazyCommitUpdates = cfg.lazyCommitUpdates ?? false;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.maxEntryBytes = cfg.maxEntryBytes ?? 8 * 1024 * 1024;
    this.maxInflight = cfg.maxInflightMsgs ?? 256;
    this.maxInflightBytes = cfg.maxInflightBytes ?? 32 * 1024 * 1024;
    this.snapshotChunkSize = cfg.snapshotChunkSize ?? 1024 * 1024;
    this.bugs = new Set(cfg.plantedBugs ?? []);
    this.repl = new Replicator({
      id: this.id,
      peers: this.peers,
      maxSizePerMsg: this.maxSizePerMsg,
      snapshotChunkSize: this.snapshotChunkSize,
      log: () => this.log,
      term: () => this.term,
      ticks: () => this.ticks,
      progress: (id) => this.progress(id),
      recentlyActive: (id, pr) => this.recentlyActive(id, pr),
      send: (m) => this.msgOut(m),
    });
    this.election = new Election({
      id: this.id,
      peers: this.peers,
      voters: this.voters,
      preVote: this.preVote,
      votesForStaleLogs: this.bugs.has('vote-for-stale-log'),
      log: () => this.log,
      term: () => this.term,
      vote: () => this.vote,
      lead: () => this.lead,
      role: () => this.role,
      becomePreCandidate: () => this.becomePreCandidate(),
      becomeCandidate: () => this.becomeCandidate(),
      becomeLeader: () => this.becomeLeader(),
      becomeFollower: (term, lead) => this.becomeFollower(term, lead),
      votedFor: (to) => {
        this.electionElapsed = 0;
        this.vote = to;
      },
      msgOut: (m) => this.msgOut(m),
      send: (r) => this.send(r),
    });
    this.follower = new FollowerSide({ log: () => this.log, send: (r) => this.send(r) });
    this.log = new RaftLog(cfg.storage, cfg.maxCommittedBytesPerReady ?? 8 * 1024 * 1024, {
      keepConflicts: this.bugs.has('keep-conflicting-entries'),
      applyUncommitted: this.bugs.has('apply-before-commit'),
    });

    const hs = init.hardState;
    invariant(
      hs.commit <= this.log.lastIndex(),
      () => `hard state commit ${hs.commit} beyond the last index ${this.log.lastIndex()}`,
    );
    // A snapshot only covers committed entries, so the commit index is at least its index (the persisted
    // commit index may lag: hosts need not fsync a change of it alone).
    const snapIndex = cfg.storage.snapshot().metadata.index;
    this.log.committed = Math.max(this.log.committed, hs.commit, snapIndex, cfg.applied ?? 0);
    invariant(this.log.committed <= this.log.lastIndex(), () => `applied ${cfg.applied} beyond the last index`);
    this.term = hs.term;
    this.vote = hs.vote;
    if (cfg.applied !== undefined && cfg.applied > 0) this.log.appliedTo(cfg.applied);
    this.becomeFollower(this.term, NONE);
    this.prevSoft = this.softState();
    this.prevHard = this.hardState();
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  step(m: Message): void {
    if (m.to !== this.id || !this.peers.includes(m.from)) return;
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'prevote') {
        const force = m.context === 1;
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        // We heard from a live leader recently: do not help depose it.
        if (!force && inLease) return;
      }
      if (m.type === 'prevote' || (m.type === 'prevote-resp' && !m.reject)) {
        // A pre-vote never changes our term; a granted pre-vote response carries the future term.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // Tell a stale leader about our term, so that it steps down (PreVote keeps our term from
        // growing, so it would otherwise never learn).
        this.send({ type: 'app-resp', to: m.from });
      } else if (m.type === 'prevote') {
        this.send({ type: 'prevote-resp', to: m.from, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'prevote') {
      this.election.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        break;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(m);
        break;
      case 'follower':
        this.stepFollower(m);
        break;
    }
  }

  propose(data: Uint8Array | readonly Uint8Array[]): ProposeResult {
    if (this.role !== 'leader') {
      const message =
        this.lead === NONE ? 'no leader is known: the proposal was refused' : `not the leader (leader is ${this.lead})`;
      return { ok: false, error: 'not-leader', leader: this.lead, message };
    }
    if (this.leadTransferee !== NONE) {
      return {
        ok: false,
        error: 'transferring',
        leader: this.lead,
        message: `leadership is being transferred to ${this.leadTransferee}`,
      };
    }
    const items = data instanceof Uint8Array ? [data] : data;
    for (const d of items) {
      if (d.byteLength > this.maxEntryBytes) {
        return {
          ok: false,
          error: 'too-large',
          leader: this.lead,
          message: `command of ${d.byteLength} bytes exceeds ${this.maxEntryBytes}`,
        };
      }
    }
    let index = this.log.lastIndex();
    const ents: Entry[] = items.map((d) => ({ index: ++index, term: this.term, type: 'normal', data: d }));
    this.appendEntries(ents);
    return { ok: true, index, term: this.term };
  }

  /**
   * Asks for a linearizable read. The answer comes as a ReadState in a later Ready (serve the read once the
   * state machine has applied its index), or as `ctx` in `droppedReads` if this node loses leadership first.
   * Reads are held until the leader has committed an entry of its own term; reads issued between two
   * Ready's share one heartbeat round.
   */
  readIndex(ctx: string): ReadIndexResult {
    if (this.role !== 'leader') {
      return { ok: false, error: 'not-leader', leader: this.lead, message: 'only the leader serves read requests' };
    }
    if (this.bugs.has('read-without-confirmation')) {
      this.readOnly.releaseNow(ctx, this.log.committed);
      return { ok: true };
    }
    if (this.log.term(this.log.committed) !== this.term) {
      this.readOnly.waitForCommit(ctx);
      return { ok: true };
    }
    this.addRead(ctx);
    return { ok: true };
  }

  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader' || to === this.id || !this.peers.includes(to)) return;
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.electionElapsed = 0; // the transfer must finish within one election timeout
    const pr = this.progress(to);
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeout-now', to });
    else this.repl.sendAppend(to);
  }

  /** Whether a read may be served from the leader's state without a round (leader lease). */
  hasLease(): boolean {
    if (this.role !== 'leader' || !this.checkQuorum || this.leadTransferee !== NONE) return false;
    if (this.log.term(this.log.committed) !== this.term) return false;
    const quorumTick = this.voters.committedValue((id) => (id === this.id ? this.ticks : this.progress(id).ackedTick));
    // Followers ignore vote requests for electionTimeout ticks after hearing from us; keep a margin for drift.
    return quorumTick >= 0 && this.ticks - quorumTick < this.electionTimeout - 2;
  }

  // ---------------------------------------------------------------- outputs

  hasReady(): boolean {
    if (this.needFlush && this.role === 'leader') return true;
    const ss = this.softState();
    if (ss.leader !== this.prevSoft.leader || ss.role !== this.prevSoft.role) return true;
    if (!sameHardState(this.hardState(), this.prevHard)) return true;
    return (
      this.msgs.length > 0 ||
      this.msgsEarly.length > 0 ||
      this.log.unstable.entries.length > 0 ||
      this.log.hasPendingSnapshot() ||
      this.log.hasNextCommittedEnts() ||
      this.readOnly.hasReadStates() ||
      this.droppedReads.length > 0
    );
  }

  ready(): Ready {
    this.flush();
    const hs = this.hardState();
    const rd: Ready = {
      softState: this.softState(),
      hardState: sameHardState(hs, this.prevHard) ? undefined : hs,
      entries: this.log.unstableEntries(),
      snapshot: this.log.unstable.snapshot,
      committedEntries: this.log.nextCommittedEnts(),
      messages: this.msgs,
      earlyMessages: this.msgsEarly,
      readStates: this.readOnly.takeReadStates(),
      droppedReads: this.droppedReads,
    };
    this.msgs = [];
    this.msgsEarly = [];
    this.droppedReads = [];
    this.readOnly.closeRound();
    return rd;
  }

  /** Messages that may be sent at any time, even while a Ready is being persisted. */
  drainEarlyMessages(): Message[] {
    this.flush();
    const out = this.msgsEarly;
    this.msgsEarly = [];
    this.readOnly.closeRound();
    return out;
  }

  /**
   * Acknowledges a Ready: its entries, hard state and snapshot are in storage, its committed entries
   * applied and its messages sent. With `durable` false (only for a leader's Ready that changes neither
   * term, vote nor snapshot: see `canAdvanceBeforeDurable`), its entries are in storage but their write
   * is still in flight, so the host may go on with the next Ready meanwhile; the leader counts itself
   * for those entries once the host reports them with `persisted`. Storage must make writes durable in
   * the order they were handed to it.
   */
  advance(rd: Ready, durable = true): void {
    if (rd.hardState) this.prevHard = rd.hardState;
    this.prevSoft = rd.softState;
    if (rd.snapshot) {
      this.log.stableSnapTo(rd.snapshot.metadata.index);
      this.log.appliedTo(rd.snapshot.metadata.index);
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0];
      const last = rd.entries[rd.entries.length - 1];
      this.log.stableTo(last.index, last.term);
      if (!durable) {
        invariant(this.role === 'leader' && rd.softState.role === 'leader', 'only a leader advances before durable');
        // The storage must already show the entries (see RaftStorage.save), or the log would shrink.
        const st = this.log.storage;
        invariant(
          st.lastIndex() >= last.index && st.term(last.index) === last.term,
          () => `advance before durable: storage does not show entry ${last.index}@${last.term} yet`,
        );
        if (!this.bugs.has('count-self-before-durable')) this.undurableFrom = Math.min(this.undurableFrom, first.index);
        else this.countSelf();
      } else {
        // Writes are durable in order: this one being durable, so is everything handed over before it.
        this.undurableFrom = Infinity;
        this.countSelf();
      }
    }
    if (rd.committedEntries.length > 0) {
      this.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1].index);
    }
  }

  /** Whether `advance(rd, false)` is allowed: a leader's Ready that changes neither term, vote nor snapshot. */
  canAdvanceBeforeDurable(rd: Ready): boolean {
    return (
      this.role === 'leader' &&
      rd.softState.role === 'leader' &&
      rd.snapshot === undefined &&
      rd.messages.length === 0 &&
      (rd.hardState === undefined ||
        (rd.hardState.term === this.prevHard.term && rd.hardState.vote === this.prevHard.vote))
    );
  }

  /**
   * The write of entries up to `index` (of term `term`), advanced with `durable` false, is durable now
   * (and, writes being durable in order, so is everything before it).
   */
  persisted(index: number, term: number): void {
    this.undurableFrom = Math.max(this.undurableFrom, index + 1);
    if (this.undurableFrom > this.log.stableLastIndex()) this.undurableFrom = Infinity;
    if (this.log.term(index) === term) this.countSelf();
  }

  /** Index of the last entry that is both stable and durable. */
  private durableLastIndex(): number {
    return Math.min(this.log.stableLastIndex(), this.undurableFrom - 1);
  }

  /** The leader counts itself towards a quorum only for entries it has made durable. */
  private countSelf(): void {
    if (this.role !== 'leader') return;
    const self = this.progress(this.id);
    if (self.maybeUpdate(this.durableLastIndex()) && this.maybeCommit()) this.needFlush = true;
  }

  status(): RaftStatus {
    const progress: ProgressStatus[] = [];
    if (this.role === 'leader') {
      for (const [id, pr] of this.prs) {
        progress.push({
          id,
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: this.recentlyActive(id, pr),
        });
      }
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      leader: this.lead,
      role: this.role,
      leadTransferee: this.leadTransferee,
      progress,
    };
  }

  /** The few fields checkers read after every simulated step, without allocating the progress list. */
  get currentTerm(): number {
    return this.term;
  }

  get currentRole(): Role {
    return this.role;
  }

  get commitIndex(): number {
    return this.log.committed;
  }

  get firstIndex(): number {
    return this.log.firstIndex();
  }

  /** The node's current log entries in [lo, hi) (stable and unstable), for checkers and tests. */
  logEntries(lo: number, hi: number): Entry[] {
    const first = Math.max(lo, this.log.firstIndex());
    const last = Math.min(hi, this.log.lastIndex() + 1);
    return first < last ? this.log.slice(first, last, Number.MAX_SAFE_INTEGER) : [];
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  hardState(): HardState {
    const vote = this.bugs.has('vote-not-persisted') ? NONE : this.vote;
    return { term: this.term, vote, commit: this.log.committed };
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.rng() * this.electionTimeout);
    this.leadTransferee = NONE;
    this.election.clearVotes();
    this.needFlush = false;
    for (const ctx of this.readOnly.dropAll()) this.droppedReads.push(ctx);
    this.prs = new Map();
    const last = this.log.lastIndex();
    for (const id of this.peers) {
      const pr = new Progress(last + 1, this.maxInflight, this.maxInflightBytes);
      pr.lastHeard = this.ticks; // a new leader gets one election timeout of grace
      if (id === this.id) pr.match = this.durableLastIndex();
      this.prs.set(id, pr);
    }
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Neither term nor vote change: a pre-election must not disrupt anyone.
    this.election.clearVotes();
    this.lead = NONE;
    this.role = 'pre-candidate';
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    for (const [id, pr] of this.prs) {
      if (id === this.id) pr.becomeReplicate();
    }
    // A no-op entry of the new term: committing it commits everything before it (Raft §5.4.2).
    this.appendEntries([{ index: this.log.lastIndex() + 1, term: this.term, type: 'noop', data: new Uint8Array(0) }]);
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.election.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.checkQuorum && this.ticks - this.quorumHeardTick() >= this.electionTimeout) {
      // Not heard from a majority for a whole election timeout: we may be cut off, step down.
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE; // the transfer timed out
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.repl.bcastHeartbeat(this.readOnly.lastPendingRound());
    }
  }

  /** The latest tick by which a quorum (counting this leader) had answered. */
  private quorumHeardTick(): number {
    return this.voters.committedValue((id) => (id === this.id ? this.ticks : this.progress(id).lastHeard));
  }

  private recentlyActive(id: NodeId, pr: Progress): boolean {
    return id === this.id || this.ticks - pr.lastHeard < this.electionTimeout;
  }

  // ---------------------------------------------------------------- per-role message handling

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    if (RESPONSE_TYPES.has(m.type)) pr.lastHeard = this.ticks;
    switch (m.type) {
      case 'app-resp':
        if (this.repl.onAppendResponse(m, pr)) this.matchAdvanced(m.from, pr);
        break;
      case 'heartbeat-resp':
        this.repl.onHeartbeatResponse(m, pr);
        if (m.context) this.readOnly.ack(m.context, m.from, this.voters);
        break;
      case 'snap-resp':
        this.repl.onSnapshotResponse(m, pr);
        break;
      case 'app':
      case 'heartbeat':
      case 'snap':
        invariant(false, () => `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        break;
      default:
        break; // late votes, timeout-now: nothing to do
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.follower.handleAppend(m);
        break;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.follower.handleHeartbeat(m);
        break;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.follower.handleSnapshotChunk(m);
        break;
      case 'prevote-resp':
      case 'vote-resp':
        this.election.onVoteResponse(m);
        break;
      default:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.follower.handleAppend(m);
        break;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.follower.handleHeartbeat(m);
        break;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.follower.handleSnapshotChunk(m);
        break;
      case 'timeout-now':
        // Leadership transfer: campaign at once, skipping the pre-vote and overriding leases.
        this.election.hup(true);
        break;
      default:
        break;
    }
  }

  /** A follower's log now matches further: commit what a quorum holds, send it more, finish a transfer. */
  private matchAdvanced(from: NodeId, pr: Progress): void {
    if (this.maybeCommit() || (pr.sentCommit < this.log.committed && pr.inflights.count === 0)) this.needFlush = true;
    this.repl.sendAppends(from);
    if (from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeout-now', to: from });
    }
  }

  // ---------------------------------------------------------------- replication

  private appendEntries(ents: Entry[]): void {
    this.log.append(ents);
    this.needFlush = true;
  }

  private maybeCommit(): boolean {
    const committedBefore = this.log.committed;
    // Only an entry of the current term is committed by counting replicas (Raft §5.4.2, Figure 8).
    const quorumMatch = this.voters.committedValue((id) => this.progress(id).match);
    const term = this.bugs.has('commit-old-term-by-counting') ? this.log.term(quorumMatch) : this.term;
    if (term === undefined || !this.log.maybeCommit(quorumMatch, term)) return false;
    if (this.log.term(committedBefore) !== this.term) {
      // First commit in this term: reads that waited for it can start their round.
      for (const ctx of this.readOnly.takeWaitingForCommit()) this.addRead(ctx);
    }
    return true;
  }

  /** Sends pending entries and commit updates to every follower (batched: once per Ready). */
  private flush(): void {
    if (!this.needFlush || this.role !== 'leader') return;
    this.needFlush = false;
    for (const id of this.peers) {
      if (id === this.id) continue;
      const pr = this.progress(id);
      this.repl.sendAppends(id);
      if (!this.lazyCommitUpdates) this.sendCommitUpdate(id, pr);
    }
  }

  /**
   * Leader: tells followers with nothing in flight the commit index they have not been sent (an empty
   * append). Followers with entries in flight learn it from the next append or heartbeat.
   */
  sendCommitUpdates(): void {
    if (this.role !== 'leader') return;
    for (const id of this.peers) if (id !== this.id) this.sendCommitUpdate(id, this.progress(id));
  }

  private sendCommitUpdate(id: NodeId, pr: Progress): void {
    // While entries are in flight their acknowledgement comes back here and the next append carries it.
    const busy = pr.state === 'replicate' && pr.inflights.count > 0;
    if (pr.sentCommit < this.log.committed && !pr.isPaused() && !busy) this.repl.sendAppend(id);
  }

  private addRead(ctx: string): void {
    const { round, isNew } = this.readOnly.add(ctx, this.log.committed);
    if (!isNew) return;
    this.readOnly.ack(round, this.id, this.voters); // releases at once in a single-node cluster
    if (this.peers.length > 1) this.repl.bcastHeartbeat(round);
  }

  // ---------------------------------------------------------------- helpers

  private progress(id: NodeId): Progress {
    const pr = this.prs.get(id);
    invariant(pr, () => `no progress for ${id}`);
    return pr;
  }

  /** A reply or notice with the common fields filled in. */
  private send(p: Reply): void {
    const m: Message = {
      type: p.type,
      from: this.id,
      to: p.to,
      term: this.term,
      logTerm: p.logTerm ?? 0,
      index: p.index ?? 0,
      commit: this.log.committed,
    };
    if (p.reject) m.reject = true;
    if (p.rejectHint !== undefined) m.rejectHint = p.rejectHint;
    if (p.context) m.context = p.context;
    this.msgOut(m);
  }

  private msgOut(m: Message): void {
    // Messages that do not depend on this node's pending writes may leave before they are durable:
    // the leader's replication traffic, heartbeats and their replies, pre-votes and rejections.
    if (EARLY_TYPES.has(m.type) || (m.reject && m.type !== 'app-resp')) this.msgsEarly.push(m);
    else this.msgs.push(m);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
