/**
 * `quorumkv verify`: runs a cluster of real processes under faults and checks what its clients saw
 * (see src/verify/run.ts). Exit status 0 only when every check passed; 2 for bad flags.
 */
import type { Command } from 'commander';
import { DEFAULT_FAULTS, FAULT_KINDS, type FaultKind } from '../verify/nemesis.js';
import { DEFAULT_KEYS, DEFAULT_OPS_PER_KEY, runVerify } from '../verify/run.js';

export interface VerifyCliIO {
  out(line: string): void;
  err(line: string): void;
  exit(code: number): void;
}

interface VerifyFlags {
  nodes: string;
  duration: string;
  faults: string;
  seed?: string;
  out?: string;
  clients: string;
  keys: string;
  opsPerKey: string;
  reads: string;
  recoverBoundMs: string;
  keepData?: boolean;
}

function positiveInt(name: string, v: string, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) {
    throw new Error(`--${name}: expected an integer from 1 to ${max}, got "${v}"`);
  }
  return Number(v);
}

export function parseFaults(list: string): FaultKind[] {
  if (list.trim() === '' || list === 'none') return [];
  const out: FaultKind[] = [];
  for (const part of list.split(',').map((s) => s.trim())) {
    if (!(FAULT_KINDS as readonly string[]).includes(part)) {
      throw new Error(`--faults: unknown fault "${part}" (known: ${FAULT_KINDS.join(', ')}, or none)`);
    }
    if (!out.includes(part as FaultKind)) out.push(part as FaultKind);
  }
  return out;
}

export function addVerifyCommand(program: Command, io: VerifyCliIO): void {
  program
    .command('verify')
    .description(
      'start a local cluster, run a recorded workload under faults, heal, restart everything and check the ' +
        'history (linearizability, no lost writes, recovery); exit 0 only if every check passed',
    )
    .option('-n, --nodes <n>', 'cluster size (3 or 5)', '3')
    .option('--duration <s>', 'seconds of workload under faults', '60')
    .option(
      '--faults <list>',
      `comma-separated faults: ${FAULT_KINDS.join(',')} (or none); disk-full needs root (a small tmpfs per node)`,
      DEFAULT_FAULTS.join(','),
    )
    .option('--seed <n>', 'seed of the fault schedule and workload (default: random, printed)')
    .option('--out <dir>', 'directory for history.jsonl and report.txt', './verify-results/<seed>')
    .option('--clients <n>', 'concurrent clients', '5')
    .option('--keys <n>', 'keys in use at once (every client works on all of them)', String(DEFAULT_KEYS))
    .option(
      '--ops-per-key <n>',
      'operations a key gets before a fresh key replaces it, so every key history stays checkable (0: never)',
      String(DEFAULT_OPS_PER_KEY),
    )
    .option('--reads <level>', 'read level of the workload: linearizable or lease (leader lease)', 'linearizable')
    .option('--recover-bound-ms <n>', 'after healing, a write must succeed within this bound', '10000')
    .option('--keep-data', 'keep the nodes data directory')
    .action(async (flags: VerifyFlags) => {
      let nodes: number, duration: number, faults: FaultKind[], seed: number, clients: number, keys: number;
      let bound: number, opsPerKey: number;
      try {
        nodes = positiveInt('nodes', flags.nodes, 5);
        if (nodes !== 3 && nodes !== 5) throw new Error(`--nodes: expected 3 or 5, got ${nodes}`);
        duration = positiveInt('duration', flags.duration, 86_400);
        faults = parseFaults(flags.faults);
        seed = flags.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : positiveIntOrZero(flags.seed);
        clients = positiveInt('clients', flags.clients, 64);
        keys = positiveInt('keys', flags.keys, 1000);
        opsPerKey = positiveIntOrZero(flags.opsPerKey, 'ops-per-key');
        if (flags.reads !== 'linearizable' && flags.reads !== 'lease') {
          throw new Error(`--reads: expected linearizable or lease, got "${flags.reads}"`);
        }
        bound = positiveInt('recover-bound-ms', flags.recoverBoundMs, 600_000);
      } catch (err) {
        io.err(`error: ${(err as Error).message}`);
        return io.exit(2);
      }
      const outDir =
        flags.out === undefined || flags.out === './verify-results/<seed>' ? `./verify-results/${seed}` : flags.out;
      io.out(`seed ${seed} (reproduce the schedule with --seed ${seed})`);
      try {
        const s = await runVerify(
          {
            nodes,
            durationS: duration,
            faults,
            seed,
            outDir,
            clients,
            keys,
            opsPerKey,
            reads: flags.reads as 'linearizable' | 'lease',
            recoverBoundMs: bound,
            keepData: flags.keepData === true,
          },
          io,
        );
        io.exit(s.passed ? 0 : 1);
      } catch (err) {
        io.err(`error: verify aborted: ${(err as Error).stack ?? String(err)}`);
        io.exit(1);
      }
    });
}

function positiveIntOrZero(v: string, name = 'seed'): number {
  if (!/^\d+$/.test(v) || Number(v) > 2 ** 31)
    throw new Error(`--${name}: expected a non-negative integer, got "${v}"`);
  return Number(v);
}
