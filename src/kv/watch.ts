/**
 * The recent history of key changes a node can replay to watchers (`GET /watch`, ../shared/api.md).
 *
 * Revisions are log indexes: every change a committed entry makes carries the entry's index (a transaction's
 * changes share one). The history keeps the latest changes, bounded by a count and by an estimate of their
 * size; `compactRevision` is the revision up to which changes may have been dropped, so every change with a
 * larger revision is still here. Whole revisions are dropped together, never part of a transaction.
 *
 * A node starts with the changes after its snapshot (the log replay re-applies them), so its compact
 * revision is the snapshot's index; a snapshot installed from the leader replaces the state and sets it to
 * that snapshot's index. Deterministic and timer-free: the state machine feeds it as it applies entries.
 */
import type { JsonValue } from './json.js';

export interface KvChange {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new value (puts only). */
  readonly value?: JsonValue;
  /** Index of the entry that made the change. */
  readonly revision: number;
  /** The key's version after a put; the deleted record's version for a delete. */
  readonly version: number;
}

/** What the state machine tells an observer, in apply order. */
export interface KvObserver {
  /** A change made by the entry being applied; `bytes` estimates the memory it holds. */
  change(c: KvChange, bytes: number): void;
  /** The whole state was replaced by a snapshot whose applied index is `applied`. */
  restored(applied: number): void;
}

export interface WatchListener {
  changed(c: KvChange): void;
  /** The history was replaced (snapshot restore): changes up to `compactRevision` are gone. */
  reset(compactRevision: number): void;
}

export interface WatchHistoryLimits {
  /** Most changes kept (default 10,000). */
  readonly maxChanges?: number;
  /** Most estimated bytes kept (default 64 MiB). */
  readonly maxBytes?: number;
}

export const DEFAULT_WATCH_HISTORY = 10_000;
export const DEFAULT_WATCH_HISTORY_BYTES = 64 * 1024 * 1024;

const ENTRY_OVERHEAD = 64;

export class WatchHistory implements KvObserver {
  private items: KvChange[] = [];
  private sizes: number[] = [];
  /** Index in `items` of the oldest change kept (earlier slots are dropped lazily). */
  private start = 0;
  private bytes = 0;
  private compact: number;
  private readonly maxChanges: number;
  private readonly maxBytes: number;
  private readonly listeners = new Set<WatchListener>();

  constructor(compactRevision: number, limits: WatchHistoryLimits = {}) {
    this.compact = compactRevision;
    this.maxChanges = Math.max(1, limits.maxChanges ?? DEFAULT_WATCH_HISTORY);
    this.maxBytes = Math.max(1, limits.maxBytes ?? DEFAULT_WATCH_HISTORY_BYTES);
  }

  /** Changes with a revision above this one are all kept; older ones may have been dropped. */
  get compactRevision(): number {
    return this.compact;
  }

  /** Number of changes kept. */
  get length(): number {
    return this.items.length - this.start;
  }

  /** Revision of the newest change kept (the compact revision when none is). */
  get lastRevision(): number {
    return this.length === 0 ? this.compact : (this.items[this.items.length - 1] as KvChange).revision;
  }

  subscribe(l: WatchListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  change(c: KvChange, bytes: number): void {
    const size = ENTRY_OVERHEAD + c.key.length * 2 + bytes;
    this.items.push(c);
    this.sizes.push(size);
    this.bytes += size;
    this.trim(c.revision);
    for (const l of this.listeners) l.changed(c);
  }

  restored(applied: number): void {
    this.items = [];
    this.sizes = [];
    this.start = 0;
    this.bytes = 0;
    this.compact = applied;
    for (const l of this.listeners) l.reset(applied);
  }

  /** Kept changes with a revision above `after` whose key starts with `prefix`, oldest first, at most `limit`. */
  since(after: number, prefix: string, limit = Infinity): KvChange[] {
    const out: KvChange[] = [];
    let lo = this.start;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.items[mid] as KvChange).revision <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.items.length; i++) {
      const c = this.items[i] as KvChange;
      if (out.length >= limit && c.revision !== (out[out.length - 1] as KvChange).revision) break;
      if (c.key.startsWith(prefix)) out.push(c);
    }
    return out;
  }

  /** Drops the oldest whole revisions while over a limit, never the revision being applied (`current`). */
  private trim(current: number): void {
    while (this.length > this.maxChanges || this.bytes > this.maxBytes) {
      const oldest = (this.items[this.start] as KvChange).revision;
      if (oldest === current) break;
      while (this.start < this.items.length && (this.items[this.start] as KvChange).revision === oldest) {
        this.bytes -= this.sizes[this.start] as number;
        this.start++;
      }
      this.compact = oldest;
    }
    if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.sizes = this.sizes.slice(this.start);
      this.start = 0;
    }
  }
}
