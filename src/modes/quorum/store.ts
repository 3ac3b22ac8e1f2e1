import { HttpError } from '../../server/http-common.js';

/** One key's state in quorum mode: the value and its per-key version; deletes are kept as tombstones. */
export interface VersionedRecord {
  readonly value: unknown;
  readonly version: number;
  readonly deleted: boolean;
}

/** A replicated record as it travels in `/replicate` and `/data?tombstones=1`. */
export interface WireRecord {
  readonly key: string;
  readonly value?: unknown;
  readonly version: number;
  readonly deleted?: boolean;
}

/**
 * In-memory per-key versioned store. `apply` only ever moves a key forward (higher version wins), so late,
 * duplicated or reordered replication never moves a follower backwards. Tombstones are kept for the
 * process's lifetime so that a delete carries a version too and a re-created key continues its numbering.
 */
export class VersionedStore {
  private readonly map = new Map<string, VersionedRecord>();
  private live = 0;

  get(key: string): VersionedRecord | undefined {
    return this.map.get(key);
  }

  getLive(key: string): VersionedRecord | undefined {
    const r = this.map.get(key);
    return r === undefined || r.deleted ? undefined : r;
  }

  nextVersion(key: string): number {
    return (this.map.get(key)?.version ?? 0) + 1;
  }

  /** Stores `rec` if it is newer than what the key holds; returns whether it did. */
  apply(key: string, rec: VersionedRecord): boolean {
    const cur = this.map.get(key);
    if (cur !== undefined && cur.version >= rec.version) return false;
    if (cur !== undefined && !cur.deleted) this.live--;
    if (!rec.deleted) this.live++;
    this.map.set(key, rec);
    return true;
  }

  get liveCount(): number {
    return this.live;
  }

  get size(): number {
    return this.map.size;
  }

  /** `/data` body: live keys, or every key with tombstones marked `"deleted": true`. */
  dataObject(includeTombstones: boolean): Record<string, { value?: unknown; version: number; deleted?: true }> {
    const out: Record<string, { value?: unknown; version: number; deleted?: true }> = {};
    for (const [k, r] of this.map) {
      if (!r.deleted) out[k] = { value: r.value, version: r.version };
      else if (includeTombstones) out[k] = { version: r.version, deleted: true };
    }
    return out;
  }

  toWire(key: string): WireRecord | undefined {
    const r = this.map.get(key);
    if (r === undefined) return undefined;
    return r.deleted ? { key, version: r.version, deleted: true } : { key, value: r.value, version: r.version };
  }
}

/** Validates one replicated record (a `/replicate` body or one of its `entries`), throwing 400s. */
export function parseWireRecord(x: unknown): WireRecord {
  if (x === null || typeof x !== 'object' || Array.isArray(x))
    throw new HttpError(400, 'Replicate body must be an object');
  const o = x as Record<string, unknown>;
  if (typeof o.key !== 'string' || o.key.length === 0) throw new HttpError(400, 'Replicate body has no key');
  if (typeof o.version !== 'number' || !Number.isSafeInteger(o.version) || o.version < 1) {
    throw new HttpError(400, 'Replicate body needs a positive integer version');
  }
  const deleted = o.deleted === true;
  if (!deleted && o.value === undefined) throw new HttpError(400, 'Replicate body has no value');
  return deleted ? { key: o.key, version: o.version, deleted } : { key: o.key, value: o.value, version: o.version };
}

export function recordOf(w: WireRecord): VersionedRecord {
  return { value: w.deleted ? null : w.value, version: w.version, deleted: w.deleted === true };
}
