import type { NodeId, ReadState } from './types.js';
import type { MajorityConfig } from './quorum.js';

interface Round {
  readonly id: number;
  /** The commit index when the round started: reads in it are served once this index is applied. */
  readonly index: number;
  readonly ctxs: string[];
  readonly acks: Set<NodeId>;
}

/**
 * ReadIndex bookkeeping on the leader. Reads issued between two Ready's join one open round, which is
 * confirmed by one heartbeat broadcast; a round is released once a quorum has acknowledged it or any
 * later round (a later acknowledgement also proves leadership after the earlier round began).
 */
export class ReadOnly {
  private rounds: Round[] = [];
  private open: Round | null = null;
  private waiting: string[] = [];
  private released: ReadState[] = [];
  private seq = 0;

  /** Adds a read at commit index `index`; returns its round and whether the round is new. */
  add(ctx: string, index: number): { round: number; isNew: boolean } {
    let isNew = false;
    if (!this.open) {
      this.open = { id: ++this.seq, index, ctxs: [], acks: new Set() };
      this.rounds.push(this.open);
      isNew = true;
    }
    this.open.ctxs.push(ctx);
    return { round: this.open.id, isNew };
  }

  /** Records an acknowledgement of round `id` from `from`; releases every round up to it on quorum. */
  ack(id: number, from: NodeId, voters: MajorityConfig): void {
    const pos = this.rounds.findIndex((r) => r.id === id);
    if (pos < 0) return;
    const round = this.rounds[pos];
    round.acks.add(from);
    if (!voters.isQuorum(round.acks)) return;
    for (const r of this.rounds.splice(0, pos + 1)) {
      for (const ctx of r.ctxs) this.released.push({ index: r.index, ctx });
      if (r === this.open) this.open = null;
    }
  }

  /** The round's heartbeats were handed to the host: later reads start a new round. */
  closeRound(): void {
    this.open = null;
  }

  /** The newest unconfirmed round (carried by regular heartbeats so lost ones are retried), or 0. */
  lastPendingRound(): number {
    return this.rounds.length > 0 ? this.rounds[this.rounds.length - 1].id : 0;
  }

  /** Releases a read at once (only the planted bug 'read-without-confirmation' does this). */
  releaseNow(ctx: string, index: number): void {
    this.released.push({ index, ctx });
  }

  waitForCommit(ctx: string): void {
    this.waiting.push(ctx);
  }

  takeWaitingForCommit(): string[] {
    const w = this.waiting;
    this.waiting = [];
    return w;
  }

  hasReadStates(): boolean {
    return this.released.length > 0;
  }

  takeReadStates(): ReadState[] {
    const r = this.released;
    this.released = [];
    return r;
  }

  /** Leadership lost: every read not yet confirmed is dropped (released ones stay valid). */
  dropAll(): string[] {
    const dropped = [...this.waiting];
    for (const r of this.rounds) dropped.push(...r.ctxs);
    this.rounds = [];
    this.waiting = [];
    this.open = null;
    return dropped;
  }
}
