/**
 * `npm run fuzz -- [--mode raft|chat|quorum|eventual|causal|all] [--count N] [--frames N] [--seed S]
 *                  [--concurrency C] [--batch B] [--case http:I|peer:I] [--json FILE] [--mem-mib M] [--mem-ratio R]`
 *
 * Fuzzes live clusters of each mode (see src/fuzz/runner.ts and docs/security.md, "Fuzzing"): N malformed
 * HTTP requests and N malformed peer frames (raft, chat) or internal requests (quorum, eventual, causal)
 * per mode. Prints a summary per mode and every failure with the command that replays it; exits 1 on any
 * failure. `--case` replays one case of one mode (with its seed) and prints the request and the answer.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { FuzzMode } from './http-gen.js';
import { randomSeed } from './rng.js';
import { DEFAULT_MEMORY_TOLERANCE, MODES, runMode, summarize, type ModeReport } from './runner.js';

function int(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'all' },
      count: { type: 'string' },
      frames: { type: 'string' },
      seed: { type: 'string' },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      case: { type: 'string' },
      json: { type: 'string' },
      'mem-mib': { type: 'string' },
      'mem-ratio': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(
      'usage: npm run fuzz -- [--mode raft|chat|quorum|eventual|causal|all] [--count N] [--frames N] [--seed S]\n' +
        '                       [--concurrency C] [--batch B] [--case http:I|peer:I] [--json FILE]\n' +
        '                       [--mem-mib M] [--mem-ratio R]   (memory tolerance, default 50 MiB / 0.5)\n',
    );
    return 0;
  }
  const modes: FuzzMode[] = values.mode === 'all' ? [...MODES] : [values.mode as FuzzMode];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m} (${MODES.join(', ')}, all)`);
  const seed = int(values.seed, 'seed', randomSeed());
  const count = int(values.count, 'count', 10_000);
  const frames = int(values.frames, 'frames', count);
  let only: { stream: 'http' | 'peer'; index: number } | undefined;
  if (values.case !== undefined) {
    const m = /^(http|peer):(\d+)$/.exec(values.case);
    if (m === null) throw new Error('--case is http:INDEX or peer:INDEX');
    only = { stream: m[1] as 'http' | 'peer', index: Number(m[2]) };
  }
  const log = (line: string) => process.stdout.write(`${line}\n`);
  log(
    `fuzz: seed ${seed}, modes ${modes.join(', ')}, ${count} HTTP requests and ${frames} peer frames or internal requests each`,
  );
  const reports: ModeReport[] = [];
  for (const mode of modes) {
    const r = await runMode({
      mode,
      seed,
      count,
      frames,
      concurrency: int(values.concurrency, 'concurrency', 16),
      batch: int(values.batch, 'batch', 1000),
      memory: {
        mib: int(values['mem-mib'], 'mem-mib', DEFAULT_MEMORY_TOLERANCE.mib),
        ratio: values['mem-ratio'] === undefined ? DEFAULT_MEMORY_TOLERANCE.ratio : Number(values['mem-ratio']),
      },
      log,
      ...(only === undefined ? {} : { only }),
    });
    reports.push(r);
    if (only === undefined) log(summarize(r));
  }
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(reports, null, 2) + '\n');
  const failed = reports.filter((r) => !r.ok);
  if (failed.length > 0) {
    log(`fuzz FAILED (seed ${seed}): ${failed.map((r) => r.mode).join(', ')}`);
    return 1;
  }
  log(`fuzz OK (seed ${seed})`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
