/**
 * `quorumkv check FILE`: checks a recorded history for linearizability. The file is JSON lines (one event
 * per line: `{"process","type":"invoke"|"ok"|"fail"|"info","f":"get"|"put"|"cas"|"delete","key","value",
 * "time"}`, see docs/verify.md), gzip-compressed or not. Exit status: 0 linearizable, 1 not linearizable,
 * 2 malformed (or unreadable), 3 unknown (the time or memory limit was reached first).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Command } from 'commander';
import { describeOp, pairOperations, type HistoryOp } from '../check/history.js';
import { checkLinearizable, HistoryError, parseHistory, type CheckResult } from '../check/linearizability.js';

export interface CheckIO {
  out(line: string): void;
  err(line: string): void;
  exit(code: number): void;
}

export const EXIT = { linearizable: 0, violation: 1, malformed: 2, unknown: 3 } as const;

/** Reads a history file, gunzipping it when it starts with the gzip magic bytes. */
export function readHistoryFile(file: string): string {
  const bytes = readFileSync(file);
  const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  return (gz ? gunzipSync(bytes) : bytes).toString('utf8');
}

/** The operations of the failing key that overlap the failure's window, in invoke order (at most `max`). */
export function context(all: readonly HistoryOp[], r: CheckResult, max = 30): HistoryOp[] {
  const f = r.failure;
  if (f === undefined || f.ops.length === 0) return [];
  const lo = Math.min(...f.ops.map((o) => o.invokeTime));
  const hi = Math.max(...f.ops.map((o) => (Number.isFinite(o.completeTime) ? o.completeTime : o.invokeTime)));
  const mine = all.filter((o) => o.key === f.key).sort((a, b) => a.invokeTime - b.invokeTime);
  const overlapping = mine.filter((o) => o.invokeTime <= hi && o.completeTime >= lo);
  if (overlapping.length >= max) return overlapping.slice(0, max);
  // Pad with the operations just before the window: what the register held on the way in.
  const before = mine.filter((o) => o.completeTime < lo).slice(-(max - overlapping.length));
  return [...before, ...overlapping];
}

export function runCheck(file: string, timeoutS: number, maxMemoryMb: number, io: CheckIO): number {
  let text: string;
  try {
    text = readHistoryFile(file);
  } catch (err) {
    io.err(`error: cannot read ${file}: ${(err as Error).message}`);
    return EXIT.malformed;
  }
  let events;
  let ops: HistoryOp[];
  try {
    events = parseHistory(text);
    ops = pairOperations(events);
  } catch (err) {
    if (!(err instanceof HistoryError)) throw err;
    io.err(`error: ${file} is not a valid history: ${err.message}`);
    return EXIT.malformed;
  }
  const t0 = performance.now();
  const r = checkLinearizable(events, { timeoutMs: timeoutS * 1000, maxMemoryBytes: maxMemoryMb * 1024 * 1024 });
  const ms = (performance.now() - t0).toFixed(0);
  const summary = `${r.checkedOps} operations on ${r.keys} key(s), ${ms} ms`;
  if (r.failure !== undefined) {
    io.out(
      `NOT LINEARIZABLE: ${summary}; ${r.failedKeys ?? 1} key(s) fail, the smallest is ${JSON.stringify(r.failure.key)}`,
    );
    io.out(r.failure.explanation);
    io.out(`operations on ${JSON.stringify(r.failure.key)} around it, in invoke order ([invoke, return] times):`);
    for (const o of context(ops, r)) io.out(`  ${describeOp(o)}`);
    if (r.unknown !== undefined) io.out(`(${r.unknownKeys?.length ?? 0} other key(s) undecided: ${r.unknown} limit)`);
    return EXIT.violation;
  }
  if (r.unknown !== undefined) {
    const keys = r.unknownKeys ?? [];
    const limit = r.unknown === 'timeout' ? `the ${timeoutS} s time limit` : `the ${maxMemoryMb} MiB memory limit`;
    io.out(`UNKNOWN: ${summary}; ${keys.length} key(s) undecided at ${limit}: ${keys.slice(0, 10).join(', ')}`);
    return EXIT.unknown;
  }
  io.out(`LINEARIZABLE: ${summary}`);
  return EXIT.linearizable;
}

export function addCheckCommand(program: Command, io: CheckIO): void {
  program
    .command('check <file>')
    .description(
      'check a recorded history (JSON lines, gzip accepted) for linearizability; exit 0 linearizable, ' +
        '1 not, 2 malformed, 3 unknown (limit reached)',
    )
    .option('--timeout <seconds>', 'give up after this long', '60')
    .option('--max-memory-mb <n>', 'memory the search of one key may use', '1024')
    .action((file: string, flags: { timeout: string; maxMemoryMb: string }) => {
      const timeout = Number(flags.timeout);
      const mem = Number(flags.maxMemoryMb);
      if (!Number.isFinite(timeout) || timeout <= 0) {
        io.err(`error: --timeout: expected a positive number of seconds, got "${flags.timeout}"`);
        return io.exit(EXIT.malformed);
      }
      if (!Number.isFinite(mem) || mem <= 0) {
        io.err(`error: --max-memory-mb: expected a positive number, got "${flags.maxMemoryMb}"`);
        return io.exit(EXIT.malformed);
      }
      io.exit(runCheck(file, timeout, mem, io));
    });
}
