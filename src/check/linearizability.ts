/**
 * A linearizability checker for key-value histories.
 *
 * Linearizability is compositional (P-compositionality, Herlihy & Wing), so the history is split per key
 * and each key is checked as a register (register.ts) by a Wing–Gong / Lowe search with memoization
 * (wgl.ts). Operations whose outcome is unknown (`info`) may take effect at any point after their invoke
 * or never. A read of a value no operation wrote is reported at once without a search.
 *
 * A failing key is reported with the deepest point the search reached: the state there, the operation
 * whose return could not be passed and the concurrent candidates, each with the reason it cannot go next.
 */
import { describeOp, pairOperations, type HistoryEvent, type HistoryOp } from './history.js';
import { ABSENT, compileOp, step, ValueTable, whyNot, Kind, type ModelOp } from './register.js';
import { searchRegister } from './wgl.js';

export { parseHistory, HistoryError, type HistoryEvent, type HistoryOp } from './history.js';

export interface CheckOptions {
  /** Give up after this long (default 60 s); the result is then `ok: false, timedOut: true`. */
  readonly timeoutMs?: number;
  /**
   * Memory the search of one key may use for its memo table (estimated, default 1 GiB); a key that needs
   * more is left unknown (`unknown: 'memory'`) instead of exhausting the heap.
   */
  readonly maxMemoryBytes?: number;
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
  /** The failing key with the fewest operations (the easiest to read), when any key fails. */
  readonly failure?: CheckFailure;
  /** How many keys are not linearizable. */
  readonly failedKeys?: number;
  /** Some key could not be decided (the verdict is then "unknown" unless another key failed). */
  readonly timedOut?: boolean;
  /** Why keys were left undecided, and which. */
  readonly unknown?: 'timeout' | 'memory';
  readonly unknownKeys?: readonly string[];
}

type KeyOutcome =
  { kind: 'ok' } | { kind: 'timeout' } | { kind: 'memory' } | { kind: 'fail'; failure: CheckFailure; ops: number };

/**
 * A value read (or expected by a successful cas) that no operation could have written by then: none wrote
 * it at all, or every operation writing it was invoked after the reader returned (a read from the future).
 * Found without a search, which matters most when unknown operations would make the search exhaustive.
 */
function impossibleRead(ops: readonly ModelOp[]): { op: ModelOp; future: boolean } | undefined {
  const firstInvoke = new Map<number, number>([[ABSENT, Number.NEGATIVE_INFINITY]]);
  for (const m of ops) {
    if (m.kind !== Kind.Write && m.kind !== Kind.Cas) continue;
    const t = firstInvoke.get(m.b);
    if (t === undefined || m.op.invokeTime < t) firstInvoke.set(m.b, m.op.invokeTime);
  }
  for (const m of ops) {
    if (m.kind !== Kind.Read && !(m.kind === Kind.Cas && !m.optional)) continue;
    const t = firstInvoke.get(m.a);
    if (t === undefined) return { op: m, future: false };
    if (t > m.op.completeTime) return { op: m, future: true }; // touching intervals are concurrent
  }
  return undefined;
}

function checkKey(key: string, history: readonly HistoryOp[], deadline: number, maxBytes: number): KeyOutcome {
  const values = new ValueTable();
  const ops: ModelOp[] = [];
  for (const op of history) {
    const m = compileOp(op, values);
    if (m !== null) ops.push(m);
  }
  if (ops.length === 0) return { kind: 'ok' };
  const bad = impossibleRead(ops);
  if (bad !== undefined) {
    const why = bad.future
      ? 'but every operation that writes it was invoked after it returned'
      : 'a value no operation on this key ever wrote';
    return {
      kind: 'fail',
      ops: ops.length,
      failure: {
        key,
        ops: [bad.op.op],
        explanation: `key ${JSON.stringify(key)}: ${describeOp(bad.op.op)} observed ${values.text(bad.op.a)}, ${why}`,
      },
    };
  }
  ops.sort((a, b) => a.op.invokeTime - b.op.invokeTime || a.op.position - b.op.position);
  const r = searchRegister(ops, deadline, maxBytes);
  if (r.kind !== 'fail') return r;
  return { kind: 'fail', ops: ops.length, failure: explain(key, ops, values, r) };
}

function explain(
  key: string,
  ops: readonly ModelOp[],
  values: ValueTable,
  best: { depth: number; state: number; blocker: number; candidates: readonly number[] },
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

/**
 * Checks a whole history (any number of keys), every key within the time limit: the result reports the
 * failing key with the fewest operations, or, when no key fails, whether some key was left undecided.
 */
export function checkLinearizable(history: readonly HistoryEvent[], opts: CheckOptions = {}): CheckResult {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const maxBytes = opts.maxMemoryBytes ?? 1024 ** 3;
  const ops = pairOperations(history);
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  // Small keys first: they are quick, and a violation in one is the easiest to read.
  const keys = [...byKey.keys()].sort(
    (a, b) => (byKey.get(a)?.length ?? 0) - (byKey.get(b)?.length ?? 0) || (a < b ? -1 : a > b ? 1 : 0),
  );
  let failure: { failure: CheckFailure; ops: number } | undefined;
  let failedKeys = 0;
  const unknownKeys: string[] = [];
  let unknown: 'timeout' | 'memory' | undefined;
  for (const key of keys) {
    if (Date.now() > deadline) {
      unknown ??= 'timeout';
      unknownKeys.push(key);
      continue;
    }
    const r = checkKey(key, byKey.get(key) as HistoryOp[], deadline, maxBytes);
    if (r.kind === 'fail') {
      failedKeys++;
      if (failure === undefined || r.ops < failure.ops) failure = r;
    } else if (r.kind === 'timeout' || r.kind === 'memory') {
      unknown = unknown === undefined || unknown === r.kind ? r.kind : unknown;
      unknownKeys.push(key);
    }
  }
  const base = { checkedOps: ops.length, keys: keys.length };
  const undecided = unknown === undefined ? {} : { timedOut: true, unknown, unknownKeys };
  if (failure !== undefined) return { ok: false, ...base, failure: failure.failure, failedKeys, ...undecided };
  if (unknown !== undefined) return { ok: false, ...base, ...undecided };
  return { ok: true, ...base };
}
