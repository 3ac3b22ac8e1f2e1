import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LogTail } from '../../src/storage/tail.js';
import { CompactedError, UnavailableError } from '../../src/raft/storage.js';
import type { Entry } from '../../src/raft/types.js';

/** The obvious model: an array of entries after a dummy (what the tail used to be). */
class Model {
  ents: Entry[];
  constructor(index: number, term: number) {
    this.ents = [{ index, term, type: 'noop', data: new Uint8Array(0) }];
  }
  get offset(): number {
    return this.ents[0].index;
  }
  last(): number {
    return this.offset + this.ents.length - 1;
  }
  append(entries: Entry[]): void {
    const first = entries[0].index;
    if (first + entries.length - 1 <= this.offset) return;
    const skip = Math.max(0, this.offset + 1 - first);
    this.ents.length = first + skip - this.offset;
    for (let i = skip; i < entries.length; i++) this.ents.push(entries[i]);
  }
  compactTo(index: number, term: number): void {
    this.ents = [{ index, term, type: 'noop', data: new Uint8Array(0) }, ...this.ents.slice(index - this.offset + 1)];
  }
}

const entry = (index: number, term: number, size: number, noop: boolean): Entry => {
  const data = new Uint8Array(noop ? 0 : size);
  for (let i = 0; i < data.length; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term, type: noop ? 'noop' : 'normal', data };
};

const op = fc.oneof(
  { weight: 6, arbitrary: appendOp() },
  fc.record({ kind: fc.constant('compact' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('compactTo' as const), ahead: fc.integer({ min: -2, max: 5 }) }),
  fc.record({ kind: fc.constant('reset' as const), ahead: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant('dropAll' as const) }),
);

function appendOp() {
  // Append a run of entries starting at most 3 past the end, possibly overlapping (truncation).
  return fc.record({
    kind: fc.constant('append' as const),
    back: fc.integer({ min: -3, max: 8 }),
    count: fc.integer({ min: 1, max: 6 }),
    // Mostly small entries, sometimes one bigger than a quarter chunk (a chunk of its own).
    sizes: fc.array(
      fc.oneof(
        { weight: 12, arbitrary: fc.integer({ min: 0, max: 3000 }) },
        { weight: 1, arbitrary: fc.integer({ min: 262_145, max: 400_000 }) },
      ),
      { minLength: 6, maxLength: 6 },
    ),
    noop: fc.boolean(),
  });
}

test('LogTail (typed arrays + arena) behaves exactly like an array of entries, and frees its chunks', () => {
  fc.assert(
    fc.property(fc.nat(1_000_000), fc.array(op, { minLength: 1, maxLength: 80 }), (start, ops) => {
      const t = new LogTail(start, 2);
      const m = new Model(start, 2);
      let term = 2;
      for (const o of ops) {
        if (o.kind === 'append') {
          const first = Math.max(m.offset - 2, m.last() + 1 - o.back);
          if (first > m.last() + 1) {
            assert.throws(() => t.append([entry(first, term, 1, false)]), /gap/);
            continue;
          }
          if (o.back > 0) term++; // an overwrite comes from a later leader
          const es = Array.from({ length: o.count }, (_, i) => entry(first + i, term, o.sizes[i], o.noop && i === 0));
          t.append(es);
          m.append(es);
        } else if (o.kind === 'compact') {
          const idx = m.offset + Math.floor(o.frac * (m.last() - m.offset));
          t.compact(idx);
          if (idx > m.offset) m.compactTo(idx, m.ents[idx - m.offset].term);
        } else if (o.kind === 'compactTo') {
          const idx = m.last() + o.ahead;
          t.compactTo(idx, term);
          if (idx > m.last()) m.ents = [{ index: idx, term, type: 'noop', data: new Uint8Array(0) }];
          else if (idx >= m.offset) m.compactTo(idx, term);
        } else if (o.kind === 'reset') {
          const idx = m.last() + o.ahead;
          t.reset(idx, term);
          m.ents = [{ index: idx, term, type: 'noop', data: new Uint8Array(0) }];
        } else {
          t.dropAll();
          m.ents.length = 1;
        }
        assert.equal(t.offset, m.offset);
        assert.equal(t.firstIndex(), m.offset + 1);
        assert.equal(t.lastIndex(), m.last());
        for (let i = m.offset; i <= m.last(); i++) assert.equal(t.term(i), m.ents[i - m.offset].term);
        if (m.last() > m.offset) {
          const got = t.entries(m.offset + 1, m.last() + 1, Number.MAX_SAFE_INTEGER);
          assert.deepEqual(got, m.ents.slice(1));
        }
        // Held arena space is bounded by what the kept entries can pin: their chunks, one per entry at most.
        const kept = m.ents.slice(1);
        const bound = kept.reduce((b, e) => b + Math.max(1 << 20, e.data.length), 0) + (1 << 20) * 8;
        assert.ok(t.arenaBytes <= bound, `arena ${t.arenaBytes} > ${bound}`);
        if (kept.length === 0) assert.equal(t.arenaBytes, 0);
      }
    }),
    { numRuns: 300 },
  );
});

test('LogTail: bounds, maxBytes and chunk release after compaction', () => {
  const t = new LogTail(0, 0);
  const es = Array.from({ length: 3000 }, (_, i) => entry(i + 1, 1, 1000, false));
  t.append(es);
  assert.ok(t.arenaBytes >= 3_000_000);
  assert.throws(() => t.term(3001), UnavailableError);
  assert.throws(() => t.entries(0, 2, 100), CompactedError);
  // maxBytes: the first entry always, then as many as fit (data + 24 bytes each).
  assert.equal(t.entries(1, 100, 1).length, 1);
  assert.equal(t.entries(1, 100, 2048).length, 2);
  t.compact(2990);
  assert.equal(t.firstIndex(), 2991);
  assert.equal(t.term(2990), 1);
  assert.throws(() => t.term(2989), CompactedError);
  assert.equal(t.arenaBytes, 1 << 20, 'only the chunk holding the last ten entries is kept');
  assert.deepEqual(t.entries(2991, 3001, Infinity), es.slice(2990));
  assert.throws(() => t.compact(3001), UnavailableError);
});
