#!/usr/bin/env node
/**
 * `npm run sim -- --seeds N [--start S] [--nodes 3|5|7] [--profile mixed|leader-churn] [--workers W]
 *   [--bug NAME] [--dump DIR] [--trace]`
 *
 * Runs N deterministic simulations and reports seeds/s, operations checked, faults injected and violations.
 * A failing seed prints the command that reproduces it; with --dump, its history (JSON lines) and event trace
 * are written to DIR.
 */
import { Command, InvalidArgumentError } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { PlantedBug } from '../raft/types.js';
import { HOST_BUGS, type HostBug } from './planted-host.js';
import { runSimulation, type SimOptions, type SimResult } from './run.js';

/** The core's planted bugs (src/raft/types.ts PlantedBug). */
const CORE_BUGS: readonly PlantedBug[] = [
  'commit-old-term-by-counting',
  'vote-not-persisted',
  'vote-for-stale-log',
  'read-without-confirmation',
  'keep-conflicting-entries',
  'apply-before-commit',
  'count-self-before-durable',
];

interface Job {
  readonly seed: number;
  readonly nodes: 3 | 5 | 7;
  readonly profile: 'mixed' | 'leader-churn';
  readonly bugs: PlantedBug[];
  readonly hostBugs: HostBug[];
  readonly trace: boolean;
}

interface Summary {
  readonly seed: number;
  readonly nodes: number;
  readonly ops: number;
  readonly unknownOps: number;
  readonly faults: Record<string, number>;
  readonly violations: string[];
  readonly history?: string;
  readonly trace?: string[];
}

function runJob(job: Job): Summary {
  const opts: SimOptions = {
    seed: job.seed,
    nodes: job.nodes,
    profile: job.profile,
    plantedBugs: job.bugs,
    hostBugs: job.hostBugs,
    trace: job.trace,
  };
  const r: SimResult = runSimulation(opts);
  const failed = r.violations.length > 0;
  return {
    seed: r.seed,
    nodes: r.nodes,
    ops: r.ops,
    unknownOps: r.unknownOps,
    faults: r.faults,
    violations: r.violations,
    history: failed ? r.history.map((e) => JSON.stringify(e)).join('\n') + '\n' : undefined,
    trace: failed && job.trace ? r.trace : undefined,
  };
}

if (!isMainThread) {
  const jobs = workerData as Job[];
  for (const job of jobs) parentPort?.postMessage(runJob(job));
} else {
  main();
}

function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

function main(): void {
  const program = new Command('sim')
    .description('Run deterministic Raft simulations with fault injection and check every history')
    .option('--seeds <n>', 'number of seeds to run', int('--seeds'), 100)
    .option('--start <s>', 'first seed', int('--start'), 1)
    .option('--nodes <n>', 'cluster size: 3, 5 or 7; "mix" alternates 3 and 5', 'mix')
    .option('--profile <p>', 'fault profile: mixed, leader-churn, or "both" (alternating)', 'both')
    .option('--workers <w>', 'worker threads', int('--workers'), Math.max(1, availableParallelism()))
    .option('--bug <name...>', `plant a known bug (core: ${CORE_BUGS.join(', ')}; host: ${HOST_BUGS.join(', ')})`)
    .option('--dump <dir>', 'write the history and trace of failing seeds to this directory')
    .option('--trace', 'record event traces (slower; implied for a single seed with --dump)')
    .parse();
  const o = program.opts<{
    seeds: number;
    start: number;
    nodes: string;
    profile: string;
    workers: number;
    bug?: string[];
    dump?: string;
    trace?: boolean;
  }>();
  if (!['3', '5', '7', 'mix'].includes(o.nodes)) program.error('--nodes must be 3, 5, 7 or mix');
  if (!['mixed', 'leader-churn', 'both'].includes(o.profile))
    program.error('--profile must be mixed, leader-churn or both');

  const named = o.bug ?? [];
  const unknown = named.filter((b) => !(CORE_BUGS as string[]).includes(b) && !(HOST_BUGS as string[]).includes(b));
  if (unknown.length > 0) program.error(`unknown bug: ${unknown.join(', ')} (see --help)`);
  const bugs = CORE_BUGS.filter((b) => named.includes(b));
  const hostBugs = HOST_BUGS.filter((b) => named.includes(b));
  const jobs: Job[] = [];
  for (let i = 0; i < o.seeds; i++) {
    const seed = o.start + i;
    const nodes = (o.nodes === 'mix' ? (seed % 2 === 0 ? 5 : 3) : Number(o.nodes)) as 3 | 5 | 7;
    const profile = o.profile === 'both' ? (seed % 4 === 3 ? 'leader-churn' : 'mixed') : (o.profile as Job['profile']);
    jobs.push({ seed, nodes, profile, bugs, hostBugs, trace: Boolean(o.trace) });
  }

  const started = performance.now();
  const results: Summary[] = [];
  let done = 0;
  const report = (s: Summary) => {
    results.push(s);
    done++;
    if (s.violations.length > 0) {
      const job = jobs.find((j) => j.seed === s.seed);
      const planted = job ? [...job.bugs, ...job.hostBugs] : [];
      const bug = planted.length > 0 ? ` --bug ${planted.join(' ')}` : '';
      console.log(`\nseed ${s.seed} (${s.nodes} nodes, ${job?.profile}) FAILED:`);
      for (const v of s.violations.slice(0, 5)) console.log(`  - ${v.split('\n')[0]}`);
      console.log(
        `  reproduce: npm run sim -- --seeds 1 --start ${s.seed} --nodes ${s.nodes} --profile ${job?.profile}${bug} --dump .sim-failures`,
      );
      if (o.dump) {
        mkdirSync(o.dump, { recursive: true });
        const base = join(o.dump, `seed-${s.seed}-n${s.nodes}`);
        if (s.history) writeFileSync(`${base}.history.jsonl`, s.history);
        writeFileSync(`${base}.violations.txt`, s.violations.join('\n') + '\n');
        if (s.trace) writeFileSync(`${base}.trace.txt`, s.trace.join('\n') + '\n');
        console.log(`  wrote ${base}.*`);
      }
    } else if (process.stdout.isTTY && done % 50 === 0) {
      process.stdout.write(`\r${done}/${jobs.length} seeds`);
    }
  };

  // A single failing seed with --dump is re-run with its trace.
  if (o.seeds === 1 && o.dump) jobs[0] = { ...jobs[0], trace: true };

  const workers = Math.min(o.workers, jobs.length);
  if (workers <= 1) {
    for (const job of jobs) report(runJob(job));
    finish();
    return;
  }
  let running = workers;
  for (let w = 0; w < workers; w++) {
    const slice = jobs.filter((_, i) => i % workers === w);
    const worker = new Worker(new URL(import.meta.url), { workerData: slice });
    worker.on('message', (s: Summary) => report(s));
    worker.on('error', (e) => {
      console.error(`worker failed: ${e.stack ?? e.message}`);
      process.exitCode = 2;
    });
    worker.on('exit', () => {
      if (--running === 0) finish();
    });
  }

  function finish(): void {
    const secs = (performance.now() - started) / 1000;
    const ops = results.reduce((n, r) => n + r.ops, 0);
    const unknown = results.reduce((n, r) => n + r.unknownOps, 0);
    const faults: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
    const failed = results.filter((r) => r.violations.length > 0);
    const totalFaults = Object.values(faults).reduce((a, b) => a + b, 0);
    if (process.stdout.isTTY) process.stdout.write('\r');
    console.log(`seeds run:          ${results.length} (from ${o.start}, ${workers} worker(s))`);
    console.log(`operations checked: ${ops} (${unknown} with unknown outcome)`);
    console.log(
      `faults injected:    ${totalFaults} (${Object.entries(faults)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    );
    console.log(`wall time:          ${secs.toFixed(1)} s (${(results.length / secs).toFixed(1)} seeds/s)`);
    console.log(
      `violations:         ${failed.length} seed(s)${failed.length ? ': ' + failed.map((f) => f.seed).join(' ') : ''}`,
    );
    if (failed.length > 0) process.exitCode = 1;
  }
}
