/**
 * A randomized multi-client workload against causal replicas, with partitions and failures injected, recorded
 * as a history for the causal checker.
 */
import type { CausalOp } from '../../../src/check/causal.js';
import { call, type ReplicaProcess } from './helpers.js';

export interface WorkloadOptions {
  readonly durationMs: number;
  readonly clients: number;
  readonly keys: number;
  readonly seed: number;
  /** Milliseconds between fault events (heal, partition one replica, or fail/recover one). */
  readonly faultEveryMs: number;
  /** Called every `checkEveryMs` with the history so far; returning true stops the run early. */
  readonly stopWhen?: (history: readonly CausalOp[]) => boolean;
  readonly checkEveryMs?: number;
}

export interface WorkloadResult {
  readonly history: CausalOp[];
  readonly unavailable: number;
  readonly indeterminate: number;
  readonly faults: number;
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runWorkload(rs: readonly ReplicaProcess[], o: WorkloadOptions): Promise<WorkloadResult> {
  const rand = rng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const history: CausalOp[] = [];
  const addrs = rs.map((r) => r.address);
  const deadline = Date.now() + o.durationMs;
  let stop = false;
  let unavailable = 0;
  let indeterminate = 0;
  let faults = 0;

  const client = async (i: number): Promise<void> => {
    let gen = 0;
    let id = `c${i}.${gen}`;
    let meta: unknown = null;
    let at = pick(rs);
    let n = 0;
    let follow: string | undefined;
    while (!stop && Date.now() < deadline) {
      // Half the reads are followed by a write of the same key at the same replica (read-modify-write), which
      // makes the dependency visible in the history; otherwise the client may move to another replica.
      const rmw = follow;
      follow = undefined;
      if (rmw === undefined && rand() < 0.3) at = pick(rs);
      const key = rmw ?? `k${Math.floor(rand() * o.keys)}`;
      const r = rand();
      const type = rmw !== undefined ? 'put' : r < 0.4 ? 'put' : r < 0.5 ? 'delete' : 'get';
      const value = `${id}-${n++}`;
      const body = type === 'put' ? { value, 'causal-metadata': meta } : { 'causal-metadata': meta };
      const method = type === 'put' ? 'PUT' : type === 'delete' ? 'DELETE' : 'GET';
      let res;
      try {
        res = await call(at.url, method, `/kvs/${key}`, body, {}, 2000);
      } catch {
        if (type !== 'get') {
          history.push({ client: id, type, key, value, indeterminate: true });
          indeterminate++;
          gen++;
          id = `c${i}.${gen}`;
          meta = null;
        }
        at = pick(rs);
        continue;
      }
      if (res.status === 503) {
        unavailable++;
        at = pick(rs);
        await sleep(10);
        continue;
      }
      const got = res.body['causal-metadata'];
      if (type === 'put' && (res.status === 200 || res.status === 201)) {
        history.push({ client: id, type, key, value });
      } else if (type === 'delete' && res.status === 200) {
        history.push({ client: id, type, key, value });
      } else if (res.status === 404) {
        // A read, or a delete of a key this replica does not hold: both observe "not found".
        history.push({ client: id, type: 'get', key, value: null });
      } else if (type === 'get' && res.status === 200) {
        const v = res.body.value;
        history.push({ client: id, type: 'get', key, value: typeof v === 'string' ? v : JSON.stringify(v) });
      } else {
        throw new Error(`unexpected ${res.status} ${JSON.stringify(res.body)} for ${method} at ${at.address}`);
      }
      if (got !== undefined) meta = got;
      if (type === 'get' && rand() < 0.5) follow = key;
    }
  };

  const adversary = async (): Promise<void> => {
    while (!stop && Date.now() < deadline) {
      await sleep(o.faultEveryMs);
      if (stop) break;
      await Promise.all(rs.map((r) => call(r.url, 'POST', '/admin/heal').catch(() => undefined)));
      const victim = pick(rs);
      const f = rand();
      faults++;
      if (f < 0.6) {
        await call(victim.url, 'POST', '/admin/partition', { peers: addrs.filter((a) => a !== victim.address) });
      } else if (f < 0.8) {
        await call(victim.url, 'POST', '/admin/fail');
        await sleep(o.faultEveryMs / 2);
        await call(victim.url, 'POST', '/admin/recover', undefined, {}, 5000);
      } else {
        // A split where the victim can still reach one peer: asymmetric views.
        await call(victim.url, 'POST', '/admin/partition', {
          peers: [pick(addrs.filter((a) => a !== victim.address))],
        });
      }
    }
  };

  const watcher = async (): Promise<void> => {
    if (o.stopWhen === undefined) return;
    while (!stop && Date.now() < deadline) {
      await sleep(o.checkEveryMs ?? 1000);
      if (o.stopWhen(history)) stop = true;
    }
  };

  await Promise.all([...Array.from({ length: o.clients }, (_, i) => client(i)), adversary(), watcher()]);
  stop = true;
  for (const r of rs) {
    await call(r.url, 'POST', '/admin/heal').catch(() => undefined);
    await call(r.url, 'POST', '/admin/recover', undefined, {}, 5000).catch(() => undefined);
  }
  return { history, unavailable, indeterminate, faults };
}

/**
 * A scripted session: cut the third replica off, write at the first, read the write back at the third with
 * the write's metadata (a correct replica answers 503 until it has the write), heal, read again until served.
 * Returns the recorded operations and how many 503s the cut-off read got.
 */
export async function probeSession(rs: readonly ReplicaProcess[]): Promise<{ history: CausalOp[]; refused: number }> {
  const [r1, r2, r3] = rs as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
  const history: CausalOp[] = [];
  const client = 'probe';
  await call(r3.url, 'POST', '/admin/partition', { peers: [r1.address, r2.address] });
  const w = await call(r1.url, 'PUT', '/kvs/probe', { value: 'probe-1', 'causal-metadata': null });
  if (w.status !== 201 && w.status !== 200) throw new Error(`probe write failed: ${w.status}`);
  history.push({ client, type: 'put', key: 'probe', value: 'probe-1' });
  let meta = w.body['causal-metadata'];
  let refused = 0;
  const read = async (): Promise<boolean> => {
    const g = await call(r3.url, 'GET', '/kvs/probe', { 'causal-metadata': meta });
    if (g.status === 503) {
      refused++;
      return false;
    }
    const v = g.body.value;
    history.push({ client, type: 'get', key: 'probe', value: g.status === 404 ? null : String(v) });
    meta = g.body['causal-metadata'] ?? meta;
    return true;
  };
  await read();
  await call(r3.url, 'POST', '/admin/heal');
  const deadline = Date.now() + 10_000;
  while (!(await read()) && Date.now() < deadline) await sleep(50);
  return { history, refused };
}
