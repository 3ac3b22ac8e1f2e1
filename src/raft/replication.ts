import { invariant } from './assert.js';
import type { RaftLog } from './log.js';
import type { Progress } from './progress.js';
import { entrySize } from './storage.js';
import type { Message, NodeId, Snapshot } from './types.js';

/** Snapshot chunks in flight to one follower at a time. */
const SNAPSHOT_WINDOW = 4;

/** What the leader-side sender needs of its node. */
export interface ReplicationContext {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly maxSizePerMsg: number;
  readonly snapshotChunkSize: number;
  log(): RaftLog;
  term(): number;
  ticks(): number;
  progress(id: NodeId): Progress;
  recentlyActive(id: NodeId, pr: Progress): boolean;
  send(m: Message): void;
}

/**
 * The leader's replication traffic: appends within each follower's flow control, snapshots in pipelined
 * chunks when a follower needs compacted entries, and heartbeats (which also carry ReadIndex rounds and the
 * send tick for the leader lease); and the flow-control side of the followers' answers.
 */
export class Replicator {
  constructor(private readonly ctx: ReplicationContext) {}

  /** Sends as many appends as the follower's flow control allows. */
  sendAppends(to: NodeId): void {
    const pr = this.ctx.progress(to);
    while (!pr.isPaused() && pr.next <= this.ctx.log().lastIndex()) {
      if (!this.sendAppend(to)) break;
    }
  }

  /** Sends one append (possibly empty) or starts a snapshot transfer. Returns false if nothing was sent. */
  sendAppend(to: NodeId): boolean {
    const pr = this.ctx.progress(to);
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.ctx.log().term(prevIndex);
    const ents = this.ctx.log().entries(pr.next, this.ctx.maxSizePerMsg);
    if (prevTerm === undefined || ents === undefined) return this.startSnapshot(to, pr);
    let bytes = 0;
    for (const e of ents) bytes += entrySize(e);
    this.ctx.send({
      type: 'app',
      from: this.ctx.id,
      to,
      term: this.ctx.term(),
      index: prevIndex,
      logTerm: prevTerm,
      commit: this.ctx.log().committed,
      entries: ents,
    });
    pr.sentEntries(ents.length, bytes);
    pr.sentCommit = this.ctx.log().committed;
    return true;
  }

  private startSnapshot(to: NodeId, pr: Progress): boolean {
    if (!this.ctx.recentlyActive(to, pr)) return false; // do not ship a snapshot to a peer that may be down
    const snap = this.ctx.log().snapshot();
    invariant(snap.metadata.index > 0, 'entries are compacted but there is no snapshot');
    pr.becomeSnapshot(snap);
    this.sendSnapshotChunks(to, pr);
    return true;
  }

  /** Sends chunks from `snapSent` on, keeping at most a few chunks unacknowledged. */
  sendSnapshotChunks(to: NodeId, pr: Progress): void {
    const snap = pr.snapshot;
    if (!snap) return;
    const total = snap.data.byteLength;
    const window = SNAPSHOT_WINDOW * this.ctx.snapshotChunkSize;
    while (pr.snapSent - pr.snapOffset < window && (pr.snapSent < total || total === 0)) {
      this.sendSnapshotChunk(to, pr, snap);
      if (total === 0) break;
    }
  }

  private sendSnapshotChunk(to: NodeId, pr: Progress, snap: Snapshot): void {
    const total = snap.data.byteLength;
    const end = Math.min(total, pr.snapSent + this.ctx.snapshotChunkSize);
    this.ctx.send({
      type: 'snap',
      from: this.ctx.id,
      to,
      term: this.ctx.term(),
      index: snap.metadata.index,
      logTerm: snap.metadata.term,
      commit: this.ctx.log().committed,
      snapshot: {
        metadata: snap.metadata,
        offset: pr.snapSent,
        totalSize: total,
        data: snap.data.subarray(pr.snapSent, end),
      },
    });
    pr.snapSent = end;
  }

  bcastHeartbeat(context: number): void {
    for (const id of this.ctx.peers) {
      if (id === this.ctx.id) continue;
      const pr = this.ctx.progress(id);
      const commit = Math.min(pr.match, this.ctx.log().committed);
      // `index` carries the tick the heartbeat was sent at, echoed back for the leader lease.
      this.ctx.send({
        type: 'heartbeat',
        from: this.ctx.id,
        to: id,
        term: this.ctx.term(),
        index: this.ctx.ticks(),
        logTerm: 0,
        commit,
        context,
      });
    }
  }

  // ---------------------------------------------------------------- the followers' answers

  /**
   * An append response from `pr`'s follower. Handles rejections (back off and probe) and flow control;
   * returns true when the follower's match index advanced (the caller may then commit and send more).
   */
  onAppendResponse(m: Message, pr: Progress): boolean {
    if (m.reject) {
      let nextProbe = m.rejectHint ?? 0;
      if (m.logTerm > 0) nextProbe = this.ctx.log().findConflictByTerm(nextProbe, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return false;
    }
    if (!pr.maybeUpdate(m.index)) {
      if (pr.state === 'probe' && pr.match === m.index) {
        pr.becomeReplicate();
        this.sendAppends(m.from);
      }
      return false;
    }
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
    }
    return true;
  }

  /** A heartbeat response: the follower is alive, so unblock a full window or resend what it lacks. */
  onHeartbeatResponse(m: Message, pr: Progress): void {
    pr.probeSent = false;
    // The follower is alive but our window is full: appends were probably lost. Let one more through;
    // if the follower's log is behind, its rejection sends us back to probing.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (m.index > pr.ackedTick) pr.ackedTick = m.index;
    if (pr.state === 'snapshot') {
      // Chunks may have been lost: resend from the last acknowledged offset if nothing moved for a while.
      if (++pr.snapStall >= 3) {
        pr.snapSent = pr.snapOffset;
        this.sendSnapshotChunks(m.from, pr);
      }
    } else if (pr.match < this.ctx.log().lastIndex()) {
      this.sendAppend(m.from);
    }
  }

  /** A snapshot chunk acknowledgement (or a request to resume from an offset). */
  onSnapshotResponse(m: Message, pr: Progress): void {
    if (pr.state !== 'snapshot' || m.index !== pr.pendingSnapshot || !pr.snapshot) return;
    const next = m.rejectHint ?? 0;
    pr.snapStall = 0;
    if (m.reject) {
      // The follower lost track (restart, or chunks out of order): resume from where it is.
      pr.snapOffset = next;
      pr.snapSent = next;
    } else if (next > pr.snapOffset) {
      pr.snapOffset = next;
      if (pr.snapSent < next) pr.snapSent = next;
    } else {
      return; // a duplicate or stale acknowledgement
    }
    this.sendSnapshotChunks(m.from, pr);
  }
}
