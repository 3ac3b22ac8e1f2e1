/**
 * The checker's verdicts at its edges: reads from the future found without a search, every key checked with
 * the smallest failing one reported, and "unknown" (not a crash) at the time or memory limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkLinearizable, type HistoryEvent } from '../../src/check/linearizability.js';
import { syntheticHistory } from '../../src/check/synthetic.js';

const ev = (
  process: number,
  type: HistoryEvent['type'],
  f: HistoryEvent['f'],
  key: string,
  time: number,
  value?: unknown,
) => ({ process, type, f, key, time, ...(value === undefined ? {} : { value }) }) as HistoryEvent;

test('a read from the future is reported at once, even among many unknown operations', () => {
  const h: HistoryEvent[] = [];
  // 60 writes whose outcome is unknown: an exhaustive search over them would not finish.
  for (let i = 0; i < 60; i++) h.push(ev(100 + i, 'invoke', 'put', 'k', i, `w${i}`));
  h.push(ev(1, 'invoke', 'get', 'k', 100), ev(1, 'ok', 'get', 'k', 101, 'late'));
  h.push(ev(2, 'invoke', 'put', 'k', 102, 'late'), ev(2, 'ok', 'put', 'k', 103, 'late'));
  const t0 = Date.now();
  const r = checkLinearizable(h, { timeoutMs: 5000 });
  assert.equal(r.ok, false);
  assert.equal(r.timedOut, undefined);
  assert.match(r.failure?.explanation ?? '', /every operation that writes it was invoked after it returned/);
  assert.ok(Date.now() - t0 < 1000);
});

test('every key is checked; the failing key with the fewest operations is reported', () => {
  const h = syntheticHistory({ ops: 3000, keys: 3, processes: 6, timeoutRate: 0, seed: 5 });
  const stale = (key: string, t: number): HistoryEvent[] => [
    ev(900, 'invoke', 'put', key, t, 'x1'),
    ev(900, 'ok', 'put', key, t + 0.1, 'x1'),
    ev(900, 'invoke', 'put', key, t + 0.2, 'x2'),
    ev(900, 'ok', 'put', key, t + 0.3, 'x2'),
    ev(901, 'invoke', 'get', key, t + 0.4),
    ev(901, 'ok', 'get', key, t + 0.5, 'x1'),
  ];
  const end = (h.at(-1) as HistoryEvent).time + 10;
  const bad = [...h, ...stale('k0', end), ...stale('small', end + 5)];
  const r = checkLinearizable(bad);
  assert.equal(r.ok, false);
  assert.equal(r.failedKeys, 2);
  assert.equal(r.failure?.key, 'small');
});

test('the time and memory limits give an unknown verdict naming the undecided keys', () => {
  const h = syntheticHistory({ ops: 4000, keys: 2, processes: 20, timeoutRate: 0.2, seed: 9 });
  const mem = checkLinearizable(h, { maxMemoryBytes: 1 });
  assert.equal(mem.ok, false);
  assert.equal(mem.unknown, 'memory');
  assert.equal(mem.failure, undefined);
  assert.ok((mem.unknownKeys ?? []).length >= 1);
  const time = checkLinearizable(h, { timeoutMs: -1 });
  assert.equal(time.ok, false);
  assert.equal(time.unknown, 'timeout');
  assert.equal(time.unknownKeys?.length, 2);
});
