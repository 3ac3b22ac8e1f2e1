/** Runs the experiments in order and writes results/*.json, results/report.html and results/SUMMARY.md. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { ExperimentConfig } from './config.js';
import { renderHtml, renderSummary, type ExperimentResults } from './report.js';
import { quorumSweep, raftFailover, raftNodeCount, raftScale, strategies, type Log } from './run.js';
import type { ExperimentMeta } from './report.js';

export interface PipelineOutput {
  readonly results: ExperimentResults;
  readonly files: readonly string[];
}

export async function runPipeline(cfg: ExperimentConfig, outDir: string, log: Log): Promise<PipelineOutput> {
  mkdirSync(outDir, { recursive: true });
  const started = new Date();
  const loadAvgBefore = os.loadavg();
  log(`experiments (${cfg.name}) → ${outDir}`);
  log('(a) quorum mode, write quorum sweep');
  const quorum = await quorumSweep(cfg, log);
  log('(b) strategies side by side');
  const strat = await strategies(cfg, log);
  log('(c) raft, clients 1..' + String(Math.max(...cfg.scaleClients)));
  const scale = await raftScale(cfg, log);
  log('(d) raft, leader kill');
  const failover = await raftFailover(cfg, log);
  log(`(e) raft, ${cfg.nodeCounts.join('/')} nodes`);
  const nodeCount = await raftNodeCount(cfg, log);
  const finished = new Date();
  const results: ExperimentResults = {
    meta: {
      config: cfg,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationS: (finished.getTime() - started.getTime()) / 1000,
      commit: gitCommit(),
      host: {
        cpus: os.cpus().length,
        loadAvgBefore,
        loadAvgAfter: os.loadavg(),
        node: process.version,
        platform: `${os.platform()} ${os.arch()}`,
      },
    },
    quorum,
    strategies: strat,
    scale,
    failover,
    nodeCount,
  };
  const files: [string, string][] = [
    ['meta.json', JSON.stringify(results.meta, null, 2)],
    ['quorum-write-quorum.json', JSON.stringify(quorum, null, 2)],
    ['strategies.json', JSON.stringify(strat, null, 2)],
    ['raft-scale.json', JSON.stringify(scale, null, 2)],
    ['raft-failover.json', JSON.stringify(failover, null, 2)],
    ['raft-node-count.json', JSON.stringify(nodeCount, null, 2)],
    ['report.html', renderHtml(results)],
    ['SUMMARY.md', renderSummary(results)],
  ];
  for (const [name, text] of files) writeFileSync(path.join(outDir, name), text.endsWith('\n') ? text : text + '\n');
  log(`wrote ${files.map(([n]) => n).join(', ')} in ${results.meta.durationS.toFixed(0)} s`);
  return { results, files: files.map(([n]) => path.join(outDir, n)) };
}

/** The short commit of the working tree, if this is a git checkout (uncommitted changes are not noted). */
function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** Re-renders report.html and SUMMARY.md from the JSON files of an earlier run (no new measurement). */
export function renderExisting(outDir: string): ExperimentResults {
  const read = <T>(name: string): T => JSON.parse(readFileSync(path.join(outDir, name), 'utf8')) as T;
  const results: ExperimentResults = {
    meta: read<ExperimentMeta>('meta.json'),
    quorum: read<ExperimentResults['quorum']>('quorum-write-quorum.json'),
    strategies: read<ExperimentResults['strategies']>('strategies.json'),
    scale: read<ExperimentResults['scale']>('raft-scale.json'),
    failover: read<ExperimentResults['failover']>('raft-failover.json'),
    // Absent in runs made before the node-count experiment existed.
    nodeCount: existsSync(path.join(outDir, 'raft-node-count.json'))
      ? read<NonNullable<ExperimentResults['nodeCount']>>('raft-node-count.json')
      : undefined,
  };
  writeFileSync(path.join(outDir, 'report.html'), renderHtml(results));
  writeFileSync(path.join(outDir, 'SUMMARY.md'), renderSummary(results));
  return results;
}
