/**
 * Convergence checker for the replicated modes (eventual, and quorum followers): reads every replica's full
 * state through `GET /data?tombstones=1`, compares them key by key, waits until they are identical, and
 * checks that no acknowledged write was lost unless a later write to the same key replaced it.
 */
import { getJson } from '../modes/common/peer-client.js';

/** One replica's state: key → canonical JSON of its record (value plus version/timestamp, tombstones too). */
export interface ReplicaSnapshot {
  readonly url: string;
  readonly nodeId: string;
  readonly records: ReadonlyMap<string, string>;
}

export interface Divergence {
  readonly key: string;
  /** url → canonical record, or null when that replica does not hold the key. */
  readonly byReplica: Readonly<Record<string, string | null>>;
}

export interface ConvergenceReport {
  readonly converged: boolean;
  /** Time from the call until the replicas were first seen identical (or until giving up). */
  readonly elapsedMs: number;
  readonly polls: number;
  /** The divergences of the last comparison (empty when converged). */
  readonly divergences: readonly Divergence[];
  readonly snapshots: readonly ReplicaSnapshot[];
}

/** JSON with object keys sorted, so equal records compare equal as strings. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export async function fetchSnapshot(url: string, timeoutMs = 3000): Promise<ReplicaSnapshot> {
  const res = await getJson<{ data?: Record<string, unknown>; node_id?: string }>(
    `${url}/data?tombstones=1`,
    timeoutMs,
  );
  if (res.status !== 200 || res.body?.data === undefined) throw new Error(`${url}/data answered ${res.status}`);
  const records = new Map<string, string>();
  for (const [k, r] of Object.entries(res.body.data)) records.set(k, canonicalJson(r));
  return { url, nodeId: String(res.body.node_id ?? url), records };
}

/** Every key on which the snapshots do not all agree. */
export function compareSnapshots(snapshots: readonly ReplicaSnapshot[]): Divergence[] {
  const keys = new Set<string>();
  for (const s of snapshots) for (const k of s.records.keys()) keys.add(k);
  const out: Divergence[] = [];
  for (const key of [...keys].sort()) {
    const byReplica: Record<string, string | null> = {};
    let first: string | null | undefined;
    let differs = false;
    for (const s of snapshots) {
      const r = s.records.get(key) ?? null;
      byReplica[s.url] = r;
      if (first === undefined) first = r;
      else if (r !== first) differs = true;
    }
    if (differs) out.push({ key, byReplica });
  }
  return out;
}

/** Polls all replicas until their states are identical or `timeoutMs` passes. */
export async function waitForConvergence(
  urls: readonly string[],
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<ConvergenceReport> {
  const start = Date.now();
  const interval = opts.intervalMs ?? 50;
  let polls = 0;
  let divergences: Divergence[] = [];
  let snapshots: ReplicaSnapshot[] = [];
  while (true) {
    polls++;
    try {
      snapshots = await Promise.all(urls.map((u) => fetchSnapshot(u)));
      divergences = compareSnapshots(snapshots);
      if (divergences.length === 0) {
        return { converged: true, elapsedMs: Date.now() - start, polls, divergences, snapshots };
      }
    } catch {
      // a replica is not serving yet: poll again
    }
    if (Date.now() - start >= opts.timeoutMs) {
      return { converged: false, elapsedMs: Date.now() - start, polls, divergences, snapshots };
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** An acknowledged write as a client saw it. `order` places it among the writes to its key. */
export interface AckedWrite<O> {
  readonly key: string;
  readonly value: unknown;
  readonly deleted: boolean;
  readonly order: O;
}

/** A record of the final state, as the checker needs it. */
export interface FinalRecord<O> {
  readonly value: unknown;
  readonly deleted: boolean;
  readonly order: O;
}

export interface LostWrite<O> {
  readonly key: string;
  /** The acknowledged write that should have survived (the latest one to its key). */
  readonly expected: AckedWrite<O>;
  readonly found: FinalRecord<O> | undefined;
}

/**
 * For each key, the last acknowledged write (by `compare` on `order`) must be what the final state holds:
 * same value, or a tombstone / absence for a delete — unless the final state holds a write ordered after it
 * (one the client did not see acknowledged, e.g. a timed-out request that was applied). Anything else means
 * an acknowledged write was lost without a later write replacing it.
 */
export function findLostWrites<O>(
  acked: readonly AckedWrite<O>[],
  final: ReadonlyMap<string, FinalRecord<O>>,
  compare: (a: O, b: O) => number,
): LostWrite<O>[] {
  const latest = new Map<string, AckedWrite<O>>();
  for (const w of acked) {
    const cur = latest.get(w.key);
    if (cur === undefined || compare(cur.order, w.order) < 0) latest.set(w.key, w);
  }
  const lost: LostWrite<O>[] = [];
  for (const [key, w] of latest) {
    const f = final.get(key);
    if (f === undefined) {
      if (!w.deleted) lost.push({ key, expected: w, found: f });
      continue;
    }
    const c = compare(f.order, w.order);
    if (c > 0) continue;
    const same = c === 0 && f.deleted === w.deleted && (w.deleted || canonicalJson(f.value) === canonicalJson(w.value));
    if (!same) lost.push({ key, expected: w, found: f });
  }
  return lost;
}
