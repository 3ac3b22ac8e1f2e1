/**
 * Client operations per second and their latency, per second over the last minutes, for the dashboard.
 * A Fastify `onResponse` hook records each client request (key-value and chat routes; not streams, status
 * or the dashboard itself) into the current second's slot: a count and a log-scale latency histogram, from
 * which p50 and p99 are read. Recording is a few arithmetic operations: no allocation per request.
 */
import type { FastifyInstance } from 'fastify';

/** Seconds kept. */
export const METER_SECONDS = 300;
/** Buckets per doubling of the latency (in µs): about 19% wide. */
const PER_OCTAVE = 4;
const BUCKETS = 26 * PER_OCTAVE; // up to 2^26 µs = 67 s

export interface SecondSample {
  /** Unix time of the second, in seconds. */
  readonly t: number;
  readonly ops: number;
  /** Milliseconds; null without operations. */
  readonly p50: number | null;
  readonly p99: number | null;
}

interface Slot {
  t: number;
  ops: number;
  readonly hist: Uint32Array;
}

function bucketOf(ms: number): number {
  const us = ms * 1000;
  if (us < 1) return 0;
  return Math.min(BUCKETS - 1, Math.floor(Math.log2(us) * PER_OCTAVE));
}

/** The upper bound of a bucket, in ms. */
function bucketMs(b: number): number {
  return 2 ** ((b + 1) / PER_OCTAVE) / 1000;
}

function quantile(hist: Uint32Array, count: number, q: number): number | null {
  if (count === 0) return null;
  const rank = Math.ceil(q * count);
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b] as number;
    if (seen >= rank) return Math.round(bucketMs(b) * 1000) / 1000;
  }
  return null;
}

/** Whether a route is a client operation the meter counts. */
export function isClientRoute(url: string | undefined): boolean {
  if (url === undefined) return false;
  if (url.endsWith('/stream') || url === '/watch') return false;
  return (
    url.startsWith('/kvs') ||
    url === '/txn' ||
    url === '/write' ||
    url === '/read' ||
    (url.startsWith('/chat/') && !url.startsWith('/chat/auth'))
  );
}

export class OpsMeter {
  private readonly slots: Slot[] = Array.from({ length: METER_SECONDS }, () => ({
    t: 0,
    ops: 0,
    hist: new Uint32Array(BUCKETS),
  }));

  constructor(private readonly now: () => number = Date.now) {}

  /** Counts one operation that took `ms`. */
  record(ms: number): void {
    const t = Math.floor(this.now() / 1000);
    const slot = this.slots[t % METER_SECONDS] as Slot;
    if (slot.t !== t) {
      slot.t = t;
      slot.ops = 0;
      slot.hist.fill(0);
    }
    slot.ops++;
    const b = bucketOf(ms);
    slot.hist[b] = (slot.hist[b] as number) + 1;
  }

  /** The last `seconds` complete seconds (the current one excluded), oldest first; empty seconds have 0 ops. */
  samples(seconds = METER_SECONDS - 1): SecondSample[] {
    const now = Math.floor(this.now() / 1000);
    const out: SecondSample[] = [];
    for (let t = now - Math.min(seconds, METER_SECONDS - 1); t < now; t++) {
      const slot = this.slots[t % METER_SECONDS] as Slot;
      if (slot.t !== t) out.push({ t, ops: 0, p50: null, p99: null });
      else
        out.push({
          t,
          ops: slot.ops,
          p50: quantile(slot.hist, slot.ops, 0.5),
          p99: quantile(slot.hist, slot.ops, 0.99),
        });
    }
    return out;
  }

  /** Installs the recording hook on a server. */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', (req, reply, done) => {
      if (isClientRoute(req.routeOptions.url)) this.record(reply.elapsedTime);
      done();
    });
  }
}
