import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { leq, merge, parseClock, clockSum } from '../../../src/modes/causal/clock.js';
import { CausalState, compareWrites, parseWrite, type Write } from '../../../src/modes/causal/state.js';

test('vector clock basics and metadata parsing', () => {
  assert.ok(leq({}, { a: 1 }));
  assert.ok(leq({ a: 1 }, { a: 1, b: 2 }));
  assert.ok(!leq({ a: 2 }, { a: 1, b: 2 }));
  assert.deepEqual(merge({ a: 1, b: 3 }, { a: 2, c: 1 }), { a: 2, b: 3, c: 1 });
  assert.equal(clockSum({ a: 2, b: 3 }), 5);
  assert.deepEqual(parseClock(null), {});
  assert.deepEqual(parseClock(''), {});
  assert.deepEqual(parseClock('{"a":2,"b":0}'), { a: 2 });
  assert.deepEqual(parseClock({ a: 1 }), { a: 1 });
  assert.equal(typeof parseClock({ a: -1 }), 'string');
  assert.equal(typeof parseClock({ a: 1.5 }), 'string');
  assert.equal(typeof parseClock([1]), 'string');
  assert.equal(typeof parseClock('{'), 'string');
  assert.equal(typeof parseClock(7), 'string');
});

test('a write arriving before its dependency waits in the buffer, then both apply in order', () => {
  const a = new CausalState('A');
  const b = new CausalState('B');
  const c = new CausalState('C');
  const w1 = a.localWrite('x', 1, false);
  b.receive(w1);
  const w2 = b.localWrite('x', 2, false); // depends on w1
  assert.equal(c.receive(w2), 0);
  assert.equal(c.pendingCount(), 1);
  assert.equal(c.get('x'), undefined);
  assert.equal(c.receive(w1), 2);
  assert.equal(c.pendingCount(), 0);
  assert.equal(c.get('x')?.value, 2);
  assert.deepEqual(c.clock(), { A: 1, B: 1 });
  assert.equal(c.receive(w1), 0); // duplicates are ignored
  assert.ok(c.satisfies(w2.clock));
  assert.ok(!a.satisfies(w2.clock));
});

test('deletes are tombstones that replicate and lose to later writes', () => {
  const a = new CausalState('A');
  const b = new CausalState('B');
  b.receive(a.localWrite('x', 'v', false));
  const d = b.localWrite('x', undefined, true);
  assert.equal(b.get('x'), undefined);
  assert.equal(b.latest('x')?.deleted, true);
  a.receive(d);
  assert.equal(a.get('x'), undefined);
  a.localWrite('x', 'again', false);
  assert.equal(a.get('x')?.value, 'again');
  assert.deepEqual(parseWrite(JSON.parse(JSON.stringify(d))), d);
  assert.equal(parseWrite({ key: 'x', deleted: false, origin: 'A', clock: { A: 1 } }), undefined);
  assert.equal(parseWrite({ key: 'x', deleted: true, origin: 'A', clock: { A: 0 } }), undefined);
});

test('anti-entropy: merging a peer state brings the clock and data up and releases buffered writes', () => {
  const a = new CausalState('A');
  const b = new CausalState('B');
  const c = new CausalState('C');
  const w1 = a.localWrite('x', 1, false);
  a.localWrite('y', 1, false);
  b.mergeState(a.clock(), a.entriesSince(b.clock()));
  const w3 = b.localWrite('x', 3, false);
  c.receive(w3); // buffered: C lacks A's writes
  assert.equal(c.pendingCount(), 1);
  assert.equal(a.entriesSince(c.clock()).length, 2);
  c.mergeState(a.clock(), a.entriesSince(c.clock()));
  assert.equal(c.pendingCount(), 0);
  assert.equal(c.get('x')?.value, 3);
  assert.equal(c.get('y')?.value, 1);
  assert.deepEqual(c.entriesSince(c.clock()), []);
  assert.ok(compareWrites(w3, w1) > 0);
});

type Step =
  | { kind: 'write'; at: number; key: number; del: boolean }
  | { kind: 'deliver'; to: number; pick: number }
  | { kind: 'sync'; from: number; to: number };

test('property: any interleaving of writes, reordered deliveries and syncs stays causal and converges', () => {
  const step = fc.oneof(
    fc.record({
      kind: fc.constant('write' as const),
      at: fc.nat(2),
      key: fc.nat(2),
      del: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('deliver' as const), to: fc.nat(2), pick: fc.nat(50) }),
    fc.record({ kind: fc.constant('sync' as const), from: fc.nat(2), to: fc.nat(2) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps: Step[]) => {
      const names = ['A', 'B', 'C'];
      const rs = names.map((n) => new CausalState(n));
      const inflight: { to: number; w: Write }[] = [];
      const all: Write[] = [];
      let n = 0;
      for (const s of steps) {
        if (s.kind === 'write') {
          const w = rs[s.at]!.localWrite(`k${s.key}`, s.del ? undefined : `v${n++}`, s.del);
          all.push(w);
          for (let j = 0; j < 3; j++) if (j !== s.at) inflight.push({ to: j, w });
        } else if (s.kind === 'deliver' && inflight.length > 0) {
          const [m] = inflight.splice(s.pick % inflight.length, 1);
          rs[m!.to]!.receive(m!.w);
        } else if (s.kind === 'sync' && s.from !== s.to) {
          const to = rs[s.to]!;
          to.mergeState(rs[s.from]!.clock(), rs[s.from]!.entriesSince(to.clock()));
        }
        // Causal closure: a replica that counts a write as held holds its whole causal past, and each key
        // shows the winner among the writes it holds.
        for (const r of rs) {
          const vc = r.clock();
          const held = all.filter((w) => (w.clock[w.origin] ?? 0) <= (vc[w.origin] ?? 0));
          for (const w of held) assert.ok(leq(w.clock, vc));
          for (const key of ['k0', 'k1', 'k2']) {
            assert.deepEqual(
              r.latest(key),
              held
                .filter((w) => w.key === key)
                .sort(compareWrites)
                .at(-1),
            );
          }
        }
      }
      // Deliver everything left, then full syncs: all replicas must agree on every key.
      for (const m of inflight) rs[m.to]!.receive(m.w);
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 3; i++) {
          for (let j = 0; j < 3; j++) {
            if (i !== j) rs[j]!.mergeState(rs[i]!.clock(), rs[i]!.entriesSince(rs[j]!.clock()));
          }
        }
      }
      for (const key of ['k0', 'k1', 'k2']) {
        const expected = all
          .filter((w) => w.key === key)
          .sort(compareWrites)
          .at(-1);
        for (const r of rs) {
          assert.deepEqual(r.latest(key), expected);
          assert.equal(r.pendingCount(), 0);
        }
      }
      assert.deepEqual(rs[0]!.clock(), rs[1]!.clock());
      assert.deepEqual(rs[1]!.clock(), rs[2]!.clock());
    }),
    { numRuns: 300 },
  );
});
