import { encodeCommand, type Command } from '../kv/commands.js';
import type { JsonValue } from '../kv/json.js';
import type { ApplyResult } from '../kv/results.js';
import { KvStateMachine } from '../kv/state-machine.js';
import { RaftNode, type RaftConfig } from '../raft/node.js';
import { makeRng } from '../raft/rng.js';
import type { Entry, Message, NodeId, Ready } from '../raft/types.js';
import { MemoryStorage } from '../storage/memory.js';
import type { StorageUpdate } from '../storage/types.js';
import type { InvariantChecker } from './invariants.js';
import type { EventQueue } from './queue.js';

export type ClientRequest =
  { readonly f: 'get'; readonly key: string } | { readonly f: 'write'; readonly command: Command };

export type ClientReply =
  | { readonly kind: 'applied'; readonly result: ApplyResult }
  | { readonly kind: 'read'; readonly value: JsonValue }
  | { readonly kind: 'redirect'; readonly leader: NodeId }
  | { readonly kind: 'retry' };

export interface HostOptions {
  readonly tickInterval: number;
  readonly diskDelay: () => number;
  readonly snapshotThreshold: number;
  readonly snapshotKeep: () => number;
  readonly raft: Partial<RaftConfig>;
  readonly trace: ((line: string) => void) | null;
}

/** A write handed to the simulated disk and not yet durable. */
interface DiskWrite {
  readonly update: StorageUpdate;
  /** The Ready waits for this write (its messages or acknowledgements depend on it). */
  readonly blocking: boolean;
}

/**
 * One simulated server: drives a real RaftNode like the production host does (persist, then send, then
 * apply), on a simulated disk whose writes take time, complete in order and are lost — possibly in part
 * — by a crash. Like the server, a leader may go on with its next Ready while its own appends are still
 * being written (`advance(rd, false)`, then `persisted`); the host picks that path at random.
 */
export class SimHost {
  /** The disk: what survives a crash. */
  readonly storage: MemoryStorage;
  /** What the running node reads: the disk plus the writes in flight (as DiskStorage keeps in memory). */
  private visible: MemoryStorage;
  node: RaftNode | null = null;
  sm: KvStateMachine | null = null;
  up = false;
  private incarnation = 0;
  /** Writes in flight, oldest first. */
  private writes: DiskWrite[] = [];
  /** When the newest write in flight completes (writes complete in order). */
  private diskFreeAt = 0;
  private readonly choice: () => number;
  private pendingWrites = new Map<number, { term: number; reply: (r: ClientReply) => void }>();
  private pendingReads = new Map<string, { key: string; reply: (r: ClientReply) => void }>();
  private confirmedReads: { index: number; key: string; reply: (r: ClientReply) => void }[] = [];
  private readSeq = 0;
  crashes = 0;
  snapshots = 0;

  constructor(
    readonly id: NodeId,
    private readonly peers: readonly NodeId[],
    private readonly seed: number,
    private readonly queue: EventQueue,
    private readonly send: (m: Message) => void,
    private readonly checker: InvariantChecker,
    private readonly opts: HostOptions,
  ) {
    this.storage = new MemoryStorage(peers);
    this.visible = this.storage;
    this.choice = makeRng(seed * 2_654_435_761 + id * 97);
  }

  start(): void {
    this.up = true;
    const inc = ++this.incarnation;
    this.visible = this.storage.clone();
    const snap = this.visible.snapshot();
    this.sm = new KvStateMachine();
    if (snap.metadata.index > 0) this.sm.restore(snap.data);
    this.node = new RaftNode({
      ...this.opts.raft,
      id: this.id,
      storage: this.visible,
      peers: this.peers,
      rng: makeRng(this.seed * 1_000_003 + this.id * 7919 + inc * 104_729),
      applied: snap.metadata.index,
      // As the server does, half the time: commit-only updates only when the host asks (see finish).
      lazyCommitUpdates: this.choice() < 0.5,
    });
    const tick = () => {
      if (!this.up || inc !== this.incarnation) return;
      this.node?.tick();
      this.pump();
      this.queue.schedule(this.opts.tickInterval, tick);
    };
    // Stagger the first tick so that nodes do not tick in lockstep.
    this.queue.schedule(1 + ((this.id * 3) % this.opts.tickInterval), tick);
    this.opts.trace?.(`${this.queue.now} node ${this.id} starts (incarnation ${inc}, snapshot ${snap.metadata.index})`);
  }

  /**
   * Crash: everything in memory is lost; the write in progress reaches the disk only in part, the ones
   * queued behind it not at all.
   */
  crash(rng: () => number): void {
    if (!this.up) return;
    const head = this.writes[0];
    if (head) {
      const rd = head.update;
      // The records of the batch, in write order: a crash keeps a random prefix of them.
      const records = rd.entries.length + (rd.hardState ? 1 : 0) + (rd.snapshot ? 1 : 0);
      const kept = Math.floor(rng() * (records + 1));
      let left = kept;
      if (rd.snapshot && left > 0) {
        this.storage.applySnapshot(rd.snapshot);
        left--;
      }
      const ents = rd.entries.slice(0, Math.min(left, rd.entries.length));
      if (ents.length > 0) this.storage.append(ents);
      left -= ents.length;
      if (rd.hardState && left > 0) this.storage.saveSync({ hardState: rd.hardState, entries: [] });
      this.opts.trace?.(`${this.queue.now} node ${this.id} crashes mid-write (${kept}/${records} records kept)`);
    } else {
      this.opts.trace?.(`${this.queue.now} node ${this.id} crashes`);
    }
    this.up = false;
    this.incarnation++;
    this.crashes++;
    this.writes = [];
    this.diskFreeAt = 0;
    this.node = null;
    this.sm = null;
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.confirmedReads = [];
  }

  receive(m: Message): void {
    if (!this.up || !this.node) return;
    this.node.step(m);
    this.pump();
  }

  handleClient(req: ClientRequest, reply: (r: ClientReply) => void): void {
    const node = this.node;
    if (!this.up || !node) return; // no answer: the client times out
    if (req.f === 'get') {
      const ctx = `${this.id}:${++this.readSeq}`;
      const r = node.readIndex(ctx);
      if (!r.ok) reply({ kind: 'redirect', leader: r.leader });
      else this.pendingReads.set(ctx, { key: req.key, reply });
    } else {
      const r = node.propose(encodeCommand(req.command));
      if (!r.ok) reply({ kind: 'redirect', leader: r.leader });
      else this.pendingWrites.set(r.index, { term: r.term, reply });
    }
    this.pump();
  }

  /** The host loop: early messages flow while the disk is busy; a blocking write holds the next Ready. */
  private pump(): void {
    const node = this.node;
    if (!node) return;
    if (this.writes.some((w) => w.blocking)) {
      for (const m of node.drainEarlyMessages()) this.send(m);
      return;
    }
    if (!node.hasReady()) return;
    const rd = node.ready();
    for (const m of rd.earlyMessages) this.send(m);
    const hs = rd.hardState;
    const stored = this.visible.hardState();
    const commitOnly = hs !== undefined && hs.term === stored.term && hs.vote === stored.vote;
    if (rd.entries.length === 0 && rd.snapshot === undefined && (hs === undefined || commitOnly)) {
      // As the real server does: a change of the commit index alone is not fsynced by itself (it is
      // recomputed after a restart); it rides along with the next write.
      this.finish(rd);
      return;
    }
    const early = node.canAdvanceBeforeDurable(rd) && this.choice() < 0.75;
    this.write({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot }, !early, () => {
      if (!early) {
        this.finish(rd);
        return;
      }
      const last = rd.entries.at(-1);
      if (last) this.node?.persisted(last.index, last.term);
      this.pump();
    });
    if (early) this.finish(rd, false);
  }

  /** Hands `update` to the disk: visible at once, durable (and `then` run) once the disk gets to it. */
  private write(update: StorageUpdate, blocking: boolean, then: () => void): void {
    if (update.entries.length > 0) {
      const first = update.entries[0].index;
      const v = this.visible;
      const prevTerm = first - 1 <= v.lastIndex() ? safeTerm(v, first - 1) : undefined;
      this.checker.onPersist(this.id, update.entries, update.snapshot ? update.snapshot.metadata.term : prevTerm);
    }
    this.visible.saveSync(update);
    this.writes.push({ update, blocking });
    const inc = this.incarnation;
    this.diskFreeAt = Math.max(this.queue.now, this.diskFreeAt) + this.opts.diskDelay();
    this.queue.schedule(this.diskFreeAt - this.queue.now, () => {
      if (inc !== this.incarnation) return; // crashed meanwhile
      this.storage.saveSync(update);
      this.writes.shift();
      then();
    });
  }

  /** Sends, applies and serves what `rd` allows, then advances the node (`durable`: see RaftNode.advance). */
  private finish(rd: Ready, durable = true): void {
    const node = this.node;
    const sm = this.sm;
    if (!node || !sm) return;
    for (const m of rd.messages) this.send(m);
    if (rd.snapshot) {
      sm.restore(rd.snapshot.data);
      this.opts.trace?.(`${this.queue.now} node ${this.id} installs snapshot ${rd.snapshot.metadata.index}`);
    }
    for (const e of rd.committedEntries) this.apply(e, sm);
    for (const ctx of rd.droppedReads) this.pendingReads.get(ctx)?.reply({ kind: 'retry' });
    for (const ctx of rd.droppedReads) this.pendingReads.delete(ctx);
    for (const rs of rd.readStates) {
      const p = this.pendingReads.get(rs.ctx);
      if (!p) continue;
      this.pendingReads.delete(rs.ctx);
      this.confirmedReads.push({ index: rs.index, key: p.key, reply: p.reply });
    }
    this.serveReads(sm);
    node.advance(rd, durable);
    // The server asks when no proposal is waiting; here at random, heartbeats carrying it otherwise.
    if (node.currentRole === 'leader' && this.choice() < 0.7) node.sendCommitUpdates();
    this.maybeSnapshot(sm);
    this.pump();
  }

  private apply(e: Entry, sm: KvStateMachine): void {
    if (e.index <= sm.appliedIndex) return; // covered by a restored snapshot
    this.checker.onApply(this.id, e);
    let result: ApplyResult | null = null;
    if (e.type === 'noop') sm.skipTo(e.index);
    else result = sm.apply(e.index, e.data);
    const p = this.pendingWrites.get(e.index);
    if (!p) return;
    this.pendingWrites.delete(e.index);
    if (p.term === e.term && result) p.reply({ kind: 'applied', result });
    else p.reply({ kind: 'retry' }); // our proposal was overwritten by another leader's entry
  }

  private serveReads(sm: KvStateMachine): void {
    if (this.confirmedReads.length === 0) return;
    const keep: typeof this.confirmedReads = [];
    for (const r of this.confirmedReads) {
      if (r.index <= sm.appliedIndex) r.reply({ kind: 'read', value: sm.get(r.key)?.value ?? null });
      else keep.push(r);
    }
    this.confirmedReads = keep;
  }

  private maybeSnapshot(sm: KvStateMachine): void {
    const applied = sm.appliedIndex;
    if (applied - this.storage.snapshot().metadata.index < this.opts.snapshotThreshold) return;
    // A snapshot is durable at once here, so only of entries already on the disk. Writes still in flight
    // then are a leader's appends after them (anything else blocks the host until it is written).
    if (applied > this.storage.lastIndex()) return;
    const data = sm.snapshot();
    for (const st of [this.storage, this.visible]) {
      st.createSnapshotSync(applied, this.peers, data);
      st.compactSync(Math.max(st.firstIndex() - 1, applied - this.opts.snapshotKeep()));
    }
    this.snapshots++;
  }
}

function safeTerm(st: MemoryStorage, i: number): number | undefined {
  try {
    return st.term(i);
  } catch {
    return undefined;
  }
}
