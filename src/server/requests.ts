/**
 * The client requests a host is holding: proposals queued for the next batch and pending until their entry
 * applies, linearizable reads queued for the next ReadIndex round, in a round, or waiting for `applied` to
 * reach their index, and waiters on an applied index. Every request has a deadline; one periodic `sweep`
 * fails the late ones (no timer per request).
 */
import type { NodeId, ReadState } from '../raft/types.js';

/** Why a request could not complete; the HTTP layer maps these to 503s, forwards or redirects. */
export type HostFailure =
  | { readonly kind: 'not-leader'; readonly leader: NodeId }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'lost' }
  | { readonly kind: 'failed' }
  | { readonly kind: 'too-large'; readonly message: string };

export class HostError extends Error {
  constructor(readonly failure: HostFailure) {
    super(failure.kind);
    this.name = 'HostError';
  }
}

export interface Waiter<T> {
  resolve(v: T): void;
  reject(e: HostError): void;
  deadline: number;
}

/** A client proposal: queued, then (with the term it was proposed in) pending until its entry applies. */
export interface Proposal<R, C> extends Waiter<R> {
  readonly data: Uint8Array;
  readonly decoded: C | undefined;
  /** performance.now() when it reached the host, for the commit latency histogram. */
  readonly proposedAt: number;
  term: number;
}

interface ReadBatch {
  index: number;
  waiters: Waiter<number>[];
}

export class RequestTable<R, C> {
  /** Proposals not yet handed to the core. */
  private proposeQueue: Proposal<R, C>[] = [];
  /** Proposals handed to the core, by the index of their entry. */
  private readonly pending = new Map<number, Proposal<R, C>>();
  /** Reads waiting for the next ReadIndex round. */
  private readQueue: Waiter<number>[] = [];
  private readonly readBatches = new Map<string, ReadBatch>();
  /** Reads whose ReadIndex is known, waiting for `applied` to reach it (in index order). */
  private readonly readyReads: ReadBatch[] = [];
  private readonly appliedWaiters: { index: number; waiter: Waiter<number> }[] = [];

  get size(): number {
    return this.pending.size + this.proposeQueue.length + this.readQueue.length + this.readBatches.size;
  }

  /** Proposals waiting for the next batch. */
  get queuedProposals(): number {
    return this.proposeQueue.length;
  }

  /** Reads waiting for the next ReadIndex round. */
  get queuedReads(): number {
    return this.readQueue.length;
  }

  queueProposal(p: Proposal<R, C>): void {
    this.proposeQueue.push(p);
  }

  queueRead(w: Waiter<number>): void {
    this.readQueue.push(w);
  }

  /** `p`'s entry is at `index`; a proposal registered there before was overwritten, hence lost. */
  setPending(index: number, p: Proposal<R, C>): void {
    this.pending.get(index)?.reject(new HostError({ kind: 'lost' }));
    this.pending.set(index, p);
  }

  /** The proposal whose entry is at `index`, if any. */
  pendingAt(index: number): Proposal<R, C> | undefined {
    return this.pending.get(index);
  }

  /** The entry at `index` has applied: its proposal is no longer pending. */
  settled(index: number): void {
    this.pending.delete(index);
  }

  /** True while a ReadIndex round is out (reads queued meanwhile share the next one). */
  get readRoundOut(): boolean {
    return this.readBatches.size > 0;
  }

  /** Takes every queued proposal. */
  takeProposals(): Proposal<R, C>[] {
    const batch = this.proposeQueue;
    this.proposeQueue = [];
    return batch;
  }

  /** Takes every queued read. */
  takeReads(): Waiter<number>[] {
    const reads = this.readQueue;
    this.readQueue = [];
    return reads;
  }

  /** A ReadIndex round `ctx` carries `waiters`. */
  startRound(ctx: string, waiters: Waiter<number>[]): void {
    this.readBatches.set(ctx, { index: -1, waiters });
  }

  /** Rounds the core confirmed wait for their index to apply; rounds it dropped fail with `dropped`. */
  settleRounds(states: readonly ReadState[], droppedCtxs: readonly string[], dropped: () => HostError): void {
    for (const rs of states) {
      const b = this.readBatches.get(rs.ctx);
      if (!b) continue;
      this.readBatches.delete(rs.ctx);
      b.index = rs.index;
      this.readyReads.push(b);
    }
    for (const ctx of droppedCtxs) {
      const b = this.readBatches.get(ctx);
      if (!b) continue;
      this.readBatches.delete(ctx);
      const err = dropped();
      for (const w of b.waiters) w.reject(err);
    }
  }

  waitApplied(index: number, waiter: Waiter<number>): void {
    this.appliedWaiters.push({ index, waiter });
  }

  /** Answers the reads and applied-index waiters that `applied` now covers. */
  serve(applied: number): void {
    if (this.readyReads.length > 0) {
      let kept = 0;
      for (const b of this.readyReads) {
        if (b.index <= applied) for (const w of b.waiters) w.resolve(applied);
        else this.readyReads[kept++] = b;
      }
      this.readyReads.length = kept;
    }
    if (this.appliedWaiters.length > 0) {
      let kept = 0;
      for (const a of this.appliedWaiters) {
        if (a.index <= applied) a.waiter.resolve(applied);
        else this.appliedWaiters[kept++] = a;
      }
      this.appliedWaiters.length = kept;
    }
  }

  /** Fails the pending proposals at or below `index` (a restored snapshot covers their entries). */
  losePendingUpTo(index: number): void {
    for (const [idx, p] of this.pending) {
      if (idx <= index) {
        this.pending.delete(idx);
        p.reject(new HostError({ kind: 'lost' }));
      }
    }
  }

  /** Fails what waits for this node to act as leader: queued reads and proposals. */
  failQueued(err: HostError): void {
    for (const w of this.takeReads()) w.reject(err);
    for (const p of this.takeProposals()) p.reject(err);
  }

  /** Fails every request whose deadline passed. */
  sweep(now: number): void {
    const timeout = new HostError({ kind: 'timeout' });
    for (const [idx, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(idx);
        p.reject(timeout);
      }
    }
    this.proposeQueue = sweepList(this.proposeQueue, (p) => p, now, timeout);
    this.readQueue = sweepList(this.readQueue, (w) => w, now, timeout);
    for (const [ctx, b] of this.readBatches) {
      b.waiters = sweepList(b.waiters, (w) => w, now, timeout);
      if (b.waiters.length === 0) this.readBatches.delete(ctx);
    }
    for (const b of this.readyReads) b.waiters = sweepList(b.waiters, (w) => w, now, timeout);
    const aw = sweepList(this.appliedWaiters, (a) => a.waiter, now, timeout);
    this.appliedWaiters.length = 0;
    this.appliedWaiters.push(...aw);
  }

  /** Fails everything. */
  failAll(err: HostError): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.failQueued(err);
    for (const b of this.readBatches.values()) for (const w of b.waiters) w.reject(err);
    this.readBatches.clear();
    for (const b of this.readyReads) for (const w of b.waiters) w.reject(err);
    this.readyReads.length = 0;
    for (const a of this.appliedWaiters) a.waiter.reject(err);
    this.appliedWaiters.length = 0;
  }
}

function sweepList<T, V>(list: T[], waiterOf: (t: T) => Waiter<V>, now: number, err: HostError): T[] {
  if (list.length === 0) return list;
  const kept: T[] = [];
  for (const t of list) {
    const w = waiterOf(t);
    if (w.deadline <= now) w.reject(err);
    else kept.push(t);
  }
  return kept;
}
