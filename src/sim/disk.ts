import type { NodeId } from '../raft/types.js';
import type { Done, HostStorage } from '../server/host-ports.js';
import { MemoryStorage } from '../storage/memory.js';
import type { StorageUpdate } from '../storage/types.js';
import type { EventQueue } from './queue.js';

/** One operation handed to the simulated disk and not yet durable. */
type DiskOp =
  | { readonly kind: 'save'; readonly update: StorageUpdate; readonly done: Done }
  | {
      readonly kind: 'snapshot';
      readonly index: number;
      readonly peers: readonly NodeId[];
      readonly data: Uint8Array;
      readonly done: Done;
    }
  | { readonly kind: 'compact'; readonly index: number; readonly done: Done };

export interface DiskObserver {
  /** Entries about to be written; `prevTerm` is the term of the entry before the first (if known). */
  onPersist(entries: StorageUpdate['entries'], prevTerm: number | undefined): void;
}

/**
 * A node's disk as the production host sees it (the HostStorage port): an update is visible to the core at
 * once (as DiskStorage keeps it in memory) and durable once the disk gets to it; operations complete in
 * call order, each after a random delay. A crash keeps a random prefix of the records of the operation in
 * progress and loses the ones queued behind it; `durable` is what a restart finds.
 */
export class SimDisk implements HostStorage {
  /** What survives a crash. */
  readonly durable: MemoryStorage;
  /** What the running node reads: the disk plus the writes in flight. */
  visible: MemoryStorage;
  private ops: DiskOp[] = [];
  /** When the newest operation in flight completes. */
  private freeAt = 0;
  /** Bumped by a crash: completions scheduled before it do nothing. */
  private epoch = 0;

  constructor(
    peers: readonly NodeId[],
    private readonly queue: EventQueue,
    private readonly delay: () => number,
    private readonly observer: DiskObserver,
  ) {
    this.durable = new MemoryStorage(peers);
    this.visible = this.durable;
  }

  /** A fresh process: it reads what reached the disk. */
  mount(): MemoryStorage {
    this.visible = this.durable.clone();
    return this.visible;
  }

  snapshotIndex(): number {
    return this.visible.snapshot().metadata.index;
  }
  hardState(): ReturnType<MemoryStorage['hardState']> {
    return this.visible.hardState();
  }
  firstIndex(): number {
    return this.visible.firstIndex();
  }

  save(update: StorageUpdate, done: Done): void {
    if (update.entries.length > 0) {
      const first = update.entries[0].index;
      const prevTerm = update.snapshot
        ? update.snapshot.metadata.term
        : first - 1 <= this.visible.lastIndex()
          ? termOf(this.visible, first - 1)
          : undefined;
      this.observer.onPersist(update.entries, prevTerm);
    }
    this.visible.saveSync(update);
    this.enqueue({ kind: 'save', update, done });
  }

  createSnapshot(index: number, peers: readonly NodeId[], data: Uint8Array, done: Done): void {
    this.enqueue({ kind: 'snapshot', index, peers, data, done });
  }

  compact(index: number, done: Done): void {
    this.enqueue({ kind: 'compact', index, done });
  }

  get busy(): boolean {
    return this.ops.length > 0;
  }

  /**
   * The process dies: the operation in progress reaches the disk in part (a random prefix of its records),
   * the ones behind it not at all, and no completion is reported. Returns what was kept, for the trace.
   */
  crash(rng: () => number): string {
    const head = this.ops[0];
    let kept = '';
    if (head?.kind === 'save') {
      const rd = head.update;
      const records = rd.entries.length + (rd.hardState ? 1 : 0) + (rd.snapshot ? 1 : 0);
      const n = Math.floor(rng() * (records + 1));
      let left = n;
      if (rd.snapshot && left > 0) {
        this.durable.applySnapshot(rd.snapshot);
        left--;
      }
      const ents = rd.entries.slice(0, Math.min(left, rd.entries.length));
      if (ents.length > 0) this.durable.append(ents);
      left -= ents.length;
      if (rd.hardState && left > 0) this.durable.saveSync({ hardState: rd.hardState, entries: [] });
      kept = ` mid-write (${n}/${records} records kept)`;
    } else if (head !== undefined && rng() < 0.5) {
      this.complete(head, this.durable);
      kept = ` mid-${head.kind} (kept)`;
    }
    this.ops = [];
    this.freeAt = 0;
    this.epoch++;
    return kept;
  }

  private enqueue(op: DiskOp): void {
    this.ops.push(op);
    const epoch = this.epoch;
    this.freeAt = Math.max(this.queue.now, this.freeAt) + this.delay();
    this.queue.schedule(this.freeAt - this.queue.now, () => {
      if (epoch !== this.epoch) return;
      const head = this.ops.shift();
      if (head === undefined) return;
      this.complete(head, this.durable);
      if (head.kind !== 'save') this.complete(head, this.visible);
      head.done(null);
    });
  }

  private complete(op: DiskOp, st: MemoryStorage): void {
    if (op.kind === 'save') st.saveSync(op.update);
    else if (op.kind === 'snapshot') {
      if (op.index > st.snapshot().metadata.index) st.createSnapshotSync(op.index, op.peers, op.data);
    } else if (op.index >= st.firstIndex()) st.compactSync(op.index);
  }
}

function termOf(st: MemoryStorage, i: number): number | undefined {
  try {
    return st.term(i);
  } catch {
    return undefined;
  }
}
