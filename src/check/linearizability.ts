/**
 * A linearizability checker for key-value histories.
 *
 * Linearizability is compositional (P-compositionality, Herlihy & Wing), so the history is split per key
 * and each key is checked as a register (see register.ts for the model). Per key, the search is the
 * Wing–Gong algorithm with Lowe's memoization:
 *
 * - the history is a doubly linked list of call and return entries ordered by time (at equal times calls
 *   come first, so touching intervals count as concurrent); an `info` operation's return is at +∞;
 * - walking the list from its head, a call whose operation can take effect in the current state is
 *   "linearized": both its entries are unlinked (dancing-links style), its state pushed, and the walk
 *   restarts from the head; a configuration (set of linearized operations, state) already explored is
 *   skipped — the cache holds a Zobrist hash of the set plus the exact set as a bigint bitset;
 * - reaching a return entry means its operation would have to be linearized already: backtrack.
 * - the history is linearizable once every operation except the optional (`info`) ones is linearized.
 *
 * A failing key is reported with the deepest point the search reached: the state there, the operation
 * whose return could not be passed and the concurrent candidates, each with the reason it cannot go next.
 */
import { describeOp, pairOperations, type HistoryEvent, type HistoryOp } from './history.js';
import { ABSENT, compileOp, step, ValueTable, whyNot, Kind, type ModelOp } from './register.js';

export { parseHistory, HistoryError, type HistoryEvent, type HistoryOp } from './history.js';

export interface CheckOptions {
  /** Give up after this long (default 60 s); the result is then `ok: false, timedOut: true`. */
  readonly timeoutMs?: number;
}

export interface CheckFailure {
  readonly key: string;
  /** The operations involved: the one whose return could not be passed and its concurrent candidates. */
  readonly ops: HistoryOp[];
  readonly explanation: string;
}

export interface CheckResult {
  readonly ok: boolean;
  /** Operations (invocations) in the history. */
  readonly checkedOps: number;
  readonly keys: number;
  readonly failure?: CheckFailure;
  readonly timedOut?: boolean;
}

type KeyOutcome = { kind: 'ok' } | { kind: 'timeout' } | { kind: 'fail'; failure: CheckFailure };

/** Deterministic xorshift32 for Zobrist keys. */
function xorshift(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

interface CacheEntry {
  readonly bits: bigint;
  readonly state: number;
  next: CacheEntry | undefined;
}

/** Values read (or expected by a successful cas) that no operation could have written. */
function unwrittenRead(ops: readonly ModelOp[]): ModelOp | undefined {
  const written = new Set<number>([ABSENT]);
  for (const m of ops) if (m.kind === Kind.Write || m.kind === Kind.Cas) written.add(m.b);
  return ops.find((m) => (m.kind === Kind.Read || (m.kind === Kind.Cas && !m.optional)) && !written.has(m.a));
}

function checkKey(key: string, history: readonly HistoryOp[], deadline: number): KeyOutcome {
  const values = new ValueTable();
  const ops: ModelOp[] = [];
  for (const op of history) {
    const m = compileOp(op, values);
    if (m !== null) ops.push(m);
  }
  const n = ops.length;
  if (n === 0) return { kind: 'ok' };
  const bad = unwrittenRead(ops);
  if (bad !== undefined) {
    return {
      kind: 'fail',
      failure: {
        key,
        ops: [bad.op],
        explanation:
          `key ${JSON.stringify(key)}: ${describeOp(bad.op)} observed ${values.text(bad.a)}, ` +
          'a value no operation on this key ever wrote',
      },
    };
  }

  // Entries: call of op i is node 2i, its return 2i+1; HEAD is node 2n. Order by time, calls first on ties.
  const order: number[] = [];
  for (let i = 0; i < n; i++) order.push(2 * i, 2 * i + 1);
  const time = (node: number): number => {
    const op = (ops[node >> 1] as ModelOp).op;
    return node & 1 ? op.completeTime : op.invokeTime;
  };
  order.sort((x, y) => time(x) - time(y) || (x & 1) - (y & 1) || x - y);
  // ops are numbered by invoke order already (history order), which keeps bit positions roughly monotonic
  const HEAD = 2 * n;
  const next = new Int32Array(2 * n + 1);
  const prev = new Int32Array(2 * n + 1);
  let last = HEAD;
  for (const node of order) {
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  next[last] = -1;
  const unlink = (x: number): void => {
    next[prev[x] as number] = next[x] as number;
    if (next[x] !== -1) prev[next[x] as number] = prev[x] as number;
  };
  const relink = (x: number): void => {
    next[prev[x] as number] = x;
    if (next[x] !== -1) prev[next[x] as number] = x;
  };

  const rand = xorshift(0x5eed1234);
  const z1 = new Uint32Array(n);
  const z2 = new Uint32Array(n);
  const masks: bigint[] = [];
  for (let i = 0; i < n; i++) {
    z1[i] = rand();
    z2[i] = rand();
    masks.push(1n << BigInt(i));
  }
  const cache = new Map<number, CacheEntry>();
  const remember = (bits: bigint, state: number, h1: number, h2: number): boolean => {
    const h = h1 * 0x200000 + ((h2 ^ Math.imul(state + 1, 0x9e3779b1)) & 0x1fffff);
    const head = cache.get(h);
    for (let e = head; e !== undefined; e = e.next) if (e.state === state && e.bits === bits) return false;
    cache.set(h, { bits, state, next: head });
    return true;
  };

  const required = ops.reduce((c, m) => c + (m.optional ? 0 : 1), 0);
  const stackOp = new Int32Array(n);
  const stackState = new Int32Array(n);
  let depth = 0;
  let done = 0;
  let state = ABSENT;
  let bits = 0n;
  let h1 = 0;
  let h2 = 0;
  let entry = next[HEAD] as number;
  let iterations = 0;
  let best = { depth: -1, state: ABSENT, blocker: -1, candidates: [] as number[] };

  while (true) {
    if (done === required) return { kind: 'ok' };
    if ((++iterations & 0x3ff) === 0 && Date.now() > deadline) return { kind: 'timeout' };
    if (entry !== -1 && (entry & 1) === 0) {
      const o = entry >> 1;
      const m = ops[o] as ModelOp;
      const ns = step(state, m);
      if (ns >= 0) {
        const nb = bits | (masks[o] as bigint);
        const n1 = (h1 ^ (z1[o] as number)) >>> 0;
        const n2 = (h2 ^ (z2[o] as number)) >>> 0;
        if (remember(nb, ns, n1, n2)) {
          stackOp[depth] = o;
          stackState[depth] = state;
          depth++;
          state = ns;
          bits = nb;
          h1 = n1;
          h2 = n2;
          unlink(2 * o);
          unlink(2 * o + 1);
          if (!m.optional) done++;
          entry = next[HEAD] as number;
          continue;
        }
      }
      entry = next[entry] as number;
      continue;
    }
    // A return entry (or the end): the operations linearized so far cannot be extended. Backtrack.
    if (depth > best.depth) {
      const candidates: number[] = [];
      for (let x = next[HEAD] as number; x !== entry && x !== -1; x = next[x] as number) {
        if ((x & 1) === 0) candidates.push(x >> 1);
      }
      best = { depth, state, blocker: entry === -1 ? -1 : entry >> 1, candidates };
    }
    if (depth === 0) return { kind: 'fail', failure: explain(key, ops, values, best) };
    depth--;
    const o = stackOp[depth] as number;
    state = stackState[depth] as number;
    bits ^= masks[o] as bigint;
    h1 = (h1 ^ (z1[o] as number)) >>> 0;
    h2 = (h2 ^ (z2[o] as number)) >>> 0;
    relink(2 * o + 1);
    relink(2 * o);
    if (!(ops[o] as ModelOp).optional) done--;
    entry = next[2 * o] as number;
  }
}

function explain(
  key: string,
  ops: readonly ModelOp[],
  values: ValueTable,
  best: { depth: number; state: number; blocker: number; candidates: number[] },
): CheckFailure {
  const involved: ModelOp[] = [];
  if (best.blocker >= 0) involved.push(ops[best.blocker] as ModelOp);
  for (const c of best.candidates) if (c !== best.blocker) involved.push(ops[c] as ModelOp);
  const lines = involved.map((m) => {
    const s = step(best.state, m);
    const reason = s < 0 ? whyNot(best.state, m, values) : 'every order taking it next was ruled out';
    return `  - ${describeOp(m.op)}: ${reason}`;
  });
  const blocker = best.blocker >= 0 ? describeOp((ops[best.blocker] as ModelOp).op) : 'the end of the history';
  const explanation =
    `key ${JSON.stringify(key)} is not linearizable: at best ${best.depth} of ${ops.length} operations can be ` +
    `ordered, leaving the register ${values.text(best.state)}; then ${blocker} must take effect before it ` +
    `returned, but none of the operations still open can go next:\n${lines.join('\n')}`;
  return { key, ops: involved.map((m) => m.op), explanation };
}

/** Checks a whole history (any number of keys); keys are checked in sorted order, stopping at the first failure. */
export function checkLinearizable(history: readonly HistoryEvent[], opts: CheckOptions = {}): CheckResult {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const ops = pairOperations(history);
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const keys = [...byKey.keys()].sort();
  let timedOut = false;
  for (const key of keys) {
    const r = checkKey(key, byKey.get(key) as HistoryOp[], deadline);
    if (r.kind === 'fail') {
      return {
        ok: false,
        checkedOps: ops.length,
        keys: keys.length,
        failure: r.failure,
        ...(timedOut ? { timedOut } : {}),
      };
    }
    if (r.kind === 'timeout') {
      timedOut = true;
      break;
    }
  }
  return timedOut
    ? { ok: false, checkedOps: ops.length, keys: keys.length, timedOut: true }
    : { ok: true, checkedOps: ops.length, keys: keys.length };
}
