import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand } from '../../src/kv/commands.js';
import { KvStateMachine } from '../../src/kv/state-machine.js';
import { RECORDS_PER_STEP, arrayHeader } from '../../src/kv/snapshot-job.js';
import { pack } from '../../src/util/msgpack.js';

function filled(n: number): KvStateMachine {
  const sm = new KvStateMachine();
  let index = 0;
  for (let i = 0; i < n; i++) {
    const value = i % 3 === 0 ? { n: i, s: 'é'.repeat(i % 40) } : i % 3 === 1 ? `v${i}` : [i, null, true];
    sm.apply(
      ++index,
      encodeCommand({
        op: 'put',
        key: `k${String(i).padStart(6, '0')}`,
        value,
        requestId: { client: `c${i % 5}`, seq: i + 1 },
      }),
    );
  }
  sm.apply(index + 1, encodeCommand({ op: 'delete', key: 'k000000' }));
  return sm;
}

function run(sm: KvStateMachine): { bytes: Uint8Array; steps: number } {
  const job = sm.beginSnapshot();
  for (let steps = 1; ; steps++) {
    const out = job.step();
    if (out !== undefined) return { bytes: out, steps };
  }
}

test('MessagePack array headers match the encoder at every size class', () => {
  for (const n of [0, 1, 15, 16, 65535, 65536, 70000]) {
    const encoded = pack(new Array<number>(n).fill(1));
    assert.deepEqual(encoded.subarray(0, arrayHeader(n).length), arrayHeader(n), `n=${n}`);
  }
});

test('a snapshot taken in slices has exactly the bytes of snapshot(), at every size', () => {
  for (const n of [0, 1, 3, 4, RECORDS_PER_STEP - 1, RECORDS_PER_STEP, RECORDS_PER_STEP + 1, 13_107, 13_108, 20_000]) {
    const sm = filled(n);
    const { bytes, steps } = run(sm);
    assert.deepEqual(bytes, sm.snapshot(), `n=${n}`);
    assert.equal(steps, Math.max(1, Math.ceil(sm.size / RECORDS_PER_STEP)), `n=${n} steps`);
    const back = new KvStateMachine();
    back.restore(bytes);
    assert.equal(back.size, sm.size);
    assert.equal(back.appliedIndex, sm.appliedIndex);
  }
});

test('the job encodes the state as of its start, whatever is applied while it runs', () => {
  const sm = filled(10_000);
  const before = sm.snapshot();
  const job = sm.beginSnapshot();
  assert.equal(job.index, sm.appliedIndex);
  let index = sm.appliedIndex;
  let out: Uint8Array | undefined;
  for (let i = 0; out === undefined; i++) {
    // Between steps: overwrite, create and delete keys, as applies would.
    sm.apply(++index, encodeCommand({ op: 'put', key: `k${String(i * 7).padStart(6, '0')}`, value: 'changed' }));
    sm.apply(++index, encodeCommand({ op: 'put', key: `new${i}`, value: i }));
    sm.apply(++index, encodeCommand({ op: 'delete', key: `k${String(i * 11 + 1).padStart(6, '0')}` }));
    // Deleted then created again, ahead of the walk and behind it.
    sm.apply(++index, encodeCommand({ op: 'delete', key: `k${String(9_999 - i).padStart(6, '0')}` }));
    sm.apply(++index, encodeCommand({ op: 'put', key: `k${String(9_999 - i).padStart(6, '0')}`, value: 'again' }));
    sm.apply(++index, encodeCommand({ op: 'delete', key: `new${i}` }));
    sm.apply(++index, encodeCommand({ op: 'delete', key: `k${String(5_000 + i * 13).padStart(6, '0')}` }));
    out = job.step();
  }
  assert.deepEqual(out, before);
  assert.notDeepEqual(sm.snapshot(), before);
});

test('random changes between steps (property): the job always yields the state at its start', () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  for (let round = 0; round < 20; round++) {
    const sm = filled(Math.floor(rnd() * 9000));
    let index = sm.appliedIndex;
    const key = () => `k${String(Math.floor(rnd() * 10_000)).padStart(6, '0')}`;
    const before = sm.snapshot();
    const job = sm.beginSnapshot();
    let out: Uint8Array | undefined;
    while (out === undefined) {
      for (let i = Math.floor(rnd() * 300); i > 0; i--) {
        const r = rnd();
        if (r < 0.5) sm.apply(++index, encodeCommand({ op: 'put', key: key(), value: round }));
        else sm.apply(++index, encodeCommand({ op: 'delete', key: key() }));
      }
      out = job.step();
    }
    assert.deepEqual(out, before, `round ${round}`);
  }
});

test('a restore while a job runs finishes the job on the old state first', () => {
  const sm = filled(9000);
  const before = sm.snapshot();
  const other = filled(100).snapshot();
  const job = sm.beginSnapshot();
  assert.equal(job.step(), undefined);
  sm.restore(other);
  assert.deepEqual(job.step(), before);
  assert.deepEqual(sm.snapshot(), other);
});
