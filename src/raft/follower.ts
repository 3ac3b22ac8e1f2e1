import type { RaftLog } from './log.js';
import { SnapshotReceiver } from './snapshot-receiver.js';
import type { Message, MessageType, NodeId, Snapshot } from './types.js';

/** A reply or notice; the node fills in sender, term and commit index. */
export interface Reply {
  type: MessageType;
  to: NodeId;
  index?: number;
  logTerm?: number;
  reject?: boolean;
  rejectHint?: number;
  context?: number;
}

/** What the follower side needs of its node. */
export interface FollowerContext {
  log(): RaftLog;
  send(r: Reply): void;
}

/**
 * The follower's handling of the leader's traffic: appends (log matching, conflict hints for fast
 * backtracking), heartbeats (commit index, ReadIndex and lease echoes) and snapshot chunks (assembled, then
 * installed unless the log already holds the snapshot's last entry). Role changes and election timers stay
 * with the node.
 */
export class FollowerSide {
  private readonly snapRecv = new SnapshotReceiver();

  constructor(private readonly ctx: FollowerContext) {}

  handleAppend(m: Message): void {
    const log = this.ctx.log();
    if (m.index < log.committed) {
      this.ctx.send({ type: 'app-resp', to: m.from, index: log.committed });
      return;
    }
    const lastNew = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries ?? []);
    if (lastNew !== undefined) {
      this.ctx.send({ type: 'app-resp', to: m.from, index: lastNew });
      return;
    }
    const [hintIndex, hintTerm] = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm);
    this.ctx.send({
      type: 'app-resp',
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    });
  }

  handleHeartbeat(m: Message): void {
    const log = this.ctx.log();
    // The leader sends min(its commit, our match), so every index up to it is in our log and matches.
    log.commitTo(Math.min(m.commit, log.lastIndex()));
    this.ctx.send({ type: 'heartbeat-resp', to: m.from, context: m.context ?? 0, index: m.index });
  }

  handleSnapshotChunk(m: Message): void {
    const c = m.snapshot;
    if (!c) return;
    const log = this.ctx.log();
    const index = c.metadata.index;
    if (index <= log.committed) {
      this.snapRecv.reset();
      this.ctx.send({ type: 'app-resp', to: m.from, index: log.committed });
      return;
    }
    const out = this.snapRecv.accept(c);
    if (out.kind === 'ack') {
      this.ctx.send({ type: 'snap-resp', to: m.from, index, rejectHint: out.next });
    } else if (out.kind === 'resume') {
      this.ctx.send({ type: 'snap-resp', to: m.from, index, reject: out.restart, rejectHint: out.next });
    } else {
      const installed = this.restore(out.snapshot);
      this.ctx.send({ type: 'app-resp', to: m.from, index: installed ? log.lastIndex() : log.committed });
    }
  }

  /** Installs a snapshot unless our log already contains its last entry. Returns whether it was installed. */
  private restore(s: Snapshot): boolean {
    const log = this.ctx.log();
    if (s.metadata.index <= log.committed) return false;
    if (log.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the entries: just fast-forward the commit index.
      log.commitTo(s.metadata.index);
      return false;
    }
    log.restore(s);
    return true;
  }
}
