import type { Dispatcher } from 'undici';
import type { SignHeaders } from '../../net/peer-auth.js';
import { HttpError } from '../../server/http-common.js';
import { SimulatedDelay } from '../common/delay.js';
import type { ModeMetrics } from '../common/metrics.js';
import { PeerError, postJson } from '../common/peer-client.js';
import { HybridClock, compareHlc, parseHlc, type Hlc } from './hlc.js';
import { LwwStore, parseWireEntry, toWire, type LwwRecord, type WireEntry } from './store.js';

export interface ReplicaOptions {
  readonly nodeId: string;
  readonly peers: readonly string[];
  readonly buckets: number;
  /** Optional simulated one-way delay before each asynchronous push (default none). */
  readonly delay: SimulatedDelay;
  readonly peerTimeoutMs: number;
  /** Tombstones older than this are dropped (a replica away longer than this may resurrect a deleted key). */
  readonly tombstoneTtlMs: number;
  /** Most entries per push or summary message. */
  readonly batchSize: number;
  /** True while this node is marked failed: it then sends nothing. */
  readonly isFailed: () => boolean;
  /** Signs each request to a peer with the cluster secret (peer credentials). */
  readonly sign?: SignHeaders;
  /** The node's TLS agent for https peers (see ../common/peer-tls.ts). */
  readonly dispatcher?: Dispatcher;
}

export interface RoundResult {
  readonly peer: string;
  readonly differing: number;
  readonly pulled: number;
  readonly pushed: number;
}

/** Peer state as /status shows it. */
export interface PeerInfo {
  state: 'unknown' | 'up' | 'down';
  lastError: string;
  pushed: number;
  lastRound: RoundResult | undefined;
}

/**
 * One eventual-mode replica: the LWW store and its hybrid clock, the asynchronous push of local writes to
 * every peer, and the anti-entropy protocol (both the side that starts a round and the side that answers).
 *
 * Anti-entropy round, started by A against B:
 *  1. A → B `POST /sync/digest {buckets:[hash...]}`; B answers the indices of buckets that differ.
 *  2. A → B `POST /sync/keys {buckets:[i...], summary:[[key, ts]...]}` (A's keys and timestamps in those
 *     buckets, no values); B answers `entries` (its records that are newer than A's or unknown to A) and
 *     `want` (keys where A is newer or B has nothing).
 *  3. A merges `entries` and → B `POST /replicate {entries}` with its records for `want`.
 * Only differing buckets are summarised and only differing records carry values.
 */
export class Replica {
  readonly store: LwwStore;
  readonly clock: HybridClock;
  readonly peerInfo = new Map<string, PeerInfo>();
  private readonly pending = new Map<string, Set<string>>();
  private readonly flushing = new Set<string>();
  private closed = false;

  constructor(
    private readonly opts: ReplicaOptions,
    private readonly metrics: ModeMetrics,
  ) {
    this.store = new LwwStore(opts.buckets);
    this.clock = new HybridClock(opts.nodeId);
    for (const p of opts.peers) {
      this.pending.set(p, new Set());
      this.peerInfo.set(p, { state: 'unknown', lastError: '', pushed: 0, lastRound: undefined });
    }
  }

  get peers(): readonly string[] {
    return this.opts.peers;
  }

  /** A client write (value, or a delete when `deleted`): stamped, applied, acknowledged, pushed later. */
  write(key: string, value: unknown, deleted: boolean): { ts: Hlc; existed: boolean } {
    const existed = this.store.getLive(key) !== undefined;
    const ts = this.clock.tick();
    this.store.merge(key, { value: deleted ? null : value, ts, deleted });
    for (const peer of this.opts.peers) {
      this.pending.get(peer)?.add(key);
      void this.flush(peer);
    }
    return { ts, existed };
  }

  /** Merges records from a peer; returns how many were newer. */
  mergeEntries(entries: readonly WireEntry[]): number {
    let applied = 0;
    const expiredBefore = Date.now() - this.opts.tombstoneTtlMs;
    for (const e of entries) {
      this.clock.observe(e.ts);
      // An expired tombstone for a key we do not hold would only be purged again: skip it.
      if (e.deleted && e.ts.wall < expiredBefore && this.store.get(e.key) === undefined) continue;
      const rec: LwwRecord = { value: e.deleted ? null : e.value, ts: e.ts, deleted: e.deleted === true };
      if (this.store.merge(e.key, rec)) applied++;
    }
    return applied;
  }

  purgeTombstones(): number {
    return this.store.purgeTombstones(Date.now() - this.opts.tombstoneTtlMs);
  }

  // ---- the answering side of anti-entropy ----

  answerDigest(body: unknown): { differing: number[] } {
    const buckets = (body as { buckets?: unknown } | null)?.buckets;
    if (!Array.isArray(buckets) || !buckets.every((h) => typeof h === 'string')) {
      throw new HttpError(400, 'Digest body needs "buckets": an array of hashes');
    }
    return { differing: this.store.differingBuckets(buckets as string[]) };
  }

  answerKeys(body: unknown): { entries: WireEntry[]; want: string[] } {
    const b = body as { buckets?: unknown; summary?: unknown } | null;
    if (!Array.isArray(b?.buckets) || !Array.isArray(b?.summary)) {
      throw new HttpError(400, 'Keys body needs "buckets" and "summary" arrays');
    }
    const buckets = b.buckets.filter((x): x is number => Number.isInteger(x) && x >= 0 && x < this.store.buckets);
    const theirs = new Map<string, Hlc>();
    for (const item of b.summary) {
      if (!Array.isArray(item) || typeof item[0] !== 'string') throw new HttpError(400, 'Bad summary item');
      const ts = parseHlc(item[1]);
      if (ts === undefined) throw new HttpError(400, 'Bad summary timestamp');
      theirs.set(item[0], ts);
    }
    const entries: WireEntry[] = [];
    const want: string[] = [];
    const mine = new Set<string>();
    for (const [key, ts] of this.store.summary(buckets)) {
      mine.add(key);
      const t = theirs.get(key);
      const cmp = t === undefined ? 1 : compareHlc(ts, t);
      if (cmp > 0) {
        const r = this.store.get(key);
        if (r !== undefined) entries.push(toWire(key, r));
      } else if (cmp < 0) want.push(key);
    }
    for (const key of theirs.keys()) if (!mine.has(key)) want.push(key);
    return { entries, want };
  }

  // ---- the starting side of anti-entropy ----

  /** One anti-entropy round with `peer` (see the class comment). Throws PeerError if the peer is unreachable. */
  async antiEntropy(peer: string): Promise<RoundResult> {
    const t = this.opts.peerTimeoutMs;
    const d = await this.call<{ differing?: number[] }>(peer, '/sync/digest', { buckets: this.store.digest() }, t);
    const differing = Array.isArray(d.differing) ? d.differing : [];
    let pulled = 0;
    let pushed = 0;
    // Summaries go in groups of buckets holding at most about batchSize keys.
    let i = 0;
    while (i < differing.length) {
      const group: number[] = [];
      let size = 0;
      while (i < differing.length && (group.length === 0 || size < this.opts.batchSize)) {
        size += this.store.summary([differing[i]]).length;
        group.push(differing[i++]);
      }
      const summary = this.store.summary(group);
      const k = await this.call<{ entries?: unknown[]; want?: unknown[] }>(
        peer,
        '/sync/keys',
        { buckets: group, summary },
        t * 4,
      );
      pulled += this.mergeEntries((k.entries ?? []).map(parseWireEntry));
      const want = (k.want ?? []).filter((x): x is string => typeof x === 'string');
      const out: WireEntry[] = [];
      for (const key of want) {
        const r = this.store.get(key);
        if (r !== undefined) out.push(toWire(key, r));
      }
      for (let j = 0; j < out.length; j += this.opts.batchSize) {
        await this.call(peer, '/replicate', { entries: out.slice(j, j + this.opts.batchSize) }, t * 4);
      }
      pushed += out.length;
    }
    const result = { peer, differing: differing.length, pulled, pushed };
    const info = this.peerInfo.get(peer);
    if (info) info.lastRound = result;
    return result;
  }

  close(): void {
    this.closed = true;
  }

  /** Sends the pending keys of one peer, one request in flight per peer; failures are left to anti-entropy. */
  private async flush(peer: string): Promise<void> {
    if (this.flushing.has(peer)) return;
    this.flushing.add(peer);
    try {
      const keys = this.pending.get(peer);
      while (keys !== undefined && keys.size > 0 && !this.closed) {
        await this.opts.delay.wait();
        if (this.opts.isFailed()) {
          keys.clear();
          break;
        }
        const batch: WireEntry[] = [];
        for (const key of keys) {
          keys.delete(key);
          const r = this.store.get(key);
          if (r !== undefined) batch.push(toWire(key, r));
          if (batch.length >= this.opts.batchSize) break;
        }
        try {
          await this.call(peer, '/replicate', { entries: batch }, this.opts.peerTimeoutMs);
          this.metrics.replication.inc({ outcome: 'ack' });
          const info = this.peerInfo.get(peer);
          if (info) info.pushed += batch.length;
        } catch {
          // The peer is down or failed: drop what was pending, anti-entropy repairs it later.
          this.metrics.replication.inc({ outcome: 'failed' });
          keys.clear();
        }
      }
    } finally {
      this.flushing.delete(peer);
    }
  }

  private async call<T>(peer: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    const info = this.peerInfo.get(peer);
    try {
      const res = await postJson<T>(`${peer}${path}`, body, timeoutMs, this.opts.sign, this.opts.dispatcher);
      if (res.status !== 200) {
        const err = (res.body as { error?: unknown } | undefined)?.error;
        throw new PeerError(`${peer}${path}`, `status ${res.status}${typeof err === 'string' ? `: ${err}` : ''}`);
      }
      if (info) {
        info.state = 'up';
        info.lastError = '';
      }
      return res.body;
    } catch (err) {
      if (info) {
        info.state = 'down';
        info.lastError = err instanceof Error ? err.message : String(err);
      }
      throw err;
    }
  }
}
