import type { Reply } from './follower.js';
import type { RaftLog } from './log.js';
import { NONE, type Message, type NodeId, type Role } from './types.js';
import type { MajorityConfig } from './quorum.js';

/** What elections need of their node: its identity, state, role changes and outbox. */
export interface ElectionContext {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  /** The voters and their majority. */
  readonly voters: MajorityConfig;
  readonly preVote: boolean;
  /** Planted bug `vote-for-stale-log`: grant votes without the up-to-date check. */
  readonly votesForStaleLogs: boolean;
  log(): RaftLog;
  term(): number;
  vote(): NodeId;
  lead(): NodeId;
  role(): Role;
  becomePreCandidate(): void;
  becomeCandidate(): void;
  becomeLeader(): void;
  becomeFollower(term: number, lead: NodeId): void;
  /** Records a vote for `to` in this term (the next Ready persists it) and restarts the election timer. */
  votedFor(to: NodeId): void;
  msgOut(m: Message): void;
  send(r: Reply): void;
}

/**
 * Campaigns (with a pre-vote round first unless disabled or forced by a leadership transfer), the tally of
 * votes, and the answer to other nodes' vote requests (one vote per term, only for a log at least as up to
 * date as ours — Raft §5.4.1). Leases and term changes on incoming messages stay with the node's `step`.
 */
export class Election {
  private readonly votes = new Map<NodeId, boolean>();

  constructor(private readonly ctx: ElectionContext) {}

  clearVotes(): void {
    this.votes.clear();
  }

  /** Starts an election (if this node may): `transfer` skips the pre-vote and overrides leases. */
  hup(transfer: boolean): void {
    if (this.ctx.role() === 'leader') return;
    if (this.ctx.log().hasPendingSnapshot()) return; // restore the snapshot first
    if (this.ctx.preVote && !transfer) this.campaign('prevote', false);
    else this.campaign('vote', transfer);
  }

  /** A (pre-)vote response to this candidate. */
  onVoteResponse(m: Message): void {
    const expected = this.ctx.role() === 'pre-candidate' ? 'prevote-resp' : 'vote-resp';
    if (m.type !== expected) return;
    const result = this.poll(m.from, !m.reject);
    if (result === 'won') {
      if (this.ctx.role() === 'pre-candidate') this.campaign('vote', false);
      else this.ctx.becomeLeader();
    } else if (result === 'lost') {
      this.ctx.becomeFollower(this.ctx.term(), NONE);
    }
  }

  handleVoteRequest(m: Message): void {
    const ctx = this.ctx;
    const canVote =
      ctx.vote() === m.from ||
      (ctx.vote() === NONE && ctx.lead() === NONE) ||
      (m.type === 'prevote' && m.term > ctx.term());
    const respType = m.type === 'vote' ? 'vote-resp' : 'prevote-resp';
    const upToDate = ctx.votesForStaleLogs || ctx.log().isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      // The response carries the request's term: for a pre-vote, our own term does not move.
      ctx.msgOut({ type: respType, from: ctx.id, to: m.from, term: m.term, index: 0, logTerm: 0, commit: 0 });
      if (m.type === 'vote') ctx.votedFor(m.from);
    } else {
      ctx.send({ type: respType, to: m.from, reject: true });
    }
  }

  private campaign(kind: 'prevote' | 'vote', transfer: boolean): void {
    const ctx = this.ctx;
    let term: number;
    if (kind === 'prevote') {
      ctx.becomePreCandidate();
      term = ctx.term() + 1;
    } else {
      ctx.becomeCandidate();
      term = ctx.term();
    }
    if (this.poll(ctx.id, true) === 'won') {
      // Single-node cluster.
      if (kind === 'prevote') this.campaign('vote', false);
      else ctx.becomeLeader();
      return;
    }
    const log = ctx.log();
    for (const id of ctx.peers) {
      if (id === ctx.id) continue;
      ctx.msgOut({
        type: kind,
        from: ctx.id,
        to: id,
        term,
        index: log.lastIndex(),
        logTerm: log.lastTerm(),
        commit: log.committed,
        context: transfer ? 1 : 0,
      });
    }
  }

  /** Records a vote (the first from each node counts) and tallies the election. */
  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return this.ctx.voters.voteResult(this.votes);
  }
}
