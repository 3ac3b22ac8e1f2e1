import type { Dispatcher } from 'undici';
import type { SignHeaders } from '../../net/peer-auth.js';
import { SimulatedDelay } from '../common/delay.js';
import { PeerError, postJson } from '../common/peer-client.js';
import type { ModeMetrics } from '../common/metrics.js';
import type { VersionedRecord, VersionedStore, WireRecord } from './store.js';

export interface ReplicationOptions {
  /** Followers that must acknowledge before a write succeeds (1..N). */
  readonly writeQuorum: number;
  readonly delay: SimulatedDelay;
  /** Bound on the wait for W acknowledgements; then the write answers 503. */
  readonly writeTimeoutMs: number;
  /** Bound on one replication request to one follower. */
  readonly replicateTimeoutMs: number;
  /** How often keys a follower missed are re-sent to it. */
  readonly repairIntervalMs: number;
  /** True while the leader itself is marked failed: it then sends nothing. */
  readonly isFailed: () => boolean;
  /** Signs each replication request with the cluster secret (peer credentials). */
  readonly sign?: SignHeaders;
  /** The leader's TLS agent for https followers (see ../common/peer-tls.ts). */
  readonly dispatcher?: Dispatcher;
}

export interface WriteOutcome {
  readonly ok: boolean;
  readonly version: number;
  readonly acks: number;
  readonly required: number;
}

const REPAIR_BATCH = 500;

/**
 * The leader's view of one follower: sends it replication messages, remembers the keys whose latest
 * replication it missed (down, failed, timed out), and re-sends the leader's current record of those keys
 * in the background until the follower has them.
 */
export class FollowerLink {
  state: 'unknown' | 'up' | 'down' = 'unknown';
  lastError = '';
  acked = 0;
  failedSends = 0;
  private readonly missed = new Map<string, number>();
  private repairTimer: NodeJS.Timeout | undefined;
  private repairing = false;
  private closed = false;

  constructor(
    readonly url: string,
    private readonly store: VersionedStore,
    private readonly opts: ReplicationOptions,
    private readonly metrics: ModeMetrics,
  ) {}

  get missedKeys(): number {
    return this.missed.size;
  }

  /** Replicates one record after the simulated one-way delay; resolves true if the follower acknowledged. */
  async send(rec: WireRecord): Promise<boolean> {
    await this.opts.delay.wait();
    if (this.closed || this.opts.isFailed()) {
      this.markMissed(rec.key, rec.version);
      return false;
    }
    try {
      const res = await postJson(
        `${this.url}/replicate`,
        rec,
        this.opts.replicateTimeoutMs,
        this.opts.sign,
        this.opts.dispatcher,
      );
      if (res.status !== 200) throw new PeerError(this.url, `status ${res.status}`);
      this.markUp();
      this.acked++;
      const m = this.missed.get(rec.key);
      if (m !== undefined && m <= rec.version) this.missed.delete(rec.key);
      this.metrics.replication.inc({ outcome: 'ack' });
      return true;
    } catch (err) {
      this.markDown(err);
      this.failedSends++;
      this.markMissed(rec.key, rec.version);
      this.metrics.replication.inc({ outcome: 'failed' });
      return false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.repairTimer !== undefined) clearTimeout(this.repairTimer);
    this.repairTimer = undefined;
  }

  private markUp(): void {
    this.state = 'up';
    this.lastError = '';
  }

  private markDown(err: unknown): void {
    this.state = 'down';
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  private markMissed(key: string, version: number): void {
    const m = this.missed.get(key);
    if (m === undefined || m < version) this.missed.set(key, version);
    this.scheduleRepair();
  }

  private scheduleRepair(): void {
    if (this.closed || this.repairTimer !== undefined || this.repairing) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      void this.repair();
    }, this.opts.repairIntervalMs);
    this.repairTimer.unref();
  }

  /** Re-sends the leader's current record of every missed key, in batches. */
  private async repair(): Promise<void> {
    if (this.closed) return;
    if (this.opts.isFailed()) return this.scheduleRepair();
    this.repairing = true;
    try {
      while (this.missed.size > 0 && !this.closed && !this.opts.isFailed()) {
        const batch: WireRecord[] = [];
        for (const key of this.missed.keys()) {
          const w = this.store.toWire(key);
          if (w !== undefined) batch.push(w);
          else this.missed.delete(key);
          if (batch.length >= REPAIR_BATCH) break;
        }
        if (batch.length === 0) break;
        const res = await postJson(
          `${this.url}/replicate`,
          { entries: batch },
          this.opts.replicateTimeoutMs * 2,
          this.opts.sign,
          this.opts.dispatcher,
        );
        if (res.status !== 200) throw new PeerError(this.url, `status ${res.status}`);
        this.markUp();
        this.metrics.replication.inc({ outcome: 'repair' });
        for (const w of batch) {
          const m = this.missed.get(w.key);
          if (m !== undefined && m <= w.version) this.missed.delete(w.key);
        }
      }
    } catch (err) {
      this.markDown(err);
    } finally {
      this.repairing = false;
    }
    if (this.missed.size > 0) this.scheduleRepair();
  }
}

/** Semi-synchronous replication: apply locally, send to every follower, answer after W acknowledgements. */
export class QuorumReplicator {
  readonly links: FollowerLink[];

  constructor(
    followerUrls: readonly string[],
    private readonly store: VersionedStore,
    private readonly opts: ReplicationOptions,
    metrics: ModeMetrics,
  ) {
    this.links = followerUrls.map((u) => new FollowerLink(u, store, opts, metrics));
  }

  /**
   * Writes `key` locally with the next version, replicates it to all followers concurrently and resolves
   * once W of them acknowledged (ok), or — not ok — once every follower answered or failed without W acks, or
   * the write timeout passed (so a 503 reports every ack that arrived in time).
   * Replication to the remaining followers continues in the background either way, and the write is not
   * undone on the leader when the quorum is missed.
   */
  write(key: string, value: unknown, deleted: boolean): Promise<WriteOutcome> {
    const version = this.store.nextVersion(key);
    const rec: VersionedRecord = { value: deleted ? null : value, version, deleted };
    this.store.apply(key, rec);
    const wire: WireRecord = deleted ? { key, version, deleted: true } : { key, value, version };
    const required = this.opts.writeQuorum;
    const n = this.links.length;
    return new Promise<WriteOutcome>((resolve) => {
      let acks = 0;
      let settled = 0;
      let done = false;
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ ok, version, acks, required });
      };
      const timer = setTimeout(() => finish(acks >= required), this.opts.writeTimeoutMs);
      for (const link of this.links) {
        void link.send(wire).then((ok) => {
          settled++;
          if (ok) acks++;
          if (acks >= required) finish(true);
          else if (settled === n) finish(false);
        });
      }
      if (n < required) finish(false);
    });
  }

  close(): void {
    for (const l of this.links) l.close();
  }
}
