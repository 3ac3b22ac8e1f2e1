/**
 * The load generator behind `quorumkv bench` and the experiments: closed loop (C clients, each sending its
 * next request when the previous one answers) or open loop (requests started at a fixed rate whatever the
 * answers; latency counted from the intended start, so a stalled server is not hidden). Mix of gets and puts
 * over a uniform key space; HDR latency histograms; staleness of reads (staleness.ts).
 */
import { LatencyHistogram, type LatencySummary } from './histogram.js';
import { ModeClient, type OpResult, type Session, type Target } from './adapters.js';
import { StalenessTracker, type StalenessSummary } from './staleness.js';
import { makeRng } from '../raft/rng.js';

export interface LoadOptions {
  readonly target: Target;
  /** Closed loop: concurrent clients. Open loop: client sessions the requests are spread over. */
  readonly clients: number;
  /** Open loop when set: requests per second. */
  readonly rate?: number;
  readonly durationMs: number;
  /** Fraction of puts, 0..1. */
  readonly putRatio: number;
  readonly keys: number;
  readonly valueSize: number;
  /** Key prefix (default `k`). */
  readonly keyPrefix?: string;
  /** Draw a progress bar on stderr. */
  readonly progress?: boolean;
  /** Seed of the key/op choices. */
  readonly seed?: number;
  /** Open loop: most requests in flight; beyond it a request is dropped and counted (default 4096). */
  readonly maxInFlight?: number;
  /** Called after every operation (used by the failover experiment). */
  readonly onOp?: (ev: OpEvent) => void;
}

export interface OpEvent {
  readonly kind: 'put' | 'get';
  /** performance.now() at the (intended) start and at the answer. */
  readonly start: number;
  readonly end: number;
  readonly result: OpResult;
}

export interface LoadResult {
  readonly mode: string;
  readonly consistency?: string;
  readonly loop: 'closed' | 'open';
  readonly clients: number;
  readonly rate?: number;
  readonly putRatio: number;
  readonly keys: number;
  readonly valueSize: number;
  readonly nodes: number;
  readonly elapsedS: number;
  /** Successful operations. */
  readonly ops: number;
  readonly throughput: number;
  readonly put: LatencySummary;
  readonly get: LatencySummary;
  readonly errors: {
    readonly total: number;
    readonly byStatus: Readonly<Record<string, number>>;
    readonly sample?: string;
  };
  readonly dropped: number;
  readonly staleness: StalenessSummary;
}

function bar(frac: number, text: string): string {
  const w = 30;
  const n = Math.round(Math.min(1, frac) * w);
  return `\r[${'#'.repeat(n)}${'.'.repeat(w - n)}] ${(frac * 100).toFixed(0).padStart(3)}% ${text}`;
}

export function validateLoadOptions(o: LoadOptions): void {
  const bad = (m: string): never => {
    throw new Error(m);
  };
  if (!Number.isInteger(o.clients) || o.clients < 1) bad('clients must be a positive integer');
  if (o.rate !== undefined && !(o.rate > 0)) bad('rate must be positive');
  if (!(o.durationMs > 0)) bad('duration must be positive');
  if (!(o.putRatio >= 0 && o.putRatio <= 1)) bad('put ratio must be in [0, 1]');
  if (!Number.isInteger(o.keys) || o.keys < 1) bad('keys must be a positive integer');
  if (!Number.isInteger(o.valueSize) || o.valueSize < 1) bad('value size must be a positive integer');
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  validateLoadOptions(o);
  const open = o.rate !== undefined;
  // Every request may go to the same node (all writes go to a leader): give each node's pool as many
  // connections as requests can be in flight, so the generator never queues requests itself.
  const client = new ModeClient(o.target, open ? Math.min(o.maxInFlight ?? 4096, 256) : o.clients);
  const putH = new LatencyHistogram();
  const getH = new LatencyHistogram();
  const stale = new StalenessTracker();
  const byStatus: Record<string, number> = {};
  let errors = 0;
  let sample: string | undefined;
  let dropped = 0;
  const nextSeq = new Map<string, number>();
  const random = makeRng(o.seed ?? 1); // key and operation choices
  const prefix = o.keyPrefix ?? 'k';
  const sessions: Session[] = Array.from({ length: o.clients }, () => ({ meta: null }));

  const one = async (session: Session, intended: number): Promise<boolean> => {
    const key = `${prefix}${Math.floor(random() * o.keys)}`;
    const isPut = random() < o.putRatio;
    let res: OpResult;
    let behindReq: ReturnType<StalenessTracker['snapshot']>;
    if (isPut) {
      const seq = (nextSeq.get(key) ?? 0) + 1;
      nextSeq.set(key, seq);
      res = await client.put(session, key, seq, o.valueSize);
    } else {
      behindReq = stale.snapshot(key);
      res = await client.get(session, key);
    }
    const end = performance.now();
    if (res.ok) {
      (isPut ? putH : getH).record(end - intended);
      if (isPut && res.order !== undefined) stale.ack(key, res.order);
      if (!isPut) stale.observe(key, behindReq, res.order);
    } else {
      errors++;
      byStatus[String(res.status)] = (byStatus[String(res.status)] ?? 0) + 1;
      sample ??= res.error;
    }
    o.onOp?.({ kind: isPut ? 'put' : 'get', start: intended, end, result: res });
    return res.ok;
  };

  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  let progressTimer: NodeJS.Timeout | undefined;
  if (o.progress === true) {
    progressTimer = setInterval(() => {
      const el = performance.now() - t0;
      const done = putH.count + getH.count;
      process.stderr.write(
        bar(
          el / o.durationMs,
          `${(el / 1000).toFixed(1)}s ops ${done} (${Math.round(done / (el / 1000))}/s) errors ${errors}`,
        ),
      );
    }, 200);
  }

  try {
    if (!open) {
      await Promise.all(
        sessions.map(async (s) => {
          while (performance.now() < deadline) {
            const before = performance.now();
            const ok = await one(s, before);
            // A failing node answers at once: back off a little so errors do not spin the CPU.
            if (!ok && performance.now() - before < 2) await new Promise((r) => setTimeout(r, 2));
          }
        }),
      );
    } else {
      const interval = 1000 / (o.rate ?? 1);
      const maxInFlight = o.maxInFlight ?? 4096;
      const inFlight = new Set<Promise<void>>();
      let issued = 0;
      while (performance.now() < deadline) {
        const now = performance.now();
        // Start every request whose intended time has come.
        while (t0 + issued * interval <= now && t0 + issued * interval < deadline) {
          const intended = t0 + issued * interval;
          const s = sessions[issued % sessions.length];
          issued++;
          if (inFlight.size >= maxInFlight) {
            dropped++;
            continue;
          }
          const p: Promise<void> = one(s, intended)
            .then(() => undefined)
            .finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
        await new Promise((r) =>
          setTimeout(r, Math.max(0, Math.min(interval, t0 + issued * interval - performance.now()))),
        );
      }
      await Promise.all(inFlight);
    }
  } finally {
    if (progressTimer !== undefined) {
      clearInterval(progressTimer);
      process.stderr.write(bar(1, 'done') + '\n');
    }
    await client.close();
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const ops = putH.count + getH.count;
  return {
    mode: o.target.mode,
    consistency: o.target.mode === 'raft' ? (o.target.consistency ?? 'linearizable') : undefined,
    loop: open ? 'open' : 'closed',
    clients: o.clients,
    rate: o.rate,
    putRatio: o.putRatio,
    keys: o.keys,
    valueSize: o.valueSize,
    nodes: o.target.nodes.length,
    elapsedS,
    ops,
    throughput: ops / elapsedS,
    put: putH.summary(),
    get: getH.summary(),
    errors: { total: errors, byStatus, sample },
    dropped,
    staleness: stale.summary(),
  };
}
