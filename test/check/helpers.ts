import type { HistoryEvent } from '../../src/check/linearizability.js';
import type { JsonValue } from '../../src/kv/json.js';

/** A compact description of one operation for hand-written histories. */
export interface OpSpec {
  p: number;
  f: 'get' | 'put' | 'cas' | 'delete';
  k?: string;
  /** Invoke value: put value, cas [expected, new]. */
  v?: JsonValue;
  /** Completion value: for get ok, the value read (null = missing). */
  out?: JsonValue;
  r: 'ok' | 'fail' | 'info' | 'open';
  /** Invoke and completion times (the completion is omitted for `open`). */
  t: [number, number];
}

/** Builds a history: events of all specs, sorted by time (invokes before completions on ties). */
export function history(specs: OpSpec[]): HistoryEvent[] {
  const events: { e: HistoryEvent; order: number }[] = [];
  for (const s of specs) {
    const key = s.k ?? 'x';
    const inv: HistoryEvent =
      s.v === undefined
        ? { process: s.p, type: 'invoke', f: s.f, key, time: s.t[0] }
        : { process: s.p, type: 'invoke', f: s.f, key, value: s.v, time: s.t[0] };
    events.push({ e: inv, order: 0 });
    if (s.r !== 'open') {
      const out = s.f === 'get' ? (s.out ?? null) : s.v;
      const done: HistoryEvent =
        out === undefined
          ? { process: s.p, type: s.r, f: s.f, key, time: s.t[1] }
          : { process: s.p, type: s.r, f: s.f, key, value: out, time: s.t[1] };
      events.push({ e: done, order: 1 });
    }
  }
  events.sort((a, b) => a.e.time - b.e.time || a.order - b.order);
  return events.map((x) => x.e);
}
