import { createHash } from 'node:crypto';
import { HttpError } from '../../server/http-common.js';
import { compareHlc, formatHlc, parseHlc, type Hlc } from './hlc.js';

/** One key in eventual mode: the last writer's value and timestamp; a delete is a tombstone. */
export interface LwwRecord {
  readonly value: unknown;
  readonly ts: Hlc;
  readonly deleted: boolean;
}

/** A record on the wire (`/replicate`, `/sync/keys`, `/data?tombstones=1`). */
export interface WireEntry {
  readonly key: string;
  readonly value?: unknown;
  readonly ts: Hlc;
  readonly deleted?: boolean;
}

export function toWire(key: string, r: LwwRecord): WireEntry {
  return r.deleted ? { key, ts: r.ts, deleted: true } : { key, value: r.value, ts: r.ts };
}

export function parseWireEntry(x: unknown): WireEntry {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new HttpError(400, 'Entry must be an object');
  const o = x as Record<string, unknown>;
  if (typeof o.key !== 'string' || o.key.length === 0) throw new HttpError(400, 'Entry has no key');
  const ts = parseHlc(o.ts);
  if (ts === undefined) throw new HttpError(400, 'Entry has no valid timestamp');
  const deleted = o.deleted === true;
  if (!deleted && o.value === undefined) throw new HttpError(400, 'Entry has no value');
  return deleted ? { key: o.key, ts, deleted } : { key: o.key, value: o.value, ts };
}

/** FNV-1a over the key's UTF-16 code units: picks the key's digest bucket. */
function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Last-writer-wins store with an incrementally maintained digest: keys are spread over `buckets` buckets by
 * key hash, and each bucket's hash is the XOR of a 64-bit hash of every (key, timestamp, deleted) it holds.
 * Two replicas hold the same records in a bucket exactly when (barring a 2^-64 collision) the bucket hashes
 * match, so anti-entropy only looks inside buckets whose hashes differ. Values need not be hashed: a
 * timestamp names one write, hence one value.
 */
export class LwwStore {
  private readonly map = new Map<string, LwwRecord>();
  private readonly tombstones = new Set<string>();
  private readonly hashes: Uint32Array;
  private readonly bucketKeys: Set<string>[];

  constructor(readonly buckets = 256) {
    if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError('buckets must be a positive integer');
    this.hashes = new Uint32Array(buckets * 2);
    this.bucketKeys = Array.from({ length: buckets }, () => new Set<string>());
  }

  bucketOf(key: string): number {
    return keyHash(key) % this.buckets;
  }

  get(key: string): LwwRecord | undefined {
    return this.map.get(key);
  }

  getLive(key: string): LwwRecord | undefined {
    const r = this.map.get(key);
    return r === undefined || r.deleted ? undefined : r;
  }

  get size(): number {
    return this.map.size;
  }

  get liveCount(): number {
    return this.map.size - this.tombstones.size;
  }

  /** Keeps `rec` if its timestamp is newer than the key's current one; returns whether it did. */
  merge(key: string, rec: LwwRecord): boolean {
    const cur = this.map.get(key);
    if (cur !== undefined && compareHlc(cur.ts, rec.ts) >= 0) return false;
    const b = this.bucketOf(key);
    if (cur !== undefined) this.xorInto(b, key, cur);
    this.xorInto(b, key, rec);
    this.map.set(key, rec);
    this.bucketKeys[b].add(key);
    if (rec.deleted) this.tombstones.add(key);
    else this.tombstones.delete(key);
    return true;
  }

  /** Drops tombstones written before `wallBefore` (ms); returns how many. */
  purgeTombstones(wallBefore: number): number {
    let n = 0;
    for (const key of this.tombstones) {
      const r = this.map.get(key);
      if (r === undefined || r.ts.wall >= wallBefore) continue;
      const b = this.bucketOf(key);
      this.xorInto(b, key, r);
      this.map.delete(key);
      this.bucketKeys[b].delete(key);
      this.tombstones.delete(key);
      n++;
    }
    return n;
  }

  /** One hex string per bucket. */
  digest(): string[] {
    const out: string[] = new Array<string>(this.buckets);
    for (let b = 0; b < this.buckets; b++) {
      out[b] = this.hashes[2 * b].toString(16).padStart(8, '0') + this.hashes[2 * b + 1].toString(16).padStart(8, '0');
    }
    return out;
  }

  /** Indices where `other` (a peer's digest) differs from ours. */
  differingBuckets(other: readonly string[]): number[] {
    if (other.length !== this.buckets) throw new HttpError(400, `Digest must have ${this.buckets} buckets`);
    const mine = this.digest();
    const out: number[] = [];
    for (let b = 0; b < this.buckets; b++) if (mine[b] !== other[b]) out.push(b);
    return out;
  }

  /** (key, timestamp) of every record in the given buckets — what a peer needs to tell which side is newer. */
  summary(buckets: readonly number[]): [string, Hlc][] {
    const out: [string, Hlc][] = [];
    for (const b of buckets) {
      for (const key of this.bucketKeys[b] ?? []) {
        const r = this.map.get(key);
        if (r !== undefined) out.push([key, r.ts]);
      }
    }
    return out;
  }

  *entries(includeTombstones: boolean): Iterable<[string, LwwRecord]> {
    for (const [k, r] of this.map) if (includeTombstones || !r.deleted) yield [k, r];
  }

  private xorInto(bucket: number, key: string, r: LwwRecord): void {
    const h = createHash('sha1')
      .update(`${key}\u0000${formatHlc(r.ts)}\u0000${r.deleted ? 1 : 0}`)
      .digest();
    this.hashes[2 * bucket] ^= h.readUInt32BE(0);
    this.hashes[2 * bucket + 1] ^= h.readUInt32BE(4);
  }
}
