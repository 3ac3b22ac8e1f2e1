import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLinearizable } from '../../src/check/linearizability.js';
import { history, type OpSpec } from './helpers.js';
import type { JsonValue } from '../../src/kv/json.js';

/**
 * An independent brute-force oracle on tiny single-key histories: tries every order of the operations
 * that respects real time (a before b when a completed strictly before b was invoked), where `info`
 * operations may be left out, written directly from the model's definition.
 */
function bruteForce(specs: OpSpec[]): boolean {
  const ops = specs.filter((s) => !(s.f === 'get' && s.r !== 'ok') && !(s.f === 'put' && s.r === 'fail'));
  const end = (s: OpSpec): number => (s.r === 'info' || s.r === 'open' ? Infinity : s.t[1]);
  const apply = (cur: JsonValue, s: OpSpec): { ok: boolean; next: JsonValue } => {
    switch (s.f) {
      case 'get':
        return { ok: cur === (s.out ?? null), next: cur };
      case 'put':
        return { ok: true, next: s.v ?? null };
      case 'cas': {
        const [e, n] = s.v as [JsonValue, JsonValue];
        if (s.r === 'fail') return { ok: cur !== e, next: cur };
        return { ok: cur === e, next: n };
      }
      case 'delete':
        if (s.r === 'ok') return { ok: cur !== null, next: null };
        if (s.r === 'fail') return { ok: cur === null, next: cur };
        return { ok: true, next: null };
    }
  };
  const search = (done: boolean[], cur: JsonValue): boolean => {
    const open = ops.filter((_, i) => !done[i]);
    if (open.every((s) => end(s) === Infinity)) return true;
    for (let i = 0; i < ops.length; i++) {
      if (done[i]) continue;
      const s = ops[i] as OpSpec;
      if (open.some((o) => end(o) < s.t[0])) continue;
      const r = apply(cur, s);
      if (!r.ok) continue;
      done[i] = true;
      const found = search(done, r.next);
      done[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(
    ops.map(() => false),
    null,
  );
}

const valueArb = fc.constantFrom<JsonValue>(null, 1, 2);
const specArb = (p: number): fc.Arbitrary<OpSpec> =>
  fc
    .record({
      f: fc.constantFrom('get' as const, 'put' as const, 'cas' as const, 'delete' as const),
      a: fc.integer({ min: 1, max: 2 }),
      b: fc.integer({ min: 1, max: 2 }),
      out: valueArb,
      r: fc.constantFrom('ok' as const, 'ok' as const, 'fail' as const, 'info' as const),
      start: fc.integer({ min: 0, max: 12 }),
      len: fc.integer({ min: 0, max: 6 }),
    })
    .map(({ f, a, b, out, r, start, len }) => {
      const v: JsonValue | undefined = f === 'put' ? a : f === 'cas' ? [a === 2 ? null : a, b] : undefined;
      const spec: OpSpec = { p, f, r, t: [start, start + len] };
      if (v !== undefined) spec.v = v;
      if (f === 'get') spec.out = out;
      return spec;
    });

test('the WGL search agrees with a brute-force oracle on small random histories', () => {
  let linearizable = 0;
  let total = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 7 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, p) => specArb(p)))),
      (specs) => {
        const expected = bruteForce(specs);
        const r = checkLinearizable(history(specs));
        assert.equal(r.ok, expected, JSON.stringify(specs));
        total++;
        if (expected) linearizable++;
      },
    ),
    { numRuns: 1500 },
  );
  // the generator produces both kinds, so both sides of the comparison are exercised
  assert.ok(linearizable > total / 10 && linearizable < (total * 9) / 10, `${linearizable}/${total}`);
});
