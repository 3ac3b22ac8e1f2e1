/**
 * The four experiments of `npm run experiments`, each a function that starts the clusters it needs, drives
 * them with the load generator and returns its raw results (written to results/*.json by main.ts).
 */
import { readFileSync } from 'node:fs';
import type { LatencySummary } from '../bench/histogram.js';
import { runLoad, type LoadResult, type OpEvent } from '../bench/loadgen.js';
import type { RaftConsistency, Target } from '../bench/adapters.js';
import { causalAvailable, startBenchCluster, type BenchCluster, type ClusterSpec } from '../bench/clusters.js';
import type { StalenessSummary } from '../bench/staleness.js';
import type { ExperimentConfig } from './config.js';

export type Log = (line: string) => void;

/** The figures of one load run that the report uses (the full LoadResult is kept in `run`). */
export interface Point {
  readonly label: string;
  readonly throughput: number;
  readonly put: LatencySummary;
  readonly get: LatencySummary;
  readonly staleness: StalenessSummary;
  readonly errors: number;
  readonly run: LoadResult;
}

function point(label: string, run: LoadResult): Point {
  return {
    label,
    throughput: run.throughput,
    put: run.put,
    get: run.get,
    staleness: run.staleness,
    errors: run.errors.total,
    run,
  };
}

function describe(p: Point): string {
  return `${p.label}: ${p.throughput.toFixed(0)} ops/s, put p50/p99 ${p.put.p50Ms.toFixed(2)}/${p.put.p99Ms.toFixed(2)} ms, get p50/p99 ${p.get.p50Ms.toFixed(2)}/${p.get.p99Ms.toFixed(2)} ms, stale ${(p.staleness.fraction * 100).toFixed(1)}%, errors ${p.errors}`;
}

async function withCluster<T>(spec: ClusterSpec, f: (c: BenchCluster) => Promise<T>): Promise<T> {
  const c = await startBenchCluster(spec);
  try {
    return await f(c);
  } finally {
    await c.stop();
  }
}

function target(c: BenchCluster, consistency?: RaftConsistency): Target {
  return { mode: c.mode, nodes: c.nodes, writeNodes: c.writeNodes, consistency };
}

/** A warm-up run (discarded: JIT, connections), then the measured run. */
async function measure(cfg: ExperimentConfig, t: Target, clients: number, seed: number): Promise<LoadResult> {
  const base = { target: t, clients, putRatio: cfg.putRatio, keys: cfg.keys, valueSize: cfg.valueSize };
  await runLoad({ ...base, durationMs: cfg.warmupMs, seed: seed + 1000, keyPrefix: 'warm' });
  return runLoad({ ...base, durationMs: cfg.pointMs, seed });
}

export interface QuorumPoint extends Point {
  readonly writeQuorum: number;
  readonly delay: string;
  readonly minDelay: number;
  readonly maxDelay: number;
}

/** (a) Quorum mode: W = 1..N at each delay setting. */
export async function quorumSweep(cfg: ExperimentConfig, log: Log): Promise<QuorumPoint[]> {
  const out: QuorumPoint[] = [];
  for (const d of cfg.delays) {
    for (const w of cfg.writeQuorums) {
      const spec: ClusterSpec = {
        mode: 'quorum',
        size: cfg.quorumFollowers,
        writeQuorum: w,
        minDelay: d.minDelay,
        maxDelay: d.maxDelay,
      };
      const run = await withCluster(spec, (c) => measure(cfg, target(c), cfg.quorumClients, w));
      const p = {
        ...point(`W=${w}, delay ${d.label}`, run),
        writeQuorum: w,
        delay: d.label,
        minDelay: d.minDelay,
        maxDelay: d.maxDelay,
      };
      log(`  (a) ${describe(p)}`);
      out.push(p);
    }
  }
  return out;
}

export interface StrategyPoint extends Point {
  readonly strategy: string;
}

/** (b) Every strategy under the same closed-loop load. */
export async function strategies(
  cfg: ExperimentConfig,
  log: Log,
): Promise<{ points: StrategyPoint[]; skipped: string[] }> {
  const majority = Math.floor(cfg.quorumFollowers / 2) + 1;
  const list: { strategy: string; spec: ClusterSpec; consistency?: RaftConsistency }[] = [
    { strategy: 'raft linearizable', spec: { mode: 'raft' }, consistency: 'linearizable' },
    { strategy: 'raft stale reads', spec: { mode: 'raft' }, consistency: 'stale' },
    {
      strategy: `quorum W=${majority}`,
      spec: { mode: 'quorum', size: cfg.quorumFollowers, writeQuorum: majority, minDelay: 0.1, maxDelay: 1 },
    },
    { strategy: 'causal', spec: { mode: 'causal' } },
    { strategy: 'eventual', spec: { mode: 'eventual' } },
  ];
  const points: StrategyPoint[] = [];
  const skipped: string[] = [];
  for (const [i, s] of list.entries()) {
    if (s.spec.mode === 'causal' && !causalAvailable()) {
      skipped.push(s.strategy);
      log(`  (b) causal skipped: the causal mode is not built here`);
      continue;
    }
    const run = await withCluster(s.spec, (c) => measure(cfg, target(c, s.consistency), cfg.strategyClients, 100 + i));
    const p = { ...point(s.strategy, run), strategy: s.strategy };
    log(`  (b) ${describe(p)}`);
    points.push(p);
  }
  return { points, skipped };
}

export interface ScalePoint extends Point {
  readonly clients: number;
}

/** (c) Raft (linearizable reads) as closed-loop clients grow; one cluster for the whole curve. */
export async function raftScale(cfg: ExperimentConfig, log: Log): Promise<ScalePoint[]> {
  return withCluster({ mode: 'raft' }, async (c) => {
    const out: ScalePoint[] = [];
    for (const n of cfg.scaleClients) {
      const run = await measure(cfg, target(c, 'linearizable'), n, 200 + n);
      const p = { ...point(`${n} clients`, run), clients: n };
      log(`  (c) ${describe(p)}`);
      out.push(p);
    }
    return out;
  });
}

export interface FailoverTrial {
  readonly trial: number;
  readonly killedNode: number;
  readonly newLeader?: number;
  /** From the kill to the first acknowledgement of a write issued after it (undefined: none in the window). */
  readonly unavailableMs?: number;
  /** Longest time without any acknowledged write around the kill. */
  readonly longestGapMs: number;
  readonly failedWrites: number;
  readonly okWrites: number;
}

/** (d) Raft: writers on every node (followers forward), SIGKILL the leader, measure the write outage. */
export async function raftFailover(cfg: ExperimentConfig, log: Log): Promise<FailoverTrial[]> {
  return withCluster({ mode: 'raft' }, async (c) => {
    const raft = c.raft;
    if (raft === undefined) throw new Error('raft cluster without its harness');
    const trials: FailoverTrial[] = [];
    for (let t = 1; t <= cfg.failoverTrials; t++) {
      const leader = await raft.waitLeader(15_000);
      const events: OpEvent[] = [];
      let killAt = Number.POSITIVE_INFINITY;
      const load = runLoad({
        target: { mode: 'raft', nodes: c.nodes, writeNodes: c.nodes, timeoutMs: 5000 },
        clients: cfg.failoverClients,
        putRatio: 1,
        keys: cfg.keys,
        valueSize: cfg.valueSize,
        durationMs: cfg.failoverKillAtMs + cfg.failoverWatchMs,
        seed: 300 + t,
        keyPrefix: `fo${t}-`,
        onOp: (ev) => events.push(ev),
      });
      await new Promise((r) => setTimeout(r, cfg.failoverKillAtMs));
      killAt = performance.now();
      await raft.kill(leader);
      await load;
      const acks = events.filter((e) => e.result.ok).map((e) => e.end);
      const firstAfter = events
        .filter((e) => e.result.ok && e.start >= killAt)
        .reduce((m, e) => Math.min(m, e.end), Number.POSITIVE_INFINITY);
      // Longest stretch without an ack, from the last ack before the kill onwards.
      const sorted = acks.sort((a, b) => a - b);
      const lastBefore = sorted.filter((x) => x <= killAt).pop() ?? killAt;
      let gap = 0;
      let prev = lastBefore;
      for (const x of sorted) {
        if (x <= lastBefore) continue;
        gap = Math.max(gap, x - prev);
        prev = x;
      }
      let newLeader: number | undefined;
      try {
        newLeader = await raft.waitLeader(10_000, [leader]);
      } catch {
        newLeader = undefined;
      }
      const trial: FailoverTrial = {
        trial: t,
        killedNode: leader,
        newLeader,
        unavailableMs: Number.isFinite(firstAfter) ? firstAfter - killAt : undefined,
        longestGapMs: gap,
        failedWrites: events.filter((e) => !e.result.ok).length,
        okWrites: acks.length,
      };
      log(
        `  (d) trial ${t}: killed node ${leader}, new leader ${newLeader ?? '-'}, unavailable ${trial.unavailableMs?.toFixed(0) ?? 'all window'} ms, longest gap ${gap.toFixed(0)} ms, ${trial.failedWrites} failed writes`,
      );
      trials.push(trial);
      // Bring the killed node back (it recovers from its disk) before the next trial.
      await raft.startNode(leader);
      await raft.waitLeader(15_000);
    }
    return trials;
  });
}

export interface NodeCountPoint extends Point {
  readonly nodes: number;
  readonly clients: number;
  /** Puts only (to the leader) or linearizable gets only (spread over every node). */
  readonly op: 'put' | 'get';
  /** CPU time of the leader process per successful operation, ms (undefined without /proc). */
  readonly leaderCpuMsPerOp?: number;
  /** CPU time of every node process together per successful operation, ms. */
  readonly clusterCpuMsPerOp?: number;
}

/** User + system CPU time of a process in ms, from /proc/<pid>/stat; undefined when it cannot be read. */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") "; utime and stime are 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}
/** Linux's USER_HZ, the unit of /proc/<pid>/stat times (100 on every common configuration). */
const CLOCK_TICKS_PER_S = 100;

/**
 * (e) Raft with more nodes: 3, 5, 7, ... nodes; for each, puts only and linearizable gets only (spread over
 * every node, so followers ask the leader for a read index) at each client count. Records throughput,
 * latency and the CPU time the leader and the whole cluster spend per operation.
 */
export async function raftNodeCount(cfg: ExperimentConfig, log: Log): Promise<NodeCountPoint[]> {
  const out: NodeCountPoint[] = [];
  for (const n of cfg.nodeCounts) {
    await withCluster({ mode: 'raft', size: n }, async (c) => {
      const raft = c.raft;
      if (raft === undefined) throw new Error('raft cluster without its harness');
      const t = target(c, 'linearizable');
      const base = { target: t, keys: cfg.keys, valueSize: cfg.valueSize };
      // The keys the gets read exist (written here, unmeasured).
      await runLoad({ ...base, clients: 8, putRatio: 1, durationMs: cfg.warmupMs, seed: 400 + n });
      for (const op of ['put', 'get'] as const) {
        for (const clients of cfg.nodeCountClients) {
          const putRatio = op === 'put' ? 1 : 0;
          const seed = 500 + n * 10 + clients;
          await runLoad({ ...base, clients, putRatio, durationMs: cfg.warmupMs / 2, seed, keyPrefix: 'warm' });
          const leader = await raft.waitLeader(15_000);
          const pids = raft.ids.map((id) => raft.pid(id));
          const before = pids.map(processCpuMs);
          const run = await runLoad({ ...base, clients, putRatio, durationMs: cfg.nodeCountPointMs, seed });
          const after = pids.map(processCpuMs);
          const used = (i: number): number | undefined => {
            const a = after[i];
            const b = before[i];
            return a === undefined || b === undefined ? undefined : a - b;
          };
          const leaderIdx = raft.ids.indexOf(leader);
          const leaderMs = used(leaderIdx);
          const all = pids.map((_, i) => used(i));
          const clusterMs = all.every((x) => x !== undefined) ? all.reduce((s, x) => s + (x ?? 0), 0) : undefined;
          const ops = Math.max(1, run.ops);
          const p: NodeCountPoint = {
            ...point(`${n} nodes, ${op}, ${clients} client${clients === 1 ? '' : 's'}`, run),
            nodes: n,
            clients,
            op,
            leaderCpuMsPerOp: leaderMs === undefined ? undefined : leaderMs / ops,
            clusterCpuMsPerOp: clusterMs === undefined ? undefined : clusterMs / ops,
          };
          const h = op === 'put' ? p.put : p.get;
          log(
            `  (e) ${p.label}: ${p.throughput.toFixed(0)} ops/s, p50/p99 ${h.p50Ms.toFixed(2)}/${h.p99Ms.toFixed(2)} ms, leader CPU ${p.leaderCpuMsPerOp?.toFixed(3) ?? 'n/a'} ms/op, cluster CPU ${p.clusterCpuMsPerOp?.toFixed(3) ?? 'n/a'} ms/op, errors ${p.errors}`,
          );
          out.push(p);
        }
      }
    });
  }
  return out;
}
