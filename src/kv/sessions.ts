/**
 * Client sessions for exactly-once writes. Everything is bounded and evicted by log order, never by time,
 * so every replica evicts the same things at the same index.
 *
 * Bounds (all configurable, and all replicas must use the same values):
 * - per client, the results of its `maxSeqsPerClient` (default 1,000) most recently applied sequence
 *   numbers; an evicted seq raises the client's "floor" (the highest evicted seq);
 * - the `maxClients` (default 10,000) most recently active clients (activity = log index of their last
 *   request, duplicates included); an evicted client keeps only a floor (its highest seq seen) in a
 *   "retired" table of `maxRetiredClients` (default 100,000) entries, oldest retirement evicted first.
 *
 * A request whose seq is remembered returns the stored first result. A request whose seq is at or below
 * the floor (and not remembered) gets `expired-session`: it may have been applied, so it is not applied
 * again. A seq above the floor is new. The only residual risk is a client that stays silent while more
 * than maxClients + maxRetiredClients other clients become active, then retries an old request.
 */
import type { RequestId } from './commands.js';
import type { ApplyResult } from './results.js';

export interface SessionLimits {
  readonly maxSeqsPerClient: number;
  readonly maxClients: number;
  readonly maxRetiredClients: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxSeqsPerClient: 1000,
  maxClients: 10_000,
  maxRetiredClients: 100_000,
};

interface Session {
  lastActive: number;
  /** Highest seq whose result was forgotten; -1 for none. */
  floor: number;
  maxSeq: number;
  /** seq → first result, in order of application. */
  readonly results: Map<number, ApplyResult>;
}

export type SessionLookup =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly result: ApplyResult }
  | { readonly kind: 'expired' };

/** Serialised form: plain arrays of strings and numbers (results as JSON text), in a deterministic order. */
export type SessionSnapshot = [
  sessions: [client: string, lastActive: number, floor: number, maxSeq: number, seqs: number[], results: string[]][],
  retired: [client: string, floor: number][],
];

export class SessionTable {
  /** Ordered by `lastActive`, oldest first (an active session is moved to the end). */
  private sessions = new Map<string, Session>();
  /** client → floor, oldest retirement first. */
  private retired = new Map<string, number>();

  constructor(readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS) {}

  get clientCount(): number {
    return this.sessions.size;
  }

  get retiredCount(): number {
    return this.retired.size;
  }

  /** Classifies a request; a duplicate also counts as activity at `index`. */
  lookup(id: RequestId, index: number): SessionLookup {
    const s = this.sessions.get(id.client);
    if (s !== undefined) {
      const r = s.results.get(id.seq);
      if (r !== undefined) {
        this.touch(id.client, s, index);
        return { kind: 'duplicate', result: r };
      }
      return id.seq <= s.floor ? { kind: 'expired' } : { kind: 'new' };
    }
    const floor = this.retired.get(id.client);
    return floor !== undefined && id.seq <= floor ? { kind: 'expired' } : { kind: 'new' };
  }

  /** Remembers the first result of a new request applied at `index`. */
  record(id: RequestId, index: number, result: ApplyResult): void {
    let s = this.sessions.get(id.client);
    if (s === undefined) {
      const floor = this.retired.get(id.client) ?? -1;
      this.retired.delete(id.client);
      s = { lastActive: index, floor, maxSeq: floor, results: new Map() };
    }
    this.touch(id.client, s, index);
    s.results.set(id.seq, result);
    if (id.seq > s.maxSeq) s.maxSeq = id.seq;
    if (s.results.size > this.limits.maxSeqsPerClient) {
      const oldest = s.results.keys().next().value as number;
      s.results.delete(oldest);
      if (oldest > s.floor) s.floor = oldest;
    }
    if (this.sessions.size > this.limits.maxClients) {
      const [client, old] = this.sessions.entries().next().value as [string, Session];
      this.sessions.delete(client);
      this.retired.set(client, Math.max(old.floor, old.maxSeq));
      if (this.retired.size > this.limits.maxRetiredClients) {
        this.retired.delete(this.retired.keys().next().value as string);
      }
    }
  }

  private touch(client: string, s: Session, index: number): void {
    s.lastActive = index;
    this.sessions.delete(client);
    this.sessions.set(client, s);
  }

  snapshot(): SessionSnapshot {
    const sessions: SessionSnapshot[0] = [];
    for (const [client, s] of this.sessions) {
      const seqs: number[] = [];
      const results: string[] = [];
      for (const [seq, r] of s.results) {
        seqs.push(seq);
        results.push(JSON.stringify(r));
      }
      sessions.push([client, s.lastActive, s.floor, s.maxSeq, seqs, results]);
    }
    return [sessions, [...this.retired.entries()]];
  }

  /** Replaces the table with a snapshot's content (validated by the caller's decoder). */
  restore(snap: SessionSnapshot): void {
    this.sessions = new Map();
    this.retired = new Map();
    for (const [client, lastActive, floor, maxSeq, seqs, results] of snap[0]) {
      const map = new Map<number, ApplyResult>();
      seqs.forEach((seq, i) => map.set(seq, JSON.parse(results[i] as string) as ApplyResult));
      this.sessions.set(client, { lastActive, floor, maxSeq, results: map });
    }
    for (const [client, floor] of snap[1]) this.retired.set(client, floor);
  }
}
