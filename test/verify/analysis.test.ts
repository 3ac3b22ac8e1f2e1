import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError } from 'commander';
import type { HistoryEvent } from '../../src/check/linearizability.js';
import { buildProgram, type CliIO } from '../../src/cli/program.js';
import { parseFaults } from '../../src/cli/verify.js';
import type { FaultRecord } from '../../src/verify/nemesis.js';
import { checkInWorker } from '../../src/verify/check-worker.js';
import { leaderKillRecoveries, lostWrites } from '../../src/verify/report.js';
import { median } from '../../src/bench/histogram.js';

const ev = (
  process: number | string,
  type: HistoryEvent['type'],
  f: HistoryEvent['f'],
  key: string,
  value: HistoryEvent['value'],
  time: number,
): HistoryEvent => ({ process, type, f, key, value, time });

test('lostWrites: an acknowledged write whose key is missing at the end, with no later delete, is lost', () => {
  const h: HistoryEvent[] = [
    ev(1, 'invoke', 'put', 'a', 1, 1),
    ev(1, 'ok', 'put', 'a', 1, 2),
    ev(2, 'invoke', 'cas', 'b', [null, 5], 3),
    ev(2, 'ok', 'cas', 'b', [null, 5], 4),
    ev(3, 'invoke', 'put', 'c', 7, 5),
    ev(3, 'ok', 'put', 'c', 7, 6),
    ev(4, 'invoke', 'delete', 'c', null, 7),
    ev(4, 'info', 'delete', 'c', null, 8),
    ev(5, 'invoke', 'put', 'd', 9, 9),
    ev(5, 'ok', 'put', 'd', 9, 10),
    ev(6, 'invoke', 'delete', 'd', null, 11),
    ev(6, 'fail', 'delete', 'd', null, 12),
  ];
  const final = new Map([
    ['a', 1],
    ['b', null],
    ['c', null],
    ['d', null],
  ] as const);
  const lost = lostWrites(h, final);
  // a is present; b (cas) and d (the delete failed) are lost; c may have been deleted by the unknown delete.
  assert.deepEqual(
    lost.map((l) => [l.key, l.value]),
    [
      ['b', 5],
      ['d', 9],
    ],
  );
});

test('leaderKillRecoveries: first acknowledged write invoked after each leader kill; median', () => {
  const faults: FaultRecord[] = [
    { kind: 'kill', detail: 'node 1', start: 1e9, end: 3e9, hitLeader: true },
    { kind: 'kill', detail: 'node 2', start: 5e9, end: 6e9, hitLeader: false },
    { kind: 'pause', detail: 'node 3', start: 7e9, end: 8e9, hitLeader: true },
    { kind: 'kill', detail: 'node 3', start: 10e9, end: 11e9, hitLeader: true },
  ];
  const acks = [
    { invoke: 0.9e9, complete: 1.001e9 }, // in flight at the kill: not a recovery
    { invoke: 1.2e9, complete: 1.8e9 },
    { invoke: 10.1e9, complete: 10.5e9 },
  ];
  assert.deepEqual(leaderKillRecoveries(faults, acks), [800, 500]);
  assert.equal(median([800, 500]), 650);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([]), undefined);
});

test('parseFaults accepts known kinds and rejects others', () => {
  assert.deepEqual(parseFaults('kill,pause,partition'), ['kill', 'pause', 'partition']);
  assert.deepEqual(parseFaults('partition, kill,kill'), ['partition', 'kill']);
  assert.deepEqual(parseFaults('none'), []);
  assert.throws(() => parseFaults('kill,flood'), /unknown fault "flood"/);
});

test('quorumkv verify: bad flags exit with status 2 and a clear message, before starting anything', async () => {
  for (const [args, msg] of [
    [['--nodes', '4'], /--nodes: expected 3 or 5/],
    [['--duration', '0'], /--duration/],
    [['--faults', 'meteor'], /unknown fault "meteor"/],
    [['--seed', 'x'], /--seed/],
  ] as const) {
    const err: string[] = [];
    let code = -1;
    const io: CliIO = { out: () => undefined, err: (l) => err.push(l), env: {}, exit: (c) => (code = c) };
    try {
      await buildProgram(io, { throwOnExit: true }).parseAsync(['node', 'quorumkv', 'verify', ...args]);
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      code = e.exitCode;
    }
    assert.equal(code, 2, args.join(' '));
    assert.match(err.join('\n'), msg);
  }
});

test('checkInWorker: runs the checker off the main thread and reports its verdict', async () => {
  const h: HistoryEvent[] = [
    ev(1, 'invoke', 'put', 'a', 1, 1),
    ev(1, 'ok', 'put', 'a', 1, 2),
    ev(2, 'invoke', 'get', 'a', null, 3),
    ev(2, 'ok', 'get', 'a', 1, 4),
  ];
  assert.equal((await checkInWorker(h, 5000)).ok, true);
  const bad = await checkInWorker([...h, ev(3, 'invoke', 'get', 'a', null, 5), ev(3, 'ok', 'get', 'a', null, 6)], 5000);
  assert.equal(bad.ok, false);
  assert.equal(bad.failure?.key, 'a');
});
