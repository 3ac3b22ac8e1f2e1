import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { encodeCommand, type Command, type Compare, type TxnOp } from '../../src/kv/commands.js';
import type { JsonValue } from '../../src/kv/json.js';

const keyArb = fc.constantFrom('a', 'b', 'a/1', 'a/2', 'c');
const valueArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constantFrom<JsonValue>(null, 1, 2, 'x', 'y', true),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>,
);
const ridArb = fc.option(
  fc.record({ client: fc.constantFrom('c1', 'c2', 'c3', 'c4'), seq: fc.integer({ min: 0, max: 12 }) }),
  { nil: undefined },
);
const condArb = fc.record(
  {
    ifVersion: fc.integer({ min: 0, max: 3 }),
    ifValue: fc.constantFrom<JsonValue>(null, 1, 'x'),
  },
  { requiredKeys: [] },
);
const opArb: fc.Arbitrary<TxnOp> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb }),
  fc.record({ op: fc.constant('delete' as const), key: keyArb }),
  fc.record({ op: fc.constant('get' as const), key: keyArb }),
);
const compareArb: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({
    key: keyArb,
    target: fc.constantFrom('version' as const, 'revision' as const),
    op: fc.constantFrom('==' as const, '!=' as const, '<' as const, '>' as const),
    value: fc.integer({ min: 0, max: 20 }),
  }),
  fc.record({
    key: keyArb,
    target: fc.constant('value' as const),
    op: fc.constantFrom('==' as const, '!=' as const, '<' as const, '>' as const),
    value: fc.constantFrom<JsonValue>(1, 2, 'x', null),
  }),
  fc.record({
    key: keyArb,
    target: fc.constant('exists' as const),
    op: fc.constant('==' as const),
    value: fc.boolean(),
  }),
);

function withOpt<T extends object>(base: T, requestId: Command['requestId']): T {
  return requestId === undefined ? base : { ...base, requestId };
}

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.tuple(keyArb, valueArb, condArb, ridArb).map(([key, value, c, rid]) => {
    const cond = 'ifValue' in c ? { ...c, hasIfValue: true } : c;
    return withOpt({ op: 'put' as const, key, value, ...cond }, rid);
  }),
  fc
    .tuple(keyArb, condArb, ridArb)
    .map(([key, c, rid]) =>
      withOpt({ op: 'delete' as const, key, ...('ifValue' in c ? { ...c, hasIfValue: true } : c) }, rid),
    ),
  fc
    .tuple(
      fc.array(compareArb, { maxLength: 3 }),
      fc.array(opArb, { maxLength: 3 }),
      fc.array(opArb, { maxLength: 3 }),
      ridArb,
    )
    .map(([compare, success, failure, rid]) => withOpt({ op: 'txn' as const, compare, success, failure }, rid)),
);

/** A log: entries with strictly increasing indexes (gaps stand for noops), some of them garbage. */
const logArb = fc.array(
  fc.tuple(
    fc.integer({ min: 1, max: 3 }),
    fc.oneof(
      { weight: 20, arbitrary: commandArb.map(encodeCommand) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }) },
    ),
  ),
  { maxLength: 60 },
);

function run(sm: KvStateMachine, log: [number, Uint8Array][], from = 0): unknown[] {
  const results: unknown[] = [];
  let index = 0;
  for (let i = 0; i < log.length; i++) {
    const [gap, data] = log[i] as [number, Uint8Array];
    index += gap;
    if (i < from) continue;
    if (gap > 1) sm.skipTo(index - 1);
    results.push(sm.apply(index, data));
  }
  return results;
}

const small = { sessions: { maxSeqsPerClient: 4, maxClients: 2, maxRetiredClients: 2 } };

test('two machines fed the same log reach identical results and snapshot bytes', () => {
  fc.assert(
    fc.property(logArb, (log) => {
      const a = new KvStateMachine(small);
      const b = new KvStateMachine(small);
      assert.deepEqual(run(a, log), run(b, log));
      assert.deepEqual(Buffer.from(a.snapshot()), Buffer.from(b.snapshot()));
      assert.deepEqual(a.list('', 100), b.list('', 100));
    }),
    { numRuns: 150 },
  );
});

test('snapshot at any point, restore, continue: identical state and behaviour', () => {
  fc.assert(
    fc.property(logArb, fc.nat(), (log, cutRaw) => {
      const cut = log.length === 0 ? 0 : cutRaw % (log.length + 1);
      const a = new KvStateMachine(small);
      const prefix = log.slice(0, cut);
      run(a, prefix);
      const b = new KvStateMachine(small);
      b.restore(a.snapshot());
      assert.equal(b.appliedIndex, a.appliedIndex);
      assert.deepEqual(b.list('', 100), a.list('', 100));
      for (const k of ['a', 'b', 'a/1', 'a/2', 'c']) assert.deepEqual(b.get(k), a.get(k));
      assert.deepEqual(
        b.list('a/', 1).map((r) => r.key),
        a.list('a/', 1).map((r) => r.key),
      );
      assert.deepEqual(run(b, log, cut), run(a, log, cut));
      assert.deepEqual(Buffer.from(b.snapshot()), Buffer.from(a.snapshot()));
    }),
    { numRuns: 150 },
  );
});

test('list agrees with a brute-force model over random puts and deletes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.string({ maxLength: 3, unit: fc.constantFrom('a', 'b', '/', 'é') })), {
        maxLength: 80,
      }),
      fc.string({ maxLength: 2, unit: fc.constantFrom('a', 'b', '/') }),
      (ops, prefix) => {
        const sm = new KvStateMachine();
        const model = new Set<string>();
        let i = 0;
        for (const [isPut, k] of ops) {
          if (k.length === 0) continue;
          sm.apply(++i, encodeCommand(isPut ? { op: 'put', key: k, value: 1 } : { op: 'delete', key: k }));
          if (isPut) model.add(k);
          else model.delete(k);
        }
        const expected = [...model].filter((k) => k.startsWith(prefix)).sort();
        assert.deepEqual(
          sm.list(prefix, 1000).map((r) => r.key),
          expected,
        );
        assert.equal(sm.size, model.size);
      },
    ),
    { numRuns: 150 },
  );
});
