/**
 * A snapshot of the key-value state taken in slices, copy-on-write. `KvStateMachine.beginSnapshot` costs
 * next to nothing: the job remembers the applied index and the number of keys, and from then on the state
 * machine tells it of every key about to change (`willChange`), so that it keeps that key's record as it
 * was when the job began. Each `step` walks the next slice of keys in order — the live keys merged with
 * the ones deleted since the start — and encodes each key's record as of the start (the kept one if the
 * key changed, else the live one; none for a key created since). The host spreads the steps over turns of
 * its event loop, so a large state never stalls requests for the whole encoding (seconds with a million
 * keys). The bytes are exactly those of `KvStateMachine.snapshot()` at the start: MessagePack is encoded
 * value by value, so the records' array is its header followed by the slices' elements.
 */
import { pack } from '../util/msgpack.js';
import type { KeyRecord } from './results.js';
import { SortedKeys } from './sorted-keys.js';

/** Records encoded per step: a few milliseconds of work. */
export const RECORDS_PER_STEP = 4096;

/** The host's view of a snapshot in progress (see HostStateMachine.beginSnapshot). */
export interface SnapshotJob {
  /** The applied index the snapshot stands for. */
  readonly index: number;
  /** Encodes the next slice; returns the snapshot's bytes once the last one is done. */
  step(): Uint8Array | undefined;
}

/** What the job reads of the live state. */
export interface SnapshotSource {
  /** Live keys strictly after `after` (all when undefined), in order. */
  keysAfter(after: string | undefined): Iterator<string>;
  get(key: string): KeyRecord | undefined;
}

/** The MessagePack header of an array of `n` elements. */
export function arrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >> 8, n & 0xff);
  return Uint8Array.of(0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** A record as the snapshot stores it: key, value as JSON, version, revision, create revision. */
export function recordFields(r: KeyRecord): (string | number)[] {
  return [r.key, JSON.stringify(r.value), r.version, r.revision, r.createRevision];
}

export class KvSnapshotJob implements SnapshotJob {
  /** Keys changed since the start that the walk has not passed: their record then (undefined: absent). */
  private readonly kept = new Map<string, KeyRecord | undefined>();
  /** Keys that existed at the start and were deleted since, not yet passed by the walk. */
  private readonly gone = new SortedKeys();
  private readonly goneSet = new Set<string>();
  /** The last key the walk has passed. */
  private last: string | undefined;
  private emitted = 0;
  private readonly parts: Uint8Array[] = [];
  private result: Uint8Array | undefined;

  constructor(
    private readonly format: number,
    readonly index: number,
    /** Number of keys at the start. */
    private readonly keys: number,
    private readonly sessions: unknown,
    private readonly auth: unknown,
    private readonly source: SnapshotSource,
    private readonly onDone: () => void,
  ) {}

  get done(): boolean {
    return this.result !== undefined;
  }

  /** Called before `key` changes (`before`: its live record now; `deleting`: it is being removed). */
  willChange(key: string, before: KeyRecord | undefined, deleting: boolean): void {
    if (this.result !== undefined || (this.last !== undefined && key <= this.last)) return;
    if (!this.kept.has(key)) this.kept.set(key, before);
    if (deleting && this.kept.get(key) !== undefined && !this.goneSet.has(key)) {
      this.goneSet.add(key);
      this.gone.insert(key);
    }
  }

  step(): Uint8Array | undefined {
    if (this.result !== undefined) return this.result;
    const flat: (string | number)[] = [];
    const live = this.source.keysAfter(this.last);
    const dead = this.gone.from(this.last ?? '');
    let a = live.next();
    let b = dead.next();
    // Goes past deleted keys at or before `last` (from() starts at it, inclusive).
    while (!b.done && this.last !== undefined && b.value <= this.last) b = dead.next();
    let records = 0;
    // Deleted keys the walk passes leave `gone` after the loop (its iterator must not see it change).
    const passed: string[] = [];
    while (records < RECORDS_PER_STEP && (!a.done || !b.done)) {
      let key: string;
      if (b.done || (!a.done && a.value < b.value)) {
        key = a.value as string;
        a = live.next();
      } else {
        key = b.value;
        if (!a.done && a.value === b.value) a = live.next();
        b = dead.next();
      }
      this.last = key;
      const rec = this.kept.has(key) ? this.kept.get(key) : this.source.get(key);
      this.kept.delete(key);
      if (this.goneSet.delete(key)) passed.push(key);
      if (rec === undefined) continue; // created since the start
      flat.push(...recordFields(rec));
      records++;
    }
    for (const key of passed) this.gone.delete(key);
    if (records > 0) {
      this.parts.push(pack(flat).slice(arrayHeader(flat.length).length));
      this.emitted += records;
    }
    if (!a.done || !b.done) return undefined;
    if (this.emitted !== this.keys) {
      throw new Error(`snapshot job: ${this.emitted} records for ${this.keys} keys at index ${this.index}`);
    }
    const pieces = [
      arrayHeader(5),
      pack(this.format),
      pack(this.index),
      arrayHeader(this.keys * 5),
      ...this.parts,
      pack(this.sessions),
      pack(this.auth),
    ];
    const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pieces) {
      out.set(p, at);
      at += p.length;
    }
    this.parts.length = 0;
    this.kept.clear();
    this.result = out;
    this.onDone();
    return out;
  }

  /** Runs every remaining step now (the live state is about to be replaced wholesale). */
  finishNow(): void {
    while (this.step() === undefined) {
      // encode the rest
    }
  }
}
