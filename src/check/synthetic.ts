/**
 * Synthetic linearizable histories for benchmarks and self-tests: concurrent clients against an atomic
 * in-memory store. Every operation is invoked, later takes effect atomically, later completes; a fraction
 * time out (recorded as `info`) and then take effect later or never. Deterministic for a given seed.
 */
import type { JsonValue } from '../kv/json.js';
import type { HistoryEvent, OpFunction } from './history.js';
import { makeRng as prng } from '../raft/rng.js';

export interface SyntheticOptions {
  /** Number of operations invoked. */
  readonly ops: number;
  readonly keys: number;
  readonly processes: number;
  /** Probability that an operation times out (default 0.01). */
  readonly timeoutRate?: number;
  /** Distinct values written per key (small values make cas succeed often; default 5). */
  readonly values?: number;
  readonly seed?: number;
}

interface Running {
  readonly process: number;
  readonly f: OpFunction;
  readonly key: string;
  readonly input: JsonValue;
  applied: boolean;
  output: JsonValue;
  outcome: 'ok' | 'fail';
}

export function syntheticHistory(opts: SyntheticOptions): HistoryEvent[] {
  const rnd = prng(opts.seed ?? 1);
  const int = (n: number): number => Math.floor(rnd() * n);
  const timeoutRate = opts.timeoutRate ?? 0.01;
  const nValues = opts.values ?? 5;
  const store = new Map<string, JsonValue>();
  const events: HistoryEvent[] = [];
  const running: (Running | undefined)[] = new Array<Running | undefined>(opts.processes).fill(undefined);
  const orphans: Running[] = [];
  let invoked = 0;
  let time = 0;
  const apply = (op: Running): void => {
    const cur = store.get(op.key) ?? null;
    op.applied = true;
    op.outcome = 'ok';
    if (op.f === 'get') op.output = cur;
    else if (op.f === 'put') store.set(op.key, op.input);
    else if (op.f === 'cas') {
      const [e, n] = op.input as [JsonValue, JsonValue];
      if (cur === e) store.set(op.key, n);
      else op.outcome = 'fail';
    } else if (store.has(op.key)) store.delete(op.key);
    else op.outcome = 'fail';
  };
  while (invoked < opts.ops || running.some((r) => r !== undefined)) {
    time += 1 + int(1000);
    if (orphans.length > 0 && int(20) === 0) {
      const o = orphans.splice(int(orphans.length), 1)[0] as Running;
      if (int(2) === 0) apply(o);
      continue;
    }
    const p = int(opts.processes);
    const op = running[p];
    if (op === undefined) {
      if (invoked >= opts.ops) continue;
      invoked++;
      const r = int(10);
      const f: OpFunction = r < 4 ? 'get' : r < 7 ? 'put' : r < 9 ? 'cas' : 'delete';
      const key = `k${int(opts.keys)}`;
      const input: JsonValue =
        f === 'put' ? int(nValues) + 1 : f === 'cas' ? [int(nValues) + 1, int(nValues) + 1] : null;
      running[p] = { process: p, f, key, input, applied: false, output: null, outcome: 'ok' };
      events.push(
        input === null
          ? { process: p, type: 'invoke', f, key, time }
          : { process: p, type: 'invoke', f, key, value: input, time },
      );
    } else if (!op.applied && rnd() < timeoutRate) {
      events.push({ process: p, type: 'info', f: op.f, key: op.key, time });
      running[p] = undefined;
      orphans.push(op);
    } else if (!op.applied) {
      apply(op);
    } else {
      events.push(
        op.f === 'get'
          ? { process: p, type: op.outcome, f: op.f, key: op.key, value: op.output, time }
          : { process: p, type: op.outcome, f: op.f, key: op.key, time },
      );
      running[p] = undefined;
    }
  }
  return events;
}
