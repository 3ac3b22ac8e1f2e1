/**
 * A causal-consistency checker over recorded client histories.
 *
 * Input: every client session's operations, in the order each client issued them. Written values must be
 * unique (a read's value then names the write it saw); a delete carries a unique id in `value`; a read carries
 * the value it returned, or null for "Key does not exist".
 *
 * Causality is the transitive closure of session order (each client's operations in order) and reads-from
 * (a write precedes every read that returned it). Each operation gets a vector of per-client positions: the
 * last operation of every session in its causal past, so "a precedes b" is one comparison.
 *
 * A read r of key k that returned write w is wrong when r's causal past holds another write w' to k with
 * w -> w' — r shows a state older than something it already depends on. Classified by how w' got into r's past:
 * - read-your-writes: w' is the reader's own earlier write;
 * - monotonic-reads: an earlier read of the same client returned w';
 * - writes-follow-reads: w' arrived through other clients' writes and reads ("an effect visible without its
 *   cause"; this also covers monotonic writes seen by a third party).
 * A read that returned "not found" is wrong when its past holds a put w' to k that every delete of k precedes
 * (no delete could explain the absence). Reads of values never written to that key are `unknown-value`;
 * a read that depends on its own effect (e.g. returns a value its client writes later) is a `causal-cycle`.
 *
 * An operation whose outcome is unknown (a timeout) is marked `indeterminate`; only writes may be, and only as
 * the last operation of their session (a client that times out starts a new session): the write counts as
 * possibly applied but nothing of its client follows it.
 *
 * Known limit: a "not found" read does not say which delete it saw, so it adds no reads-from edge.
 */

export type CausalOpType = 'put' | 'get' | 'delete';

export interface CausalOp {
  readonly client: string;
  readonly type: CausalOpType;
  readonly key: string;
  /** put: the unique value written; delete: a unique id; get: the value returned, null for not found. */
  readonly value: string | null;
  /** A write whose outcome is unknown (timeout); must be the last operation of its client. */
  readonly indeterminate?: boolean;
}

export type CausalViolationKind =
  'read-your-writes' | 'monotonic-reads' | 'writes-follow-reads' | 'unknown-value' | 'causal-cycle';

export interface CausalViolation {
  readonly kind: CausalViolationKind;
  readonly client: string;
  /** Position of the offending read in its client's session. */
  readonly index: number;
  readonly key: string;
  /** What the read returned. */
  readonly read: string | null;
  readonly detail: string;
}

export interface CausalReport {
  readonly ops: number;
  readonly reads: number;
  readonly writes: number;
  readonly violations: CausalViolation[];
  readonly counts: Record<CausalViolationKind, number>;
}

interface Node {
  readonly op: CausalOp;
  readonly c: number;
  readonly idx: number;
  /** For a get: the write it read from (undefined for not found or unknown). */
  from?: Node;
  vc?: Int32Array;
}

/** Checks a history; throws on a malformed one (duplicate written values, misplaced indeterminate ops). */
export function checkCausal(history: readonly CausalOp[]): CausalReport {
  const clientIds = new Map<string, number>();
  const sessions: Node[][] = [];
  for (const op of history) {
    let c = clientIds.get(op.client);
    if (c === undefined) {
      c = sessions.length;
      clientIds.set(op.client, c);
      sessions.push([]);
    }
    const s = sessions[c]!;
    if (s.length > 0 && s[s.length - 1]!.op.indeterminate === true) {
      throw new Error(`client ${op.client}: an indeterminate operation must be its session's last`);
    }
    if (op.indeterminate === true && op.type === 'get') throw new Error('only writes may be indeterminate');
    s.push({ op, c, idx: s.length });
  }
  const C = sessions.length;
  const violations: CausalViolation[] = [];
  const report = (kind: CausalViolationKind, r: Node, detail: string): void => {
    violations.push({ kind, client: r.op.client, index: r.idx, key: r.op.key, read: r.op.value, detail });
  };

  // Writes by value (puts) and id (deletes); per key, per client, the positions of writes in session order.
  const puts = new Map<string, Node>();
  const deletesByKey = new Map<string, Node[]>();
  const writesByKeyClient = new Map<string, Node[][]>();
  let reads = 0;
  let writes = 0;
  for (const s of sessions) {
    for (const n of s) {
      if (n.op.type === 'get') {
        reads++;
        continue;
      }
      writes++;
      if (n.op.value === null) throw new Error(`client ${n.op.client}: a ${n.op.type} needs a unique value or id`);
      if (n.op.type === 'put') {
        if (puts.has(n.op.value)) throw new Error(`written value ${n.op.value} is not unique`);
        puts.set(n.op.value, n);
      } else {
        const ds = deletesByKey.get(n.op.key) ?? [];
        ds.push(n);
        deletesByKey.set(n.op.key, ds);
      }
      let perClient = writesByKeyClient.get(n.op.key);
      if (perClient === undefined) {
        perClient = Array.from({ length: C }, () => []);
        writesByKeyClient.set(n.op.key, perClient);
      }
      perClient[n.c]!.push(n);
    }
  }
  for (const s of sessions) {
    for (const n of s) {
      if (n.op.type !== 'get' || n.op.value === null) continue;
      const w = puts.get(n.op.value);
      if (w === undefined) report('unknown-value', n, `no write of value ${n.op.value}`);
      else if (w.op.key !== n.op.key) report('unknown-value', n, `value ${n.op.value} was written to key ${w.op.key}`);
      else n.from = w;
    }
  }

  // Causal vectors, session by session in dependency order; a read that closes a cycle loses its edge.
  const next = new Array<number>(C).fill(0);
  let remaining = history.length;
  while (remaining > 0) {
    let progress = false;
    for (let c = 0; c < C; c++) {
      const s = sessions[c]!;
      while (next[c]! < s.length) {
        const n = s[next[c]!]!;
        if (n.from !== undefined && n.from.vc === undefined) break;
        const vc = n.idx > 0 ? Int32Array.from(s[n.idx - 1]!.vc!) : new Int32Array(C).fill(-1);
        if (n.from !== undefined) {
          const f = n.from.vc!;
          for (let i = 0; i < C; i++) if (f[i]! > vc[i]!) vc[i] = f[i]!;
        }
        vc[c] = n.idx;
        n.vc = vc;
        next[c]!++;
        remaining--;
        progress = true;
      }
    }
    if (!progress) {
      // Every unfinished session waits on a read whose write is not placed yet: a cycle. Cut one edge.
      const c = next.findIndex((i, k) => i < sessions[k]!.length);
      const n = sessions[c]![next[c]!]!;
      report('causal-cycle', n, `read of ${n.op.value} depends on its own effects`);
      n.from = undefined;
    }
  }

  const precedes = (a: Node, b: Node): boolean => a !== b && a.idx <= b.vc![a.c]!;
  for (const s of sessions) {
    const seen = new Set<Node>();
    for (const r of s) {
      if (r.op.type !== 'get') continue;
      const perClient = writesByKeyClient.get(r.op.key);
      const candidates: Node[] = [];
      if (perClient !== undefined) {
        for (let c = 0; c < C; c++) {
          const ws = perClient[c]!;
          let best: Node | undefined;
          for (const w of ws) if (w.idx <= r.vc![c]! && w !== r.from) best = w;
          if (best !== undefined) candidates.push(best);
        }
      }
      if (r.from !== undefined) {
        const w = r.from;
        for (const later of candidates) {
          if (!precedes(w, later)) continue;
          const kind: CausalViolationKind =
            later.c === r.c ? 'read-your-writes' : seen.has(later) ? 'monotonic-reads' : 'writes-follow-reads';
          report(kind, r, `returned ${w.op.value} (${w.op.client}) though ${describe(later)} overwrote it`);
          break;
        }
        seen.add(w);
      } else if (r.op.value === null) {
        const deletes = deletesByKey.get(r.op.key) ?? [];
        for (const w of candidates) {
          if (w.op.type !== 'put') continue;
          if (deletes.some((d) => !precedes(d, w))) continue;
          const kind: CausalViolationKind =
            w.c === r.c ? 'read-your-writes' : seen.has(w) ? 'monotonic-reads' : 'writes-follow-reads';
          report(kind, r, `found nothing though ${describe(w)} is in its causal past and no delete explains it`);
          break;
        }
      }
    }
  }

  const counts: Record<CausalViolationKind, number> = {
    'read-your-writes': 0,
    'monotonic-reads': 0,
    'writes-follow-reads': 0,
    'unknown-value': 0,
    'causal-cycle': 0,
  };
  for (const v of violations) counts[v.kind]++;
  return { ops: history.length, reads, writes, violations, counts };
}

function describe(n: Node): string {
  return `${n.op.type} ${n.op.value} by ${n.op.client}`;
}

/** A short human-readable summary. */
export function formatCausalReport(r: CausalReport, maxExamples = 5): string {
  const lines = [`${r.ops} ops (${r.writes} writes, ${r.reads} reads): ${r.violations.length} violations`];
  for (const [k, n] of Object.entries(r.counts)) if (n > 0) lines.push(`  ${k}: ${n}`);
  for (const v of r.violations.slice(0, maxExamples)) {
    lines.push(`  - ${v.kind} at ${v.client}#${v.index} key ${v.key}: ${v.detail}`);
  }
  return lines.join('\n');
}
