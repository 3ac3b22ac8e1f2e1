interface Event {
  readonly time: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A discrete-event queue on a virtual clock. Events at the same time run in scheduling order. */
export class EventQueue {
  private heap: Event[] = [];
  private seq = 0;
  now = 0;
  steps = 0;

  schedule(delay: number, fn: () => void): void {
    const e: Event = { time: this.now + Math.max(0, delay), seq: this.seq++, fn };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p], e)) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  /** Runs events up to virtual time `until`, calling `afterStep` after each one. */
  runUntil(until: number, afterStep: () => void): void {
    while (this.heap.length > 0 && this.heap[0].time <= until) {
      const e = this.pop();
      this.now = e.time;
      this.steps++;
      e.fn();
      afterStep();
    }
    this.now = Math.max(this.now, until);
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0];
    const last = h.pop() as Event;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && before(h[r], h[l]) ? r : l;
        if (before(last, h[c])) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
