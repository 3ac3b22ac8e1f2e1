/**
 * The precise scheduler behind the simulated link delays (src/modes/common/precise-timer.ts), driven by a
 * fake clock and fake event-loop hooks: order, precision, when it polls and when it sleeps on a timer.
 * One short real-clock check at the end bounds the lateness of sub-millisecond waits loosely.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PreciseScheduler, type TimerHost } from '../../../src/modes/common/precise-timer.js';
import { SimulatedDelay, coarseDelayRequested } from '../../../src/modes/common/delay.js';

/** A deterministic host: time moves only when the test says so; immediates and timers run on request. */
class FakeHost implements TimerHost {
  nowNs = 1_000_000_000n;
  immediates: (() => void)[] = [];
  timers = new Map<number, { at: bigint; fn: () => void; ms: number }>();
  private nextId = 1;

  now(): bigint {
    return this.nowNs;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.nowNs + BigInt(ms * 1e6), fn, ms });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  setImmediate(fn: () => void): void {
    this.immediates.push(fn);
  }
  naps: number[] = [];
  /** A nap moves the fake clock on by its length, as a real one would pass. */
  nap(us: number): void {
    this.naps.push(us);
    this.advanceUs(us);
  }
  advanceUs(us: number): void {
    this.nowNs += BigInt(us) * 1000n;
  }
  /** One event-loop turn: expired timers, then the immediates queued before this turn. */
  turn(): void {
    for (const [id, t] of [...this.timers]) {
      if (t.at <= this.nowNs) {
        this.timers.delete(id);
        t.fn();
      }
    }
    const now = this.immediates;
    this.immediates = [];
    for (const fn of now) fn();
  }
}

function setup(spinWindowMs = 1.5, napUs = 0): { host: FakeHost; s: PreciseScheduler; fired: string[] } {
  const host = new FakeHost();
  return { host, s: new PreciseScheduler({ host, spinWindowMs, napUs }), fired: [] };
}

test('fires each wait on the first turn at or after its due time, in due order', () => {
  const { host, s, fired } = setup();
  s.schedule(0.5, () => fired.push('a@500us'));
  s.schedule(0.1, () => fired.push('b@100us'));
  s.schedule(0.3, () => fired.push('c@300us'));
  assert.equal(s.pending, 3);
  assert.ok(s.isPolling, 'waits within the spin window poll');
  assert.equal(host.timers.size, 0, 'no coarse timer for sub-window waits');
  const log: string[] = [];
  for (let us = 0; us <= 600; us += 50) {
    host.turn();
    log.push(`${us}:${fired.join(',')}`);
    host.advanceUs(50);
  }
  // b is due at 100 us: it fires on the turn at 100 us (not at 50), c at 300, a at 500.
  assert.equal(log[1], '50:');
  assert.equal(log[2], '100:b@100us');
  assert.equal(log[5], '250:b@100us');
  assert.equal(log[6], '300:b@100us,c@300us');
  assert.equal(log[10], '500:b@100us,c@300us,a@500us');
  assert.equal(s.pending, 0);
  assert.ok(!s.isPolling, 'stops polling once nothing is pending');
  assert.equal(host.immediates.length, 0);
});

test('equal due times fire in scheduling order; a zero wait fires at once', () => {
  const { host, s, fired } = setup();
  for (const name of ['x', 'y', 'z']) s.schedule(0.2, () => fired.push(name));
  s.schedule(0, () => fired.push('now'));
  assert.deepEqual(fired, ['now']);
  host.advanceUs(200);
  host.turn();
  assert.deepEqual(fired, ['now', 'x', 'y', 'z']);
});

test('a long wait sleeps on one coarse timer, then polls for the last spin window', () => {
  const { host, s, fired } = setup(1.5);
  s.schedule(10.25, () => fired.push('long'));
  assert.ok(!s.isPolling, 'does not poll while the wait is far away');
  assert.equal(host.timers.size, 1);
  const [t] = [...host.timers.values()];
  assert.equal(t?.ms, 8, 'sleeps until about one spin window before the due time (10.25 - 1.5, floored)');
  host.advanceUs(8_000);
  host.turn(); // the timer fires: 2.25 ms left, still outside the window, so a second short timer
  assert.ok(!s.isPolling);
  assert.equal(host.timers.size, 1);
  host.advanceUs(1_000);
  host.turn(); // 1.25 ms left: inside the window, polling now
  assert.ok(s.isPolling);
  let turns = 0;
  while (fired.length === 0) {
    host.advanceUs(100);
    host.turn();
    turns++;
  }
  assert.equal(host.nowNs - 1_000_000_000n, 10_300_000n, 'fired on the first 100-us turn after 10.25 ms');
  assert.equal(turns, 13);
  assert.ok(!s.isPolling && !s.hasTimer, 'idle again');
});

test('an earlier wait replaces a later coarse timer; a later one keeps it', () => {
  const { host, s, fired } = setup(1);
  s.schedule(50, () => fired.push('late'));
  assert.equal([...host.timers.values()][0]?.ms, 49);
  s.schedule(80, () => fired.push('later'));
  assert.equal(host.timers.size, 1, 'the armed timer already wakes early enough');
  assert.equal([...host.timers.values()][0]?.ms, 49);
  s.schedule(5, () => fired.push('early'));
  assert.equal(host.timers.size, 1);
  assert.equal([...host.timers.values()][0]?.ms, 4, 're-armed for the earlier wait');
  s.schedule(0.5, () => fired.push('soon'));
  assert.ok(s.isPolling);
  assert.equal(host.timers.size, 0, 'polling replaces the timer');
  host.advanceUs(500);
  host.turn();
  assert.deepEqual(fired, ['soon']);
  assert.ok(!s.isPolling, 'the next wait is 4.5 ms away: back to a timer');
  assert.equal([...host.timers.values()][0]?.ms, 3);
});

test('a wait scheduled from a firing callback is honoured', () => {
  const { host, s, fired } = setup();
  s.schedule(0.1, () => {
    fired.push('first');
    s.schedule(0.2, () => fired.push('second'));
  });
  host.advanceUs(100);
  host.turn();
  assert.deepEqual(fired, ['first']);
  host.advanceUs(150);
  host.turn();
  assert.deepEqual(fired, ['first']);
  host.advanceUs(50);
  host.turn();
  assert.deepEqual(fired, ['first', 'second']);
});

test('many random waits fire in nondecreasing due order', () => {
  const { host, s } = setup(1.5);
  const dues: number[] = [];
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) as number;
  for (let i = 0; i < 500; i++) {
    const ms = rand() * 5;
    s.schedule(ms, () => dues.push(ms));
  }
  for (let i = 0; i < 200; i++) {
    host.advanceUs(30);
    host.turn();
  }
  assert.equal(dues.length, 500);
  for (let i = 1; i < dues.length; i++) assert.ok((dues[i - 1] as number) <= (dues[i] as number) + 1e-6);
});

test('a polling turn naps while the earliest wait is further than a nap and its margin away', () => {
  const { host, s, fired } = setup(1.5, 50);
  s.schedule(0.3, () => fired.push('a'));
  host.turn(); // 300 us left: nap 50 us
  assert.deepEqual(host.naps, [50]);
  host.turn(); // 250 left
  host.turn(); // 200
  host.turn(); // 150
  assert.deepEqual(host.naps, [50, 50, 50, 50]);
  host.turn(); // 100 left: not more than 50 + 60 away, no nap
  assert.equal(host.naps.length, 4);
  assert.equal(fired.length, 0);
  host.advanceUs(100);
  host.turn();
  assert.deepEqual(fired, ['a']);
  assert.equal(s.naps, 4);
  // A wait that falls due during a nap fires right after it, in the same turn.
  s.schedule(0.15, () => fired.push('b'));
  host.advanceUs(110);
  host.turn(); // 40 us left after the advance: no nap
  assert.deepEqual(fired, ['a']);
  host.advanceUs(40);
  host.turn();
  assert.deepEqual(fired, ['a', 'b']);
});

test('rejects invalid waits and windows', () => {
  assert.throws(() => new PreciseScheduler({ spinWindowMs: -1 }), RangeError);
  assert.throws(() => new PreciseScheduler({ napUs: Number.NaN }), RangeError);
  const { s } = setup();
  assert.throws(() => s.schedule(Number.NaN, () => undefined), RangeError);
});

test('real clock: sub-millisecond delays are no longer rounded up to a timer turn', async () => {
  // Loose bound for a shared 2-core machine: the median lateness of 200 waits of 0.1-0.3 ms stays well
  // under the ~1 ms a setTimeout adds. The precise figures come from bench/quorum-latency.ts.
  const delay = new SimulatedDelay(0.1, 0.3);
  const late: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = process.hrtime.bigint();
    await delay.wait();
    late.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  late.sort((a, b) => a - b);
  const median = late[100] as number;
  assert.ok(median >= 0.1, `waited at least the minimum (median ${median})`);
  assert.ok(median < 0.9, `median wait ${median.toFixed(3)} ms for a 0.1-0.3 ms delay`);
});

test('SimulatedDelay: the precise scheduler by default, setTimeout when coarse (QKV_COARSE_DELAY=1)', async () => {
  const { host, s } = setup();
  const precise = new SimulatedDelay(0.2, 0.2, s, false);
  let done = false;
  void precise.wait().then(() => (done = true));
  assert.equal(s.pending, 1, 'the wait is on the scheduler');
  host.advanceUs(200);
  host.turn();
  await Promise.resolve();
  assert.ok(done);
  const coarse = new SimulatedDelay(0.2, 0.2, s, true);
  const waiting = coarse.wait();
  assert.equal(s.pending, 0, 'a coarse wait does not use the scheduler');
  await waiting;
  assert.equal(coarseDelayRequested({ QKV_COARSE_DELAY: '1' }), true);
  assert.equal(coarseDelayRequested({}), false);
});
