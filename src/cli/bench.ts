/**
 * `quorumkv bench`: the load generator (src/bench/) from the command line, against running nodes
 * (`--endpoints`) or a local cluster it starts itself (`--spawn`).
 */
import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { MODES, type BenchMode, type RaftConsistency } from '../bench/adapters.js';
import { startBenchCluster, type BenchCluster } from '../bench/clusters.js';
import { runLoad, type LoadResult } from '../bench/loadgen.js';
import type { CliIO } from './program.js';

interface BenchFlags {
  mode: BenchMode;
  endpoints?: string;
  writeEndpoints?: string;
  spawn?: boolean;
  size?: string;
  writeQuorum?: string;
  minDelay?: string;
  maxDelay?: string;
  clients: string;
  rate?: string;
  duration: string;
  putRatio: string;
  keys: string;
  valueSize: string;
  consistency?: RaftConsistency;
  timeoutMs?: string;
  json?: boolean;
  out?: string;
  progress: boolean;
}

class FlagError extends Error {}

function number(
  name: string,
  v: string | undefined,
  opts: { int?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const ok =
    v.trim() !== '' &&
    Number.isFinite(n) &&
    (opts.int !== true || Number.isInteger(n)) &&
    (opts.min === undefined || n >= opts.min) &&
    (opts.max === undefined || n <= opts.max);
  if (!ok) throw new FlagError(`--${name}: invalid value "${v}"`);
  return n;
}

function urls(list: string | undefined): string[] {
  if (list === undefined) return [];
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^https?:\/\//.test(s) ? s : `http://${s}`).replace(/\/+$/, ''));
}

const fmt = (x: number): string => x.toFixed(2);

/** Human-readable summary of one run. */
export function formatLoadResult(r: LoadResult): string[] {
  const lines = [
    `mode ${r.mode}${r.consistency !== undefined ? ` (${r.consistency} reads)` : ''}, ${r.loop} loop, ${r.loop === 'open' ? `${r.rate}/s over ${r.clients} sessions` : `${r.clients} clients`}, ${r.nodes} nodes, ${r.elapsedS.toFixed(1)} s`,
    `throughput ${r.throughput.toFixed(0)} ops/s (${r.ops} ok, ${r.errors.total} errors${r.dropped > 0 ? `, ${r.dropped} dropped` : ''})`,
  ];
  for (const [name, h] of [
    ['put', r.put],
    ['get', r.get],
  ] as const) {
    if (h.count > 0)
      lines.push(
        `${name}  n=${h.count} p50 ${fmt(h.p50Ms)} ms  p90 ${fmt(h.p90Ms)}  p99 ${fmt(h.p99Ms)}  p99.9 ${fmt(h.p999Ms)}  max ${fmt(h.maxMs)}`,
      );
  }
  const s = r.staleness;
  lines.push(
    `stale reads ${s.stale}/${s.reads} (${(s.fraction * 100).toFixed(2)}%), mean ${fmt(s.meanVersionsBehind)} versions behind, max ${s.maxVersionsBehind}`,
  );
  if (r.errors.total > 0)
    lines.push(`errors by status ${JSON.stringify(r.errors.byStatus)}; e.g. ${r.errors.sample ?? ''}`);
  return lines;
}

export function addBenchCommand(program: Command, io: CliIO): void {
  program
    .command('bench')
    .description('load generator for every mode: closed or open loop, HDR latency, stale-read fraction')
    .addOption(new Option('--mode <mode>', 'replication mode of the target').choices(MODES).default('raft'))
    .option('-e, --endpoints <urls>', 'comma-separated node URLs (quorum: the leader first); reads go to all')
    .option(
      '--write-endpoints <urls>',
      'where writes go (default: quorum the first endpoint, other modes every endpoint)',
    )
    .option('--spawn', 'start a local cluster of the mode for the run and stop it afterwards')
    .option('--size <n>', '--spawn: raft nodes / replicas (3), quorum followers (5)')
    .option('--write-quorum <w>', '--spawn quorum: WRITE_QUORUM')
    .option('--min-delay <ms>', '--spawn quorum: MIN_DELAY')
    .option('--max-delay <ms>', '--spawn quorum: MAX_DELAY')
    .option('-c, --clients <n>', 'closed loop: concurrent clients; open loop: sessions', '16')
    .option('-r, --rate <ops>', 'open loop at this many requests per second')
    .option('-d, --duration <s>', 'seconds', '10')
    .option('--put-ratio <f>', 'fraction of puts, 0..1', '0.5')
    .option('--keys <n>', 'key space size', '1000')
    .option('--value-size <bytes>', 'value size', '100')
    .addOption(new Option('--consistency <level>', 'raft reads').choices(['linearizable', 'stale', 'lease']))
    .option('--timeout-ms <n>', 'per-request time limit', '5000')
    .option('--json', 'print the result as JSON')
    .option('-o, --out <file>', 'also write the JSON result to this file')
    .option('--no-progress', 'no progress bar')
    .action(async (flags: BenchFlags) => {
      let cluster: BenchCluster | undefined;
      try {
        const clients = number('clients', flags.clients, { int: true, min: 1 }) ?? 16;
        const rate = number('rate', flags.rate, { min: 0.001 });
        const duration = number('duration', flags.duration, { min: 0.01 }) ?? 10;
        const putRatio = number('put-ratio', flags.putRatio, { min: 0, max: 1 }) ?? 0.5;
        const keys = number('keys', flags.keys, { int: true, min: 1 }) ?? 1000;
        const valueSize = number('value-size', flags.valueSize, { int: true, min: 1 }) ?? 100;
        const timeoutMs = number('timeout-ms', flags.timeoutMs, { min: 1 });
        let nodes = urls(flags.endpoints);
        let writeNodes = urls(flags.writeEndpoints);
        if (flags.spawn === true) {
          cluster = await startBenchCluster({
            mode: flags.mode,
            size: number('size', flags.size, { int: true, min: 1 }),
            writeQuorum: number('write-quorum', flags.writeQuorum, { int: true, min: 1 }),
            minDelay: number('min-delay', flags.minDelay, { min: 0 }),
            maxDelay: number('max-delay', flags.maxDelay, { min: 0 }),
          });
          nodes = [...cluster.nodes];
          if (writeNodes.length === 0) writeNodes = [...cluster.writeNodes];
        }
        if (nodes.length === 0) throw new FlagError('give --endpoints or --spawn');
        const result = await runLoad({
          target: {
            mode: flags.mode,
            nodes,
            writeNodes: writeNodes.length > 0 ? writeNodes : undefined,
            consistency: flags.consistency,
            timeoutMs,
          },
          clients,
          rate,
          durationMs: duration * 1000,
          putRatio,
          keys,
          valueSize,
          progress: flags.progress && process.stderr.isTTY === true,
        });
        const json = JSON.stringify(result, null, 2);
        if (flags.out !== undefined) writeFileSync(flags.out, json + '\n');
        if (flags.json === true) io.out(json);
        else for (const l of formatLoadResult(result)) io.out(l);
        io.exit(0);
      } catch (err) {
        io.err(`error: ${(err as Error).message}`);
        io.exit(err instanceof FlagError ? 2 : 1);
      } finally {
        await cluster?.stop();
      }
    });
}
