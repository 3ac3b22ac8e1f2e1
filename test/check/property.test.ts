import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLinearizable, type HistoryEvent } from '../../src/check/linearizability.js';
import type { JsonValue } from '../../src/kv/json.js';

type F = 'get' | 'put' | 'cas' | 'delete';

interface PendingOp {
  process: number;
  f: F;
  key: string;
  input: JsonValue;
  applied: boolean;
  output: JsonValue;
  outcome: 'ok' | 'fail';
  timedOut: boolean;
}

/**
 * Runs random operations against an atomic in-memory store, one step at a time, and records what clients
 * would see: each operation is invoked, later applied atomically (its linearization point), later
 * completed; some time out (info) and are applied later or never. Such a history is linearizable by
 * construction.
 */
function simulate(seed: number[], processes: number, keys: string[], timeouts = true): HistoryEvent[] {
  let s = 0;
  const next = (n: number): number => {
    const v = (seed[s % seed.length] as number) + Math.floor(s / seed.length) * 7;
    s++;
    return v % n;
  };
  const store = new Map<string, JsonValue>();
  const events: HistoryEvent[] = [];
  const running: (PendingOp | undefined)[] = new Array<PendingOp | undefined>(processes).fill(undefined);
  const orphans: PendingOp[] = [];
  let time = 0;
  const applyOp = (op: PendingOp): void => {
    const cur = store.has(op.key) ? (store.get(op.key) as JsonValue) : null;
    op.applied = true;
    op.outcome = 'ok';
    switch (op.f) {
      case 'get':
        op.output = cur;
        break;
      case 'put':
        store.set(op.key, op.input);
        break;
      case 'cas': {
        const [e, n] = op.input as [JsonValue, JsonValue];
        if (cur === e) store.set(op.key, n);
        else op.outcome = 'fail';
        break;
      }
      case 'delete':
        if (store.has(op.key)) store.delete(op.key);
        else op.outcome = 'fail';
        break;
    }
  };
  const steps = seed.length * 3;
  for (let i = 0; i < steps; i++) {
    time += 1 + next(3);
    if (orphans.length > 0 && next(4) === 0) {
      const o = orphans.splice(next(orphans.length), 1)[0] as PendingOp;
      if (next(3) > 0) applyOp(o);
      continue;
    }
    const p = next(processes);
    const op = running[p];
    if (op === undefined) {
      const f = (['get', 'put', 'cas', 'delete', 'get'] as const)[next(5)] as F;
      const key = keys[next(keys.length)] as string;
      const input: JsonValue = f === 'put' ? next(4) + 1 : f === 'cas' ? [next(3) + 1, next(4) + 1] : null;
      running[p] = { process: p, f, key, input, applied: false, output: null, outcome: 'ok', timedOut: false };
      events.push(
        f === 'put' || f === 'cas'
          ? { process: p, type: 'invoke', f, key, value: input, time }
          : { process: p, type: 'invoke', f, key, time },
      );
    } else if (timeouts && !op.applied && next(8) === 0) {
      // timeout before the operation took effect: it may still take effect later
      events.push({ process: p, type: 'info', f: op.f, key: op.key, time });
      running[p] = undefined;
      orphans.push(op);
    } else if (!op.applied) {
      applyOp(op);
    } else {
      const timedOut = timeouts && next(10) === 0;
      const type = timedOut ? 'info' : op.outcome;
      events.push(
        op.f === 'get' && !timedOut
          ? { process: p, type, f: op.f, key: op.key, value: op.output, time }
          : { process: p, type, f: op.f, key: op.key, time },
      );
      running[p] = undefined;
    }
  }
  return events;
}

const seedArb = fc.array(fc.nat({ max: 1_000_000 }), { minLength: 10, maxLength: 120 });

test('histories of an atomic reference store with random overlaps are accepted', () => {
  fc.assert(
    fc.property(seedArb, fc.integer({ min: 1, max: 6 }), (seed, processes) => {
      const h = simulate(seed, processes, ['a', 'b']);
      const r = checkLinearizable(h);
      assert.equal(r.ok, true, r.failure?.explanation);
    }),
    { numRuns: 200 },
  );
});

test('corrupting a read to a value never written is rejected', () => {
  fc.assert(
    fc.property(seedArb, fc.integer({ min: 1, max: 6 }), fc.nat(), (seed, processes, pick) => {
      const h = simulate(seed, processes, ['a', 'b']);
      const reads = h.map((e, i) => [e, i] as const).filter(([e]) => e.type === 'ok' && e.f === 'get');
      fc.pre(reads.length > 0);
      const [e, i] = reads[pick % reads.length] as readonly [HistoryEvent, number];
      const bad = h.slice();
      bad[i] = { ...e, value: 'never-written' };
      const r = checkLinearizable(bad);
      assert.equal(r.ok, false);
      assert.equal(r.failure?.key, e.key);
    }),
    { numRuns: 100 },
  );
});

test('in a sequential history, changing any read to another written value is rejected', () => {
  fc.assert(
    fc.property(seedArb, fc.nat(), fc.nat(), (seed, pick, other) => {
      // one process and no timeouts: the only linearization is the real order
      const clean = simulate(seed, 1, ['a'], false);
      const reads = clean.map((e, i) => [e, i] as const).filter(([e]) => e.type === 'ok' && e.f === 'get');
      fc.pre(reads.length > 0);
      const [e, i] = reads[pick % reads.length] as readonly [HistoryEvent, number];
      const candidates: JsonValue[] = [null, 1, 2, 3, 4].filter((v) => v !== e.value);
      const bad = clean.slice();
      bad[i] = { ...e, value: candidates[other % candidates.length] as JsonValue };
      assert.equal(checkLinearizable(clean).ok, true);
      assert.equal(checkLinearizable(bad).ok, false);
    }),
    { numRuns: 200 },
  );
});
