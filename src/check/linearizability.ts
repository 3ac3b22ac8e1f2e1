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
  if (ops.length === 0) return { kind: 'ok' };
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
  ops.sort((a, b) => a.op.invokeTime - b.op.invokeTime || a.op.position - b.op.position);
  const r = searchRegister(ops, deadline);
  if (r.kind !== 'fail') return r;
  return { kind: 'fail', failure: explain(key, ops, values, r) };
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
