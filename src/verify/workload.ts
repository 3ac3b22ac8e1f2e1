/**
 * The workload: concurrent clients doing get / put / cas / delete on a small set of keys over the raw HTTP
 * API, one request per operation (no retries), every operation recorded as an invoke and a completion in
 * the history format of src/check.
 *
 * Outcomes: a definite answer is `ok` or `fail` (412 for cas, 404 for delete: the key was read); a write
 * that timed out, lost its connection or got a 5xx is `info` (it may still take effect), after which the
 * client continues as a new process, as in Jepsen; a read that did not succeed is `fail` (no effect).
 */
import type { HistoryEvent, OpFunction } from '../check/history.js';
import type { JsonValue } from '../kv/json.js';

export interface OpResult {
  readonly type: 'ok' | 'fail' | 'info';
  /** get ok: the value read (null when missing). */
  readonly value?: JsonValue;
  /** Short reason for fail / info (status code or error name), for the report. */
  readonly reason?: string;
  /** The leader named by the answer, if any. */
  readonly leader?: number;
}

export interface RequestOptions {
  readonly timeoutMs: number;
  readonly consistency?: 'linearizable' | 'lease' | 'stale';
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly location?: string;
}

async function http(url: string, method: string, body: unknown, timeoutMs: number): Promise<Answer> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    const j = JSON.parse(text) as unknown;
    if (typeof j === 'object' && j !== null && !Array.isArray(j)) parsed = j as Record<string, unknown>;
  } catch {
    // not JSON: keep the status only
  }
  return { status: res.status, body: parsed, location: res.headers.get('location') ?? undefined };
}

/**
 * Runs one operation against `base` (a node URL). A 307 (forwarding off) is followed once: the node did not
 * apply anything, so sending the request to the leader is still the same single operation.
 */
export async function runOp(
  base: string,
  f: OpFunction,
  key: string,
  value: JsonValue,
  opts: RequestOptions,
): Promise<OpResult> {
  const path = `/kvs/${encodeURIComponent(key)}`;
  let method = 'GET';
  let body: unknown;
  let query = '';
  if (f === 'get') query = `?consistency=${opts.consistency ?? 'linearizable'}`;
  else if (f === 'put') [method, body] = ['PUT', { value }];
  else if (f === 'delete') method = 'DELETE';
  else {
    const [expected, next] = value as [JsonValue, JsonValue];
    method = 'PUT';
    body = expected === null ? { value: next, if_version: 0 } : { value: next, if_value: expected };
  }
  const unknownOutcome = (reason: string): OpResult => ({ type: f === 'get' ? 'fail' : 'info', reason });
  let ans: Answer;
  try {
    ans = await http(base + path + query, method, body, opts.timeoutMs);
    if (ans.status === 307 && ans.location !== undefined) {
      ans = await http(new URL(ans.location, base).toString(), method, body, opts.timeoutMs);
    }
  } catch (err) {
    const e = err as Error & { cause?: { code?: unknown } };
    // A refused connection means the request was never sent: a definite failure even for a write.
    if (e.cause?.code === 'ECONNREFUSED') return { type: 'fail', reason: 'refused' };
    return unknownOutcome(e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : 'connection');
  }
  const leader = typeof ans.body.leader === 'number' ? ans.body.leader : undefined;
  const s = ans.status;
  if (f === 'get') {
    if (s === 200) return { type: 'ok', value: (ans.body.value ?? null) as JsonValue, leader };
    if (s === 404 && ans.body.error === 'Key does not exist') return { type: 'ok', value: null, leader };
    return { type: 'fail', reason: String(s), leader };
  }
  if (s === 200 || s === 201) return { type: 'ok', leader };
  if (f === 'cas' && s === 412) return { type: 'fail', reason: '412', leader };
  if (f === 'delete' && s === 404 && ans.body.error === 'Key does not exist') {
    return { type: 'fail', reason: '404', leader };
  }
  if (s >= 400 && s < 500) {
    // The request itself was refused as malformed: a bug in this runner or the server, not a fault.
    throw new Error(`${method} ${path}: unexpected ${s} ${JSON.stringify(ans.body)}`);
  }
  return { type: 'info', reason: String(s), leader };
}

export interface WorkloadOptions {
  readonly urls: readonly string[];
  readonly clients: number;
  /** Keys in use at once: every client picks among them, so each sees concurrent operations of all clients. */
  readonly keys: number;
  /**
   * Operations a key receives before the workload moves on to a fresh key in its place (0: never). As in
   * Jepsen's independent workloads: contention per key stays high, while every key's history stays small
   * enough to check, however long the run (a write of unknown outcome stays open only to its key's end).
   */
  readonly opsPerKey: number;
  readonly rng: () => number;
  /** Per-request timeout (a write that times out is unknown). */
  readonly timeoutMs: number;
  /** Pause between a client's operations, ms. */
  readonly thinkMs: number;
  /** Read level of gets (default linearizable; `lease` tests the leader lease under pauses). */
  readonly reads?: 'linearizable' | 'lease';
  /** Time origin (process.hrtime.bigint() at start). */
  readonly origin: bigint;
}

export interface WorkloadStats {
  ok: number;
  fail: number;
  info: number;
  byF: Record<OpFunction, number>;
  /** Operations whose connection was refused (never sent; not in the history). */
  refused: number;
  /** Why operations did not succeed: `<f> <outcome> <reason>` -> count. */
  reasons: Record<string, number>;
}

/** Nanoseconds since `origin`. */
export function nowNs(origin: bigint): number {
  return Number(process.hrtime.bigint() - origin);
}

export class Workload {
  readonly history: HistoryEvent[] = [];
  readonly stats: WorkloadStats = {
    ok: 0,
    fail: 0,
    info: 0,
    byF: { get: 0, put: 0, cas: 0, delete: 0 },
    reasons: {},
    refused: 0,
  };
  /** Acknowledged writes (invoke and completion times, ns), in completion order. */
  readonly writeAcks: { invoke: number; complete: number }[] = [];
  private stopped = false;
  /** The first unexpected error of a client (it stops the workload). */
  error: Error | undefined;
  private nextProcess = 0;
  private seq = 0;
  private leaderGuess = -1;
  /** Last value each key was seen to hold (for cas expectations). */
  private readonly seen = new Map<string, JsonValue>();
  private running: Promise<void>[] = [];
  /** The key each slot uses now, and how many operations it has had. */
  private readonly active: string[] = [];
  private readonly opsOn: number[] = [];
  private readonly generation: number[] = [];
  /** Every key the workload has used, in order of first use. */
  readonly usedKeys: string[] = [];

  constructor(private readonly opts: WorkloadOptions) {
    for (let i = 0; i < opts.keys; i++) {
      this.generation.push(0);
      this.opsOn.push(0);
      this.active.push(this.keyName(i));
      this.usedKeys.push(this.keyName(i));
    }
  }

  private keyName(slot: number): string {
    return this.opts.opsPerKey > 0 ? `k${slot}.${this.generation[slot] ?? 0}` : `k${slot}`;
  }

  /** A key for the next operation; a key that has had its share of operations is replaced by a fresh one. */
  private nextKey(): string {
    const slot = Math.floor(this.opts.rng() * this.active.length);
    const key = this.active[slot] as string;
    const n = (this.opsOn[slot] as number) + 1;
    this.opsOn[slot] = n;
    if (this.opts.opsPerKey > 0 && n >= this.opts.opsPerKey) {
      this.generation[slot] = (this.generation[slot] as number) + 1;
      this.opsOn[slot] = 0;
      const fresh = this.keyName(slot);
      this.active[slot] = fresh;
      this.usedKeys.push(fresh);
    }
    return key;
  }

  start(): void {
    for (let c = 0; c < this.opts.clients; c++) {
      this.running.push(
        this.client(this.nextProcess++).catch((err: unknown) => {
          this.error ??= err instanceof Error ? err : new Error(String(err));
          this.stopped = true;
        }),
      );
    }
  }

  /** No new operations; resolves when every client's current operation has completed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
    this.running = [];
    if (this.error !== undefined) throw this.error;
  }

  private target(): number {
    const n = this.opts.urls.length;
    // Mostly the node last named leader (as a real client would), sometimes any node (forwarding paths).
    if (this.leaderGuess >= 0 && this.opts.rng() < 0.7) return this.leaderGuess;
    return Math.floor(this.opts.rng() * n);
  }

  private async think(): Promise<void> {
    if (this.opts.thinkMs > 0) await new Promise((r) => setTimeout(r, this.opts.thinkMs));
  }

  private async client(initialProcess: number): Promise<void> {
    let proc = initialProcess;
    while (!this.stopped) {
      const key = this.nextKey();
      const r = this.opts.rng();
      const fresh = ++this.seq;
      let f: OpFunction;
      let value: JsonValue;
      if (r < 0.4) [f, value] = ['get', null];
      else if (r < 0.7) [f, value] = ['put', fresh];
      else if (r < 0.9) {
        const seen = this.seen.get(key);
        f = 'cas';
        value = [this.opts.rng() < 0.15 || seen === undefined ? null : seen, fresh];
      } else [f, value] = ['delete', null];
      const node = this.target();
      const invokeTime = nowNs(this.opts.origin);
      const invoke: HistoryEvent = { process: proc, type: 'invoke', f, key, value, time: invokeTime };
      this.history.push(invoke);
      const res = await runOp(this.opts.urls[node] as string, f, key, value, {
        timeoutMs: this.opts.timeoutMs,
        consistency: this.opts.reads ?? 'linearizable',
      });
      const time = nowNs(this.opts.origin);
      if (res.reason === 'refused') {
        // Never sent: no effect and nothing observed, so it is left out of the history (recording a failed
        // cas or delete would claim it read the key).
        this.history.splice(this.history.lastIndexOf(invoke), 1);
        this.stats.refused++;
        this.leaderGuess = -1;
        await this.think();
        continue;
      }
      const outValue = f === 'get' ? (res.value ?? null) : value;
      this.history.push({ process: proc, type: res.type, f, key, value: outValue, time });
      this.stats[res.type]++;
      this.stats.byF[f]++;
      if (res.reason !== undefined) {
        const r = `${f} ${res.type} ${res.reason}`;
        this.stats.reasons[r] = (this.stats.reasons[r] ?? 0) + 1;
      }
      if (res.leader !== undefined && res.leader >= 1 && res.leader <= this.opts.urls.length) {
        this.leaderGuess = res.leader - 1;
      } else if (res.type !== 'ok') this.leaderGuess = -1;
      if (res.type === 'ok') {
        if (f === 'get') this.seen.set(key, outValue);
        else if (f === 'put') this.seen.set(key, value);
        else if (f === 'cas') this.seen.set(key, (value as JsonValue[])[1] as JsonValue);
        else this.seen.set(key, null);
        if (f !== 'get') this.writeAcks.push({ invoke: invokeTime, complete: time });
      }
      if (res.type === 'info') proc = this.nextProcess++ + 1000;
      await this.think();
    }
  }
}
