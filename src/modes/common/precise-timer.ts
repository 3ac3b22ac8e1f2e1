/**
 * Sub-millisecond waits without burning a core when idle.
 *
 * Node's `setTimeout` rounds every wait up to at least 1 ms and then to the next timer turn, so a simulated
 * link delay of 0.1–1 ms became about 1–2 ms. This scheduler keeps the pending waits in a min-heap ordered
 * by their due time on a monotonic nanosecond clock (`process.hrtime.bigint()`), and drives it in two ways:
 *
 * - while the earliest wait is due within `spinWindowMs` (default 1.5 ms), it polls the clock on every turn
 *   of the event loop with `setImmediate` — precise to a few microseconds. A turn that finds the earliest
 *   wait still more than `napUs` + 60 µs away first sleeps `napUs` (default 50 µs) in `Atomics.wait`: the
 *   thread gives its CPU to other processes (on this 2-core machine, the followers) instead of spinning,
 *   polling then costs about a third of a core instead of a whole one, and I/O waits at most one nap;
 * - when the earliest wait is further away, one `setTimeout` sleeps until it is about `spinWindowMs` away,
 *   then polling takes over. Nothing pending: nothing armed, no CPU used.
 *
 * Waits due at the same time fire in the order they were scheduled. The clock and the two event-loop hooks
 * can be replaced (tests drive the scheduler deterministically with a fake clock).
 */

/** The clock and event-loop hooks the scheduler runs on. */
export interface TimerHost {
  /** Monotonic time in nanoseconds. */
  now(): bigint;
  /** Calls `fn` after about `ms` milliseconds (coarse); returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** Calls `fn` on the next turn of the event loop, after pending I/O. */
  setImmediate(fn: () => void): void;
  /** Blocks the thread for about `us` microseconds without using the CPU. */
  nap(us: number): void;
}

const napCell = new Int32Array(new SharedArrayBuffer(4));

export const nodeTimerHost: TimerHost = {
  now: () => process.hrtime.bigint(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
  setImmediate: (fn) => {
    setImmediate(fn);
  },
  // Nothing ever notifies this cell: the wait always runs into its timeout (fractions of a ms allowed).
  nap: (us) => void Atomics.wait(napCell, 0, 0, us / 1000),
};

/** Margin kept between the end of a nap and the earliest due time (a nap may overshoot by this much). */
const NAP_MARGIN_NS = 60_000n;

interface Pending {
  readonly due: bigint;
  readonly seq: number;
  readonly fire: () => void;
}

function before(a: Pending, b: Pending): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/** A binary min-heap of pending waits by (due, seq). */
class PendingHeap {
  private readonly items: Pending[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Pending | undefined {
    return this.items[0];
  }

  push(p: Pending): void {
    const a = this.items;
    a.push(p);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i] as Pending, a[parent] as Pending)) break;
      [a[i], a[parent]] = [a[parent] as Pending, a[i] as Pending];
      i = parent;
    }
  }

  pop(): Pending | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l] as Pending, a[m] as Pending)) m = l;
        if (r < a.length && before(a[r] as Pending, a[m] as Pending)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as Pending, a[i] as Pending];
        i = m;
      }
    }
    return top;
  }
}

export interface PreciseSchedulerOptions {
  /** Poll with setImmediate while the earliest wait is due within this many ms (default 1.5). */
  readonly spinWindowMs?: number;
  /** Sleep this many µs in a polling turn whose earliest wait is further away than that (default 50; 0: never). */
  readonly napUs?: number;
  readonly host?: TimerHost;
}

export class PreciseScheduler {
  private readonly heap = new PendingHeap();
  private readonly host: TimerHost;
  private readonly spinWindowNs: bigint;
  private readonly spinWindowMs: number;
  private readonly napNs: bigint;
  private readonly napUs: number;
  private seq = 0;
  private polling = false;
  private timer: unknown = undefined;
  private timerWakeAt = 0n;
  /** How many event-loop turns were spent polling, and how many of them napped (tests, diagnostics). */
  polls = 0;
  naps = 0;

  constructor(opts: PreciseSchedulerOptions = {}) {
    this.host = opts.host ?? nodeTimerHost;
    this.spinWindowMs = opts.spinWindowMs ?? 1.5;
    if (!(this.spinWindowMs >= 0) || !Number.isFinite(this.spinWindowMs)) {
      throw new RangeError(`invalid spin window ${this.spinWindowMs}`);
    }
    this.spinWindowNs = BigInt(Math.round(this.spinWindowMs * 1e6));
    this.napUs = opts.napUs ?? 50;
    if (!(this.napUs >= 0) || !Number.isFinite(this.napUs)) throw new RangeError(`invalid nap ${this.napUs}`);
    this.napNs = BigInt(Math.round(this.napUs * 1000));
  }

  /** Waits still pending. */
  get pending(): number {
    return this.heap.size;
  }

  /** Whether the scheduler is polling the clock on every event-loop turn now. */
  get isPolling(): boolean {
    return this.polling;
  }

  /** Whether a coarse timer is armed now. */
  get hasTimer(): boolean {
    return this.timer !== undefined;
  }

  /** Calls `fn` once `ms` milliseconds (fractions allowed) have passed on the clock; ms <= 0 calls it now. */
  schedule(ms: number, fn: () => void): void {
    if (!Number.isFinite(ms)) throw new RangeError(`invalid wait ${ms}`);
    if (ms <= 0) {
      fn();
      return;
    }
    const due = this.host.now() + BigInt(Math.round(ms * 1e6));
    this.heap.push({ due, seq: this.seq++, fire: fn });
    this.arm();
  }

  /** A promise resolved after `ms` milliseconds (fractions allowed). */
  wait(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => this.schedule(ms, resolve));
  }

  /** Fires every wait that is due now, in (due, scheduling) order; returns how many fired. */
  runDue(): number {
    const now = this.host.now();
    let fired = 0;
    for (let p = this.heap.peek(); p !== undefined && p.due <= now; p = this.heap.peek()) {
      this.heap.pop();
      fired++;
      p.fire();
    }
    return fired;
  }

  /** Chooses how to wake up for the earliest pending wait: poll now, or a coarse timer first. */
  private arm(): void {
    if (this.polling) return;
    const first = this.heap.peek();
    if (first === undefined) {
      this.disarmTimer();
      return;
    }
    const left = first.due - this.host.now();
    if (left <= this.spinWindowNs) {
      this.disarmTimer();
      this.polling = true;
      this.host.setImmediate(() => this.poll());
      return;
    }
    // Sleep until the earliest wait is about one spin window away (setTimeout may wake up to ~1 ms late,
    // which the window absorbs), then poll. An armed timer that wakes up early enough is kept.
    const wakeAt = first.due - this.spinWindowNs;
    if (this.timer !== undefined && this.timerWakeAt <= wakeAt) return;
    this.disarmTimer();
    const sleepMs = Math.max(1, Math.floor(Number(left - this.spinWindowNs) / 1e6));
    this.timerWakeAt = wakeAt;
    this.timer = this.host.setTimer(() => {
      this.timer = undefined;
      this.runDue();
      this.arm();
    }, sleepMs);
  }

  private disarmTimer(): void {
    if (this.timer === undefined) return;
    this.host.clearTimer(this.timer);
    this.timer = undefined;
  }

  private poll(): void {
    this.polls++;
    this.polling = false;
    this.runDue();
    const first = this.heap.peek();
    if (this.napNs > 0n && first !== undefined && first.due - this.host.now() > this.napNs + NAP_MARGIN_NS) {
      this.naps++;
      this.host.nap(this.napUs);
      this.runDue();
    }
    this.arm();
  }
}

/** The process-wide scheduler the simulated link delays use. */
export const preciseScheduler = new PreciseScheduler();
